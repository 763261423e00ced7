"""The "Does it listen?" table of docs/RESULTS.md, from the metrics JSON files of ``svg_core.reporting.runs``.

Every evaluation of ``python -m svg_core.reporting.runs`` runs ``python -m svg_core.evaluate ... --listening
--out RUNS/eval/NAME_NOISE.jsonl --metrics-out RUNS/eval/NAME_NOISE.metrics.json``: beside the
predictions, the JSON holds the within-video discrimination and the control runs (silent query,
another video's query, shuffled words for a text query; :mod:`svg_core.engine.listening`). A
control means running the model again, so its figures cannot be recomputed from the predictions
file and are read from the JSON. The real-query columns are recomputed from the predictions with
:func:`svg_core.engine.metrics.compute_metrics`, and the JSON's real-query figures must match them.

Cells read ``—`` for a run evaluated without ``--listening`` (no JSON, or ``"listening": null``)
and ``n/a`` for a control that does not apply (shuffled words: text queries only).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from svg_core.engine.metrics import compute_metrics, read_predictions
from svg_core.reporting.run_files import seed_files

# (row label, file stem before the seed, file stem after it): the Table 2 rows that svg_core.evaluate
# scores (the cascades run through svg_core.cascade, which has no listening diagnostics)
LISTENING_ROWS = (
    ("Base", "base_s", "_normal"),
    ("Base + CPC", "cpc_base_s", "_normal"),
    ("VSLNet (audio)", "vslnet_s", "_normal"),
    ("VGCL (full)", "vgcl_base_s", "_normal"),
    ("Text, original caption", "text_s", "_normal"),
    ("Text, original caption, N_v = 128", "text_nv128_s", "_normal"),  # world v3 trial: finer video grid
    ("Base, 11 epochs, no early stop", "base_e11_s", "_normal"),  # world v3: past the video-prior plateau
    # world v4 trial: a wider network (the video side holds 7 colour slots before it sees the query)
    ("Text, original caption, D = 256", "text_d256_s", "_normal"),
    ("Base, Whisper base front-end", "base_whisper_s", "_normal"),  # frozen pre-trained encoder + adapter
    ("Text, original caption, N_v = 128, KL", "text_f128kl_s", "_normal"),  # world v4 trial
    # taught by the same seed's text model (svg_core.engine.text_teacher)
    ("Base, taught by text", "base_tt_s", "_normal"),
    ("Base + CPC, taught by text", "cpc_base_tt_s", "_normal"),
    ("VSLNet (audio), taught by text", "vslnet_tt_s", "_normal"),
    ("VGCL (full), taught by text", "vgcl_base_tt_s", "_normal"),
    ("Base, Whisper base front-end, taught by text", "base_whisper_tt_s", "_normal"),
)
CONTROLS = (("silent", "silent"), ("other_video", "other video"), ("shuffled_words", "shuffled words"))
MISSING = "—"  # evaluated without --listening
NOT_APPLICABLE = "n/a"  # the control does not apply to this query type
REAL_TOLERANCE = 1e-6  # percentage points between the JSON's real query and the predictions


def metrics_json_path(pred_path: str | Path) -> Path:
    """``eval/NAME_NOISE.metrics.json`` beside ``eval/NAME_NOISE.jsonl``."""
    pred_path = Path(pred_path)
    return pred_path.with_name(pred_path.name.removesuffix(".jsonl") + ".metrics.json")


def read_listening(pred_path: str | Path) -> dict | None:
    """The ``listening`` part of the metrics JSON beside ``pred_path``; None when there is no JSON
    or it was written without ``--listening``."""
    path = metrics_json_path(pred_path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("listening")
    except (json.JSONDecodeError, AttributeError) as err:
        raise ValueError(f"{path}: not a metrics JSON of svg_core.evaluate --metrics-out ({err})") from err


@dataclass
class ListeningRow:
    """One model: the real-query metrics and the listening report of each seed used.

    Attributes:
        label: row name.
        seeds: the seeds with listening data, or every seed found when none has it.
        real: ``compute_metrics`` of each seed's predictions (percentages).
        listening: each seed's ``listening`` report (empty when no seed has one).
        n_queries: queries scored per seed.
    """

    label: str
    seeds: list[int] = field(default_factory=list)
    real: list[dict] = field(default_factory=list)
    listening: list[dict] = field(default_factory=list)
    n_queries: int = 0


def listening_rows(runs_dir: str | Path, spec: tuple = LISTENING_ROWS) -> list[ListeningRow]:
    """The rows of ``spec`` with predictions under ``runs_dir/eval`` (rows with no run are left out).

    Raises:
        ValueError: a metrics JSON whose real-query figures are not those of its predictions file.
    """
    eval_dir = Path(runs_dir) / "eval"
    rows = []
    for label, stem, suffix in spec:
        files = seed_files(eval_dir, stem, suffix)
        if not files:
            continue
        reports = {seed: read_listening(path) for seed, path in files.items()}
        with_data = [s for s in sorted(files) if reports[s] is not None]
        row = ListeningRow(label, with_data or sorted(files))
        for seed in row.seeds:
            records = read_predictions(files[seed])
            real = compute_metrics(records)
            report = reports[seed]
            if report is not None:
                logged = report["controls"]["real"]
                for metric in ("mIoU", "R1@0.5"):
                    if abs(logged[metric] - real[metric]) > REAL_TOLERANCE:
                        raise ValueError(f"{metrics_json_path(files[seed])}: real-query {metric} {logged[metric]:.4f}"
                                         f" is not that of {files[seed].name} ({real[metric]:.4f}): not one evaluation")
                row.listening.append(report)
            row.real.append(real)
            row.n_queries = len(records)
        rows.append(row)
    return rows


def _mean_cell(values: list[float]) -> str:
    """Mean, with the sample standard deviation over seeds when there are several."""
    if len(values) > 1:
        return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"
    return f"{values[0]:.2f}"


def _discrimination_cell(row: ListeningRow) -> str:
    if not row.listening:
        return MISSING
    parts = [r["discrimination"] for r in row.listening]
    pairs = parts[0]["n_pairs"]
    if any(p["n_pairs"] != pairs for p in parts):
        counts = [p["n_pairs"] for p in parts]
        raise ValueError(f"{row.label}: the seeds count different pairs ({counts}): other queries?")
    if pairs == 0 or any(math.isnan(p["discrimination_pct"]) for p in parts):
        return "no pairs"
    return f"{_mean_cell([p['discrimination_pct'] for p in parts])} ({pairs})"


def _control_cell(row: ListeningRow, control: str, metric: str) -> str:
    """``value (drop)``: the metric under the control and the real query's lead over it, in points."""
    if not row.listening:
        return MISSING
    runs = [r["controls"][control] for r in row.listening if control in r["controls"]]
    if not runs:
        return NOT_APPLICABLE
    return f"{_mean_cell([c[metric] for c in runs])} ({statistics.fmean(c['drop_' + metric] for c in runs):.2f})"


def format_listening_table(rows: list[ListeningRow]) -> str:
    """A markdown table, one row per model (see the module docstring for ``—`` and ``n/a``)."""
    header = ["model", "discrimination % (pairs)", "real mIoU", "real R1@0.5"]
    for _, name in CONTROLS:
        header += [f"{name} mIoU (drop)", f"{name} R1@0.5 (drop)"]
    header += ["seeds", "queries"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 3) + "---|---:|"]
    for row in rows:
        cells = [row.label, _discrimination_cell(row)]
        cells += [_mean_cell([m[metric] for m in row.real]) for metric in ("mIoU", "R1@0.5")]
        for control, _ in CONTROLS:
            cells += [_control_cell(row, control, metric) for metric in ("mIoU", "R1@0.5")]
        cells += [",".join(map(str, row.seeds)), str(row.n_queries)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def listening_block(runs_dir: str | Path) -> str:
    """The LISTENING block of :func:`svg_core.reporting.results.markdown_blocks`."""
    rows = listening_rows(runs_dir)
    return format_listening_table(rows) if rows else f"(not run yet: no evaluated run in {Path(runs_dir) / 'eval'})"
