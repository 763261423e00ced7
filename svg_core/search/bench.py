"""Query latency of the window index: exact (IndexFlatIP) vs IVF, at 1k and 100k windows.

The vectors are seeded random (normal, like untrained embeddings; a few clustered directions
so that IVF's cells mean something): this times faiss on this machine, not a model. IVF recall@10
is measured against the exact top-10 of the same queries.
"""

from __future__ import annotations

import time

import numpy as np

from svg_core.search.index import make_faiss_index, recall_at_k, search_windows


def synthetic_vectors(n: int, dim: int, rng: np.random.Generator, n_clusters: int = 64) -> np.ndarray:
    """float32 [n, dim]: cluster centres plus noise (seeded by ``rng``)."""
    centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    return (centres[rng.integers(0, n_clusters, n)] + 0.5 * rng.standard_normal((n, dim))).astype(np.float32)


def time_queries_ms(index, queries: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """Median milliseconds of one query (searched one at a time), and the top-k ids [Q, k]."""
    ids, took_ms = [], []
    for q in queries:
        began = time.perf_counter()
        _, row = search_windows(index, q[None, :], k)
        took_ms.append(1000.0 * (time.perf_counter() - began))
        ids.append(row[0])
    return float(np.median(took_ms)), np.stack(ids)


def run_bench(sizes=(1_000, 100_000), dim: int = 256, n_queries: int = 100, k: int = 10, nlist: int | None = None,
              nprobes: tuple[int, ...] = (8, 64), seed: int = 0) -> list[dict]:
    """One row per (size, nprobe): exact and IVF median query latency (ms), IVF recall@k vs exact,
    build time; one IVF index per size, searched at each ``nprobe`` (the recall/latency trade-off
    side by side in one run).

    Args:
        sizes: indexed windows per row.
        dim: embedding size E (the small AVLnet preset: 256).
        nlist: IVF cells; default about 4 sqrt(N).
        nprobes: IVF cells visited per query, one row each (capped at nlist).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        vectors = synthetic_vectors(n, dim, rng)
        queries = synthetic_vectors(n_queries, dim, rng)
        cells = nlist or max(1, int(4 * np.sqrt(n)))
        began = time.perf_counter()
        exact = make_faiss_index(vectors, "flat")
        exact_build_sec = time.perf_counter() - began
        began = time.perf_counter()
        ivf = make_faiss_index(vectors, "ivf", nlist=cells, nprobe=nprobes[0], seed=seed)
        ivf_build_sec = time.perf_counter() - began
        exact_ms, exact_ids = time_queries_ms(exact, queries, k)
        for nprobe in nprobes:
            ivf.nprobe = max(1, min(nprobe, cells))
            ivf_ms, ivf_ids = time_queries_ms(ivf, queries, k)
            rows.append({"windows": n, "dim": dim, "exact_ms": exact_ms, "ivf_ms": ivf_ms, "nlist": cells,
                         "nprobe": ivf.nprobe, f"ivf_recall@{k}": recall_at_k(exact_ids, ivf_ids, k),
                         "exact_build_sec": exact_build_sec, "ivf_build_sec": ivf_build_sec})
    return rows


def format_bench(rows: list[dict], k: int = 10) -> str:
    """A plain table, one line per (size, nprobe)."""
    head = f"{'windows':>8} {'exact ms':>9} {'IVF ms':>8} {'nlist':>6} {'nprobe':>6} {f'IVF R@{k}':>8} {'IVF build s':>11}"
    lines = [head] + [f"{r['windows']:>8} {r['exact_ms']:>9.3f} {r['ivf_ms']:>8.3f} {r['nlist']:>6} {r['nprobe']:>6} "
                      f"{r[f'ivf_recall@{k}']:>8.3f} {r['ivf_build_sec']:>11.2f}" for r in rows]
    return "\n".join(lines)
