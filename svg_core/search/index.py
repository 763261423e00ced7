"""A faiss index of sliding clip windows over a video collection, and the video ranking on it.

Each video's features are resampled to the model's clip grid (N_v clips); windows of
``window_clips`` clips every ``stride_clips`` clips are embedded (``svg_core.search.encode``) and
added to an inner-product index: exact (``IndexFlatIP``) or inverted-file (``IndexIVFFlat``,
``nlist`` cells, ``nprobe`` visited per query). A video's score is its best window's.

On disk an index is a folder: ``windows.faiss`` (the faiss index), ``windows.json`` (one row per
window: video id, start/end clip, start/end seconds) and ``index.json`` (kind, nlist, nprobe,
window, stride, the checkpoint it was built with).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from svg_core.data.atomic_file import atomic_write
from svg_core.errors import MissingInputError, UserInputError

IndexKind = Literal["flat", "ivf"]


def window_spans(n_clips: int, window_clips: int, stride_clips: int) -> list[tuple[int, int]]:
    """Sliding windows ``[start, end)`` in clips; the last one is moved back to end at ``n_clips``.

    >>> window_spans(10, 4, 3)
    [(0, 4), (3, 7), (6, 10)]
    >>> window_spans(3, 8, 4)
    [(0, 3)]
    """
    if window_clips < 1 or stride_clips < 1:
        raise UserInputError(f"window and stride must be >= 1 clip, found {window_clips} and {stride_clips}")
    if n_clips <= window_clips:
        return [(0, n_clips)]
    starts = list(range(0, n_clips - window_clips + 1, stride_clips))
    if starts[-1] + window_clips < n_clips:
        starts.append(n_clips - window_clips)
    return [(s, s + window_clips) for s in starts]


@dataclass
class IndexSettings:
    """How an index was built (``index.json``)."""

    kind: IndexKind = "flat"  # flat = exact inner product; ivf = IndexIVFFlat
    nlist: int = 100  # IVF: number of cells (k-means centroids)
    nprobe: int = 8  # IVF: cells visited per query
    window_clips: int = 8  # clips per window, on the model's N_v grid
    stride_clips: int = 4  # window stride in clips
    checkpoint: str = ""  # the AVLnet checkpoint of the embeddings
    notes: dict = field(default_factory=dict)


def make_faiss_index(vectors: np.ndarray, kind: IndexKind = "flat", nlist: int = 100, nprobe: int = 8,
                     seed: int = 0) -> faiss.Index:
    """An inner-product faiss index holding ``vectors``.

    Args:
        vectors: float32 [N, E].
        kind: "flat" (exact) or "ivf" (``nlist`` is capped at N; k-means seeded by ``seed``).
        nprobe: IVF cells visited per query (capped at nlist).

    Returns:
        the faiss index with the N vectors added (ids 0..N-1).
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] == 0:
        raise UserInputError(f"need a non-empty [N, E] matrix of vectors, found {vectors.shape}")
    dim = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "ivf":
        nlist = max(1, min(nlist, vectors.shape[0]))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.cp.min_points_per_centroid = 1  # small collections: no warning spam, still trains
        index.train(vectors)
        index.nprobe = max(1, min(nprobe, nlist))
    else:
        raise UserInputError(f"index kind must be flat or ivf, found {kind!r}")
    index.add(vectors)
    return index


def search_windows(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k windows per query.

    Args:
        queries: float32 [Q, E]; k: windows returned (capped at the index size).

    Returns:
        (scores float32 [Q, k], window ids int64 [Q, k]), best first; id -1 where IVF found fewer.
    """
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    return index.search(queries, max(1, min(k, index.ntotal)))


def recall_at_k(exact_ids: np.ndarray, approx_ids: np.ndarray, k: int = 10) -> float:
    """Share of the exact top-k ids that the approximate top-k also returns (mean over queries).

    >>> recall_at_k(np.array([[1, 2, 3]]), np.array([[3, 1, 9]]), k=3)
    0.6666666666666666
    """
    exact, approx = np.asarray(exact_ids)[:, :k], np.asarray(approx_ids)[:, :k]
    if exact.shape[0] != approx.shape[0] or exact.size == 0:
        raise ValueError(f"need as many queries on both sides, found {exact.shape} and {approx.shape}")
    hits = [len(set(e.tolist()) & set(a.tolist()) - {-1}) / len(e) for e, a in zip(exact, approx)]
    return float(np.mean(hits))


def ivf_recall_on_sample(index: "WindowIndex", vectors: np.ndarray, n_queries: int = 100, k: int = 10,
                         seed: int = 0) -> float:
    """Recall@k of an IVF index against exact search, querying with a seeded sample of its windows
    (plus noise, so that a query is not trivially its own window).

    Args:
        index: a :class:`WindowIndex` of kind "ivf"; vectors: float32 [N, E], the indexed vectors.
    """
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), size=min(n_queries, len(vectors)), replace=False)
    queries = vectors[rows] + rng.standard_normal((len(rows), vectors.shape[1])).astype(np.float32) * vectors.std()
    _, exact = search_windows(make_faiss_index(vectors, "flat"), queries, k)
    _, approx = search_windows(index.index, queries, k)
    return recall_at_k(exact, approx, k)


def rank_videos(scores: np.ndarray, ids: np.ndarray, window_video: list[str]) -> list[tuple[str, float, int]]:
    """Videos ranked by their best window among the returned ones.

    Args:
        scores / ids: one query's row of :func:`search_windows` ([k] each).
        window_video: video id of each window id.

    Returns:
        [(video_id, best score, best window id)], best first.
    """
    best: dict[str, tuple[float, int]] = {}
    for score, wid in zip(scores.tolist(), ids.tolist()):
        if wid < 0:
            continue
        vid = window_video[wid]
        if vid not in best or score > best[vid][0]:
            best[vid] = (float(score), int(wid))
    return sorted(((v, s, w) for v, (s, w) in best.items()), key=lambda t: -t[1])


@dataclass
class WindowIndex:
    """Window embeddings of a collection in a faiss index, with each window's place.

    Attributes:
        index: the faiss index (ids = rows of ``windows``).
        windows: one dict per window: ``video_id``, ``start_clip``, ``end_clip`` (exclusive),
            ``start_sec``, ``end_sec``.
        settings: how it was built.
    """

    index: faiss.Index
    windows: list[dict]
    settings: IndexSettings

    @classmethod
    def build(cls, vectors: np.ndarray, windows: list[dict], settings: IndexSettings, seed: int = 0) -> "WindowIndex":
        """Index ``vectors`` (float32 [N, E], row i = ``windows[i]``)."""
        if len(windows) != len(vectors):
            raise ValueError(f"{len(vectors)} vectors for {len(windows)} windows")
        return cls(make_faiss_index(vectors, settings.kind, settings.nlist, settings.nprobe, seed), windows, settings)

    @property
    def window_video(self) -> list[str]:
        return [w["video_id"] for w in self.windows]

    @property
    def n_videos(self) -> int:
        return len(set(self.window_video))

    def search_videos(self, query: np.ndarray, top_videos: int = 10) -> list[dict]:
        """Rank videos for one query embedding (float32 [E]) by their best window.

        All windows are searched when ``top_videos`` covers every video (exact ranking of all);
        otherwise the top windows (8 per wanted video) are.

        Returns:
            [{"video_id", "score", "start_sec", "end_sec", "window"}], best first (the window is
            the best one of the video).
        """
        n_videos = self.n_videos
        k = self.index.ntotal if top_videos >= n_videos else min(self.index.ntotal, 8 * top_videos)
        scores, ids = search_windows(self.index, query[None, :], k)
        out = []
        for vid, score, wid in rank_videos(scores[0], ids[0], self.window_video)[:top_videos]:
            w = self.windows[wid]
            out.append({"video_id": vid, "score": score, "start_sec": w["start_sec"], "end_sec": w["end_sec"],
                        "window": wid})
        return out

    def save(self, directory: str | Path) -> Path:
        """Write the index folder (see the module docstring)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write(directory / "windows.faiss", lambda tmp: faiss.write_index(self.index, str(tmp)))
        (directory / "windows.json").write_text(json.dumps(self.windows) + "\n", encoding="utf-8")
        (directory / "index.json").write_text(json.dumps(asdict(self.settings), indent=2) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "WindowIndex":
        """Read an index folder written by :meth:`save`."""
        directory = Path(directory)
        if not (directory / "index.json").is_file():
            raise MissingInputError(f"{directory}: not a search index (no index.json); build one with "
                                    "python -m svg_core.search index")
        settings = IndexSettings(**json.loads((directory / "index.json").read_text(encoding="utf-8")))
        index = faiss.read_index(str(directory / "windows.faiss"))
        if settings.kind == "ivf":
            faiss.extract_index_ivf(index).nprobe = settings.nprobe
        windows = json.loads((directory / "windows.json").read_text(encoding="utf-8"))
        return cls(index, windows, settings)
