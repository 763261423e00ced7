"""Result tables and plots for docs/RESULTS.md, read from the runs of ``python -m svg_core.reporting.runs``.

    python -m svg_core.results results/e10 --update-md docs/RESULTS.md
    python -m svg_core.results results/listening_demo --only LISTENING --into LISTENING_DEMO --update-md docs/RESULTS.md

Every figure is recomputed here from logged files with :func:`svg_core.evaluate.compute_metrics`
(the project's only metric code): per-query prediction files ``RUNS/eval/NAME_NOISE.jsonl`` and
``RUNS/eval/cascade_ENGINE_NOISE_text_sK.jsonl``, training logs ``RUNS/NAME/log.csv`` and the wall
times that ``svg_core.reporting.runs`` appends to ``RUNS/NAME.log``. Seeds are found by name (``_s0``,
``_s1`` ...); a row reports the mean and the sample standard deviation over the seeds present.
The listening table reads the metrics JSON beside each predictions file
(:mod:`svg_core.reporting.listening_table`).
``notebooks/results.py`` calls these functions and draws the committed PNGs with
:mod:`svg_core.reporting.plots`.
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from svg_core.engine.metrics import compute_metrics, read_predictions
from svg_core.errors import UserInputError, run_cli
from svg_core.reporting.listening_table import listening_block
from svg_core.reporting.paired import paired_difference, per_query  # noqa: F401 (also results.*)
from svg_core.reporting.run_files import seed_files  # noqa: F401 (also results.seed_files for callers)

METRICS = ("R1@0.3", "R1@0.5", "R1@0.7", "R5@0.3", "R5@0.5", "R5@0.7", "mIoU")

# (row label, file stem before the seed, file stem after it) of the paper's Table 2
TABLE2_ROWS = (
    ("Base", "base_s", "_normal"),
    ("Base + CPC", "cpc_base_s", "_normal"),
    ("VSLNet (audio)", "vslnet_s", "_normal"),
    ("VGCL (full)", "vgcl_base_s", "_normal"),
    ("Base, Whisper base front-end", "base_whisper_s", "_normal"),  # frozen pre-trained encoder + adapter
    # taught by the text model of the same seed (svg_core.engine.text_teacher; runner lanes *_tt)
    ("Base, taught by text", "base_tt_s", "_normal"),
    ("Base + CPC, taught by text", "cpc_base_tt_s", "_normal"),
    ("VSLNet (audio), taught by text", "vslnet_tt_s", "_normal"),
    ("VGCL (full), taught by text", "vgcl_base_tt_s", "_normal"),
    ("Base, Whisper base front-end, taught by text", "base_whisper_tt_s", "_normal"),
    ("Cascade: Whisper -> text", "cascade_whisper_normal_text_s", ""),
    ("Cascade: PocketSphinx -> text", "cascade_sphinx_normal_text_s", ""),
    ("Text, original caption", "text_s", "_normal"),
    ("Text, original caption, D = 256", "text_d256_s", "_normal"),  # world-4 trial: a wider network
    ("Text, original caption, N_v = 128, KL", "text_f128kl_s", "_normal"),  # world-4 trial: finer grid, smooth loss
)
# Table 3 (VGCL ablations) and Table 4 (curriculum pacing x kappa): the pre-training variants that
# svg_core.reporting.runs names vgcl_pre{TAG}_sN / vgcl_base{TAG}_sN. Full VGCL is linear pacing, kappa 10.
TABLE3_ROWS = (
    ("VGCL (full)", "vgcl_base_s", "_normal"),
    ("w/o curriculum", "vgcl_base_nocl_s", "_normal"),
    ("w/o entire video", "vgcl_base_noent_s", "_normal"),
    ("w/o self-attention", "vgcl_base_nosa_s", "_normal"),
    ("audio crop 128 frames", "vgcl_base_crop128_s", "_normal"),
)
TABLE4_ROWS = (
    ("linear, kappa 5", "vgcl_base_lin5_s", "_normal"),
    ("linear, kappa 10 (full)", "vgcl_base_s", "_normal"),
    ("exponential, kappa 5", "vgcl_base_exp5_s", "_normal"),
    ("exponential, kappa 10", "vgcl_base_exp10_s", "_normal"),
    ("logarithmic, kappa 5", "vgcl_base_log5_s", "_normal"),
    ("logarithmic, kappa 10", "vgcl_base_log10_s", "_normal"),
)
NOISE_LEVELS = ("clean", "normal", "large")
FIG4_ROWS = (("Base", "base_s", ""), ("VGCL (full)", "vgcl_base_s", ""),
             ("Base, Whisper base front-end", "base_whisper_s", ""),
             ("Base, Whisper base front-end, taught by text", "base_whisper_tt_s", ""),
             ("Cascade: Whisper", "cascade_whisper_{noise}_text_s", ""),
             ("Cascade: PocketSphinx", "cascade_sphinx_{noise}_text_s", ""))


@dataclass
class Row:
    """One table row: metrics of each seed found, and their mean and standard deviation.

    Attributes:
        label: row name.
        seeds: seed numbers found.
        per_seed: metrics dict of each seed (percentages).
        n_queries: queries scored per seed.
    """

    label: str
    seeds: list[int] = field(default_factory=list)
    per_seed: list[dict] = field(default_factory=list)
    n_queries: int = 0

    def mean(self, metric: str) -> float:
        return statistics.fmean(m[metric] for m in self.per_seed)

    def std(self, metric: str) -> float:
        """Sample standard deviation over seeds (0 with one seed)."""
        values = [m[metric] for m in self.per_seed]
        return statistics.stdev(values) if len(values) > 1 else 0.0


def row_from_files(label: str, files: dict[int, Path], limit: int | None = None) -> Row:
    """Metrics of each seed's predictions (the first ``limit`` queries when given)."""
    row = Row(label)
    for seed, path in sorted(files.items()):
        records = read_predictions(path)[:limit]
        row.seeds.append(seed)
        row.per_seed.append(compute_metrics(records))
        row.n_queries = len(records)
    return row


def table(runs_dir: str | Path, spec: tuple = TABLE2_ROWS, limit: int | None = None,
          seeds: tuple[int, ...] | None = None) -> list[Row]:
    """The rows of ``spec`` (``TABLE2_ROWS``, ``TABLE3_ROWS``, ``TABLE4_ROWS``) found under
    ``runs_dir/eval``, over ``seeds`` only when given; rows with no run yet are left out."""
    eval_dir = Path(runs_dir) / "eval"
    rows = [row_from_files(label, {s: f for s, f in seed_files(eval_dir, stem, suffix).items()
                                   if seeds is None or s in seeds}, limit)
            for label, stem, suffix in spec]
    return [r for r in rows if r.per_seed]


def table2(runs_dir: str | Path, limit: int | None = None) -> list[Row]:
    """The Table 2 rows found under ``runs_dir/eval`` (rows with no run yet are left out)."""
    return table(runs_dir, TABLE2_ROWS, limit)


def noise_rows(runs_dir: str | Path, limit: int | None = None) -> dict[str, dict[str, Row]]:
    """Fig. 4: ``{model label: {noise level: Row}}`` for the levels found."""
    eval_dir = Path(runs_dir) / "eval"
    out: dict[str, dict[str, Row]] = {}
    for label, stem, _ in FIG4_ROWS:
        for noise in NOISE_LEVELS:
            if "{noise}" in stem:
                files = seed_files(eval_dir, stem.format(noise=noise), "")
            else:
                files = seed_files(eval_dir, stem, f"_{noise}")
            if files:
                out.setdefault(label, {})[noise] = row_from_files(f"{label}, {noise}", files, limit)
    return out


DATA_SUMMARY = "data_summary.json"  # what the tables need from the dataset, kept beside archived runs


def save_data_summary(data_dir: str | Path, runs_dir: str | Path, split: str = "test") -> Path:
    """Write ``runs_dir/data_summary.json``: the blind prior on ``split`` and each of its queries'
    caption needs (from ``scenes.json``), so that archived runs make their tables without the
    dataset. Returns the file's path."""
    import json

    from svg_core.data.dataset import DatasetLayout
    from svg_core.synth.stats import blind_prior

    records, _ = DatasetLayout.from_dir(data_dir).records(split)
    wanted = {r.query_id for r in records}
    scenes = Path(data_dir) / "scenes.json"
    needs = {k: v for k, v in _needs_from_scenes(scenes).items() if k in wanted} if scenes.is_file() else {}
    summary = {"data_dir": str(data_dir), "split": split, "prior": blind_prior(data_dir, split), "needs": needs}
    path = Path(runs_dir) / DATA_SUMMARY
    path.write_text(json.dumps(summary, indent=1) + "\n")
    return path


def _needs_from_scenes(scenes_path: Path) -> dict[str, list[str]]:
    import json

    return {q["wav_name"]: q["needs"] or ["none"]
            for scene in json.loads(Path(scenes_path).read_text()) for q in scene["queries"]}


def _summary(folder: str | Path) -> dict | None:
    import json

    path = Path(folder) / DATA_SUMMARY
    return json.loads(path.read_text()) if path.is_file() else None


def prior_row(source: str | Path) -> Row:
    """The blind prior (one fixed window from the training moments), as ``svg_core.synth stats``
    prints it. ``source``: a dataset folder, or a runs folder holding ``data_summary.json``."""
    summary = _summary(source)
    if summary is not None:
        prior = summary["prior"]
    else:
        from svg_core.synth.stats import blind_prior

        prior = blind_prior(source)
    return Row("Blind prior (no query)", [0], [{m: prior.get(m, float("nan")) for m in METRICS}],
               int(prior.get("n_queries", 0)))


def rows_by_need(pred_path: str | Path, needs_source: str | Path, label: str = "") -> list[Row]:
    """One row per caption need of the synthetic benchmark (what a query must name to be unique).

    ``needs_source``: the ``scenes.json`` that ``python -m svg_core.synth build`` writes (it
    lists, for each query, the kinds of words its caption needs: ``colour``, ``shape``,
    ``colour_or_shape``, ``action``, ``temporal`` ("again", "first"...) or none), or a runs
    folder holding ``data_summary.json``. A query with several needs counts in each.

    Returns:
        Rows labelled ``"{label} needs {kind}"``, one seed each, in a fixed kind order.
    """
    summary = _summary(needs_source) if Path(needs_source).is_dir() else None
    needs_of = summary["needs"] if summary is not None else _needs_from_scenes(Path(needs_source))
    groups: dict[str, list[dict]] = {}
    for record in read_predictions(pred_path):
        if record["query_id"] not in needs_of:
            raise ValueError(f"{record['query_id']} of {pred_path} is not in {needs_source}: is it the same build?")
        for kind in needs_of[record["query_id"]]:
            groups.setdefault(kind, []).append(record)
    order = ("none", "colour", "shape", "colour_or_shape", "action", "temporal")
    return [Row(f"{label} needs {kind}".strip(), [0], [compute_metrics(groups[kind])], len(groups[kind]))
            for kind in sorted(groups, key=lambda k: (order.index(k) if k in order else len(order), k))]


def format_table(rows: list[Row], metrics: tuple[str, ...] = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU")) -> str:
    """A markdown table: mean ± std over seeds, and the seeds and query counts."""
    lines = ["| method | " + " | ".join(metrics) + " | seeds | queries |",
             "|---|" + "---:|" * len(metrics) + "---|---:|"]
    for row in rows:
        cells = [f"{row.mean(m):.2f} ± {row.std(m):.2f}" if len(row.per_seed) > 1 else f"{row.mean(m):.2f}"
                 for m in metrics]
        lines.append(f"| {row.label} | " + " | ".join(cells) + f" | {','.join(map(str, row.seeds))} | {row.n_queries} |")
    return "\n".join(lines)


def val_curve(run_dir: str | Path, metric: str = "val_R1@0.5") -> list[tuple[int, float]]:
    """``[(epoch, value)]`` of a validation metric from ``run_dir/log.csv``."""
    path = Path(run_dir) / "log.csv"
    if not path.is_file():
        return []
    with path.open() as handle:
        return [(int(r["epoch"]), float(r[metric])) for r in csv.DictReader(handle) if r.get(metric)]


def wall_seconds(runs_dir: str | Path) -> dict[str, float]:
    """``{run name: wall seconds}`` from the ``NAME wall X s`` lines ``svg_core.reporting.runs`` logs.

    A run resumed after a kill has one line per finished part, summed here; the killed part wrote
    none, so its epochs are missing from the sum (its ``log.csv`` keeps each epoch's ``epoch_sec``).
    """
    out: dict[str, float] = {}
    for log in Path(runs_dir).glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            match = re.fullmatch(r"(\S+) wall ([0-9.]+) s", line.strip())
            if match:
                out[match.group(1)] = out.get(match.group(1), 0.0) + float(match.group(2))
    return out


# (label, stem of A, stem of B) for the paired differences A - B (normal noise, seeds both have)
PAIRED_ROWS = (
    ("VGCL (full) - Base", "vgcl_base_s", "base_s"),
    ("Base + CPC - Base", "cpc_base_s", "base_s"),
    ("VSLNet (audio) - Base", "vslnet_s", "base_s"),
    ("VGCL (full) - Base + CPC", "vgcl_base_s", "cpc_base_s"),
    # world 4: what the text teacher brings, and what is left between speech and the true caption
    ("Base, Whisper front-end: taught by text - untaught", "base_whisper_tt_s", "base_whisper_s"),
    ("Base, Whisper front-end, taught - Base, taught (log-Mel)", "base_whisper_tt_s", "base_tt_s"),
    ("VGCL (full), taught - Base, taught", "vgcl_base_tt_s", "base_tt_s"),
    ("Text, original caption - Base, Whisper front-end, taught", "text_s", "base_whisper_tt_s"),
    # the front-end issue's bar: the end-to-end front-end model against the Whisper cascade, per noise
    ("Base, Whisper front-end, taught - Whisper cascade (normal noise)", "base_whisper_tt_s",
     ("cascade_whisper_normal_text_s", "")),
    ("Base, Whisper front-end, taught - Whisper cascade (large noise)", ("base_whisper_tt_s", "_large"),
     ("cascade_whisper_large_text_s", "")),
)


def paired_table(runs_dir: str | Path, spec: tuple = PAIRED_ROWS, metrics: tuple[str, ...] = ("R1@0.5", "mIoU")) -> str:
    """A markdown table of :func:`paired_difference` for each pair of ``spec`` found.

    A side of a ``spec`` row is a file stem before the seed (its ``_normal`` evaluation) or a
    ``(stem, suffix)`` pair, e.g. ``("cascade_whisper_large_text_s", "")``.
    """
    eval_dir = Path(runs_dir) / "eval"
    lines = ["| A - B | " + " | ".join(f"{m}: A - B [95% CI]" for m in metrics) + " | seeds | queries (videos) |",
             "|---|" + "---:|" * len(metrics) + "---|---:|"]
    for label, side_a, side_b in spec:
        files_a, files_b = (seed_files(eval_dir, *((side, "_normal") if isinstance(side, str) else side))
                            for side in (side_a, side_b))
        if not set(files_a) & set(files_b):
            continue
        cells, result = [], {}
        try:
            for m in metrics:
                result = paired_difference(files_a, files_b, m)
                cells.append(f"{result['diff']:+.2f} [{result['ci_low']:+.2f}, {result['ci_high']:+.2f}]")
        except ValueError as err:  # one broken pair should not hide the others
            lines.append(f"| {label} | not comparable: {err} |" + " |" * len(metrics))
            continue
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {','.join(map(str, result['seeds']))} | {result['n_queries']} ({result['n_videos']}) |")
    return "\n".join(lines)


def _variant_files(runs_dir: str | Path, spec: tuple, seed: int) -> list[tuple[str, str, dict[int, Path]]]:
    """``(label, stem, {seed: prediction file})`` of each row of ``spec`` run at ``seed``."""
    eval_dir = Path(runs_dir) / "eval"
    return [(label, stem, {seed: f}) for label, stem, suffix in spec
            if (f := seed_files(eval_dir, stem, suffix).get(seed)) is not None]


def _ablation_pairs(runs_dir: str | Path, spec: tuple, metric: str, seed: int,
                    reference: str) -> dict[str, dict | str]:
    """``{label: paired_difference result, or why the variant is not comparable}`` of each variant
    of ``spec`` against the full model at ``seed`` (empty when the full model lacks that seed)."""
    ref = seed_files(Path(runs_dir) / "eval", reference, "_normal").get(seed)
    if ref is None:
        return {}
    out: dict[str, dict | str] = {}
    for label, stem, files in _variant_files(runs_dir, spec, seed):
        if stem == reference:
            continue
        try:
            out[label] = paired_difference(files, {seed: ref}, metric)
        except ValueError as err:
            out[label] = f"not comparable: {err}"
    return out


def ablation_differences(runs_dir: str | Path, specs: tuple = (), metric: str = "R1@0.5", seed: int = 0,
                         reference: str = "vgcl_base_s") -> list[tuple[str, dict]]:
    """``(label, paired_difference result)`` of each variant of ``specs`` (default Tables 3 and 4)
    against the full model at ``seed``; variants not comparable (other queries) are left out."""
    return [(label, d) for spec in specs or (TABLE3_ROWS, TABLE4_ROWS)
            for label, d in _ablation_pairs(runs_dir, spec, metric, seed, reference).items()
            if isinstance(d, dict)]  # the table says why the others are not comparable


def ablation_table(runs_dir: str | Path, spec: tuple, seed: int = 0, reference: str = "vgcl_base_s",
                   metrics: tuple[str, ...] = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU"),
                   paired: tuple[str, ...] = ("R1@0.5", "mIoU")) -> str | None:
    """Table 3 or 4 (``spec``: ``TABLE3_ROWS`` / ``TABLE4_ROWS``) at one training seed, normal noise.

    The variants are trained at ``seed`` only, so every row, the full model's too, is that seed's
    run, with each variant's paired difference to the full model (``reference``) on the same test
    queries (:func:`paired_difference`). A last line gives the full model's spread over all its
    seeds: a one-seed difference smaller than that spread is not evidence either way.

    Returns:
        The markdown, or None when the folder holds no variant besides the full model.
    """
    found = _variant_files(runs_dir, spec, seed)
    if not any(stem != reference for _, stem, _ in found):
        return None
    pairs = {m: _ablation_pairs(runs_dir, spec, m, seed, reference) for m in paired}
    lines = ["| variant | " + " | ".join(metrics) + " | "
             + " | ".join(f"{m} vs full [95% CI]" for m in paired) + " | seed | queries |",
             "|---|" + "---:|" * (len(metrics) + len(paired)) + "---|---:|"]
    for label, stem, files in found:
        row = row_from_files(label, files)
        cells = [f"{row.mean(m):.2f}" for m in metrics]
        for m in paired:
            d = "(reference)" if stem == reference else pairs[m].get(label, "(no full model at this seed)")
            cells.append(d if isinstance(d, str) else f"{d['diff']:+.2f} [{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {seed} | {row.n_queries} |")
    full = row_from_files("full", seed_files(Path(runs_dir) / "eval", reference, "_normal"))
    if len(full.seeds) > 1:
        spread = ", ".join(f"{m} {full.mean(m):.2f} ± {full.std(m):.2f}" for m in paired)
        lines.append(f"\nFull model over seeds {','.join(map(str, full.seeds))}: {spread} (mean ± std): "
                     "a one-seed difference inside that spread is not evidence either way.")
    return "\n".join(lines)


NEED_RUNS = (("Text (original caption)", "text_s0"), ("Base", "base_s0"), ("VGCL (full)", "vgcl_base_s0"))


def need_rows(runs_dir: str | Path) -> list[Row]:
    """:func:`rows_by_need` of each seed-0 run of :data:`NEED_RUNS` found, with the caption needs
    from ``RUNS/data_summary.json`` (empty without it)."""
    runs = Path(runs_dir)
    rows = []
    for label, name in NEED_RUNS if (runs / DATA_SUMMARY).is_file() else ():
        pred = runs / "eval" / f"{name}_normal.jsonl"
        if pred.is_file():
            rows += rows_by_need(pred, runs, label)
    return rows


BLOCK_NAMES = ("TABLE2", "PAIRED", "TABLE2_SUBSET", "TABLE3", "TABLE4", "FIG4", "FIG4_SUBSET", "NEEDS", "LISTENING",
               "WALL_TIMES")


def markdown_blocks(runs_dir: str | Path, cascade_limit: int = 100, prior_source: str | Path | None = None,
                    with_needs: bool = True) -> dict[str, str]:
    """The generated parts of docs/RESULTS.md, keyed by the name of their ``<!-- NAME -->`` marker.

    TABLE2 (with the blind prior from ``prior_source``, by default ``RUNS/data_summary.json`` when
    it exists), TABLE2_SUBSET (every row on the first ``cascade_limit`` test queries), PAIRED
    (:func:`paired_table`), TABLE3 and TABLE4 (:func:`ablation_table`, seed 0), FIG4 (and FIG4_SUBSET,
    every row on the first ``cascade_limit`` test queries, the cascades' own), NEEDS
    (:func:`need_rows`), LISTENING (:func:`svg_core.reporting.listening_table.listening_block`)
    and WALL_TIMES (one line). A table with no runs yet reads "not run yet".
    ``with_needs=False`` leaves NEEDS out (the console report does not print it).
    """

    runs = Path(runs_dir)
    if prior_source is None and (runs / DATA_SUMMARY).is_file():
        prior_source = runs
    prior = [prior_row(prior_source)] if prior_source is not None else []
    blocks = {"TABLE2": format_table(prior + table2(runs)), "PAIRED": paired_table(runs),
              "TABLE2_SUBSET": format_table(table2(runs, limit=cascade_limit))}
    for key, spec in (("TABLE3", TABLE3_ROWS), ("TABLE4", TABLE4_ROWS)):
        blocks[key] = ablation_table(runs, spec) or "(not run yet: only the full model is in the folder)"
    for key, limit in (("FIG4", None), ("FIG4_SUBSET", cascade_limit)):
        levels = noise_rows(runs, limit)
        blocks[key] = format_table([r for by in levels.values() for r in (by[n] for n in NOISE_LEVELS if n in by)],
                                   metrics=("R1@0.5", "mIoU"))
    if with_needs:
        needs = need_rows(runs)
        blocks["NEEDS"] = (format_table(needs, metrics=("R1@0.5", "mIoU")) if needs else
                           f"(no {DATA_SUMMARY} or seed-0 predictions in {runs}: see --save-data-summary)")
    blocks["LISTENING"] = listening_block(runs)
    blocks["WALL_TIMES"] = ", ".join(f"`{k}` {v / 60:.0f} min" for k, v in sorted(wall_seconds(runs).items()))
    return blocks


def fill_markdown(path: str | Path, blocks: dict[str, str]) -> list[str]:
    """Replace the text between ``<!-- NAME -->`` and ``<!-- /NAME -->`` in ``path`` by ``blocks[NAME]``.

    Only the markers present in the file are filled (a one-line block such as WALL_TIMES stays
    inline; a table gets its own lines), everything else in the page is kept as written.

    Returns:
        The names filled.

    Raises:
        ValueError: a marker opens twice or is never closed (the file is left unchanged).
    """
    path = Path(path)
    text = path.read_text()
    filled = []
    for name, body in blocks.items():
        opens = text.count(f"<!-- {name} -->")
        if opens == 0:
            continue
        pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", flags=re.S)
        if opens != 1 or len(pattern.findall(text)) != 1:
            raise ValueError(f"{path}: marker <!-- {name} --> must open once and close once with <!-- /{name} -->")
        sep = "\n" if "\n" in body or body.startswith("|") else ""
        text = pattern.sub(lambda _m: f"<!-- {name} -->{sep}{body}{sep}<!-- /{name} -->", text)
        filled.append(name)
    path.write_text(text)
    return filled


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a user error prints one ``error: ...`` line and exits 2 (``--debug``: traceback)."""
    return run_cli(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m svg_core.results", description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="run folder of python -m svg_core.reporting.runs (--out)")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder, for the blind-prior row (default: RUNS/data_summary.json when present)")
    parser.add_argument("--save-data-summary", action="store_true",
                        help="write RUNS/data_summary.json from --data (prior and caption needs) for archived runs")
    parser.add_argument("--cascade-limit", type=int, default=100,
                        help="queries the cascades were run on: also prints every row on that subset")
    parser.add_argument("--update-md", type=Path, default=None, metavar="MARKDOWN",
                        help="also rewrite the <!-- NAME --> blocks of this page (docs/RESULTS.md) from RUNS")
    parser.add_argument("--only", action="append", choices=BLOCK_NAMES, metavar="BLOCK",
                        help="print and rewrite only this block (repeatable), e.g. LISTENING for a folder that has"
                             f" no other table's runs; one of {', '.join(BLOCK_NAMES)}")
    parser.add_argument("--into", default=None, metavar="MARKER",
                        help="with one --only BLOCK: write it into <!-- MARKER --> instead of <!-- BLOCK -->"
                             " (a second folder's table on the same page, e.g. LISTENING_DEMO)")
    args = parser.parse_args(argv)
    if not (args.runs / "eval").is_dir():
        raise UserInputError(f"{args.runs}/eval not found: run python -m svg_core.reporting.runs PLAN first")
    if args.into is not None and (not args.only or len(args.only) != 1):
        raise UserInputError("--into MARKER needs exactly one --only BLOCK")
    if args.into is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", args.into):
        raise UserInputError(f"--into {args.into!r}: a marker name is letters, digits and _")
    if args.save_data_summary:
        if args.data is None:
            raise UserInputError("--save-data-summary needs --data DATASET")
        print(f"wrote {save_data_summary(args.data, args.runs)}")
    prior_source = args.data or (args.runs if (args.runs / DATA_SUMMARY).is_file() else None)
    blocks = markdown_blocks(args.runs, args.cascade_limit, prior_source,  # every table computed once
                             with_needs=args.update_md is not None or "NEEDS" in (args.only or ()))
    if args.only:
        return _update_only(blocks, args.only, args.into, args.update_md)
    print("Table 2 (test split, noise=normal; cascade rows on their own subset, see 'queries')")
    print(blocks["TABLE2"])
    print(f"\nAll rows on the first {args.cascade_limit} test queries (the cascade subset)")
    print(blocks["TABLE2_SUBSET"])
    for title, key in (("Table 3 (VGCL ablations)", "TABLE3"), ("Table 4 (curriculum pacing x kappa)", "TABLE4")):
        if blocks[key].startswith("|"):  # more than the full model, which Table 2 already shows
            print(f"\n{title}, test split, noise=normal")
            print(blocks[key])
    print("\nPaired differences on the same test queries (normal noise; 95% bootstrap interval, videos resampled)")
    print(blocks["PAIRED"])
    if blocks["FIG4"].count("\n") > 1:  # a row below the header
        print("\nFig. 4 (by noise preset; end-to-end rows on the whole test split, cascades on their subset)")
        print(blocks["FIG4"])
    if blocks["LISTENING"].startswith("|"):
        print("\nDoes it listen? (normal noise; drop = real query minus control, in points;"
              " — = evaluated without --listening)")
        print(blocks["LISTENING"])
    walls = wall_seconds(args.runs)
    if walls:
        print("\nWall time per run (s): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(walls.items())))
    if args.update_md is not None:
        filled = fill_markdown(args.update_md, blocks)
        print(f"\nupdated {args.update_md}: {', '.join(filled) or 'no <!-- NAME --> markers found'}")
    return 0


def _update_only(blocks: dict[str, str], only: list[str], into: str | None, page: Path | None) -> int:
    """``--only``: print the chosen blocks and fill only their markers (``--into``: another marker)."""
    chosen = {into: blocks[only[0]]} if into else {name: blocks[name] for name in dict.fromkeys(only)}
    for name, body in chosen.items():
        print(f"<!-- {name} -->\n{body}")
    if page is not None:
        missing = [name for name in chosen if f"<!-- {name} -->" not in page.read_text()]
        if missing:
            raise UserInputError(f"{page} has no <!-- {missing[0]} --> ... <!-- /{missing[0]} --> marker to fill")
        print(f"\nupdated {page}: {', '.join(fill_markdown(page, chosen))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
