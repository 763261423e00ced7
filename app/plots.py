"""Matplotlib figures of the demo: timeline, attention heatmap over the query's spectrogram
(plus the proposal map of a weakly supervised SIL model, or the alignment map of an FSAN one), robustness curve.

Figures are built with :class:`matplotlib.figure.Figure`, never pyplot: no global state, so
concurrent requests can draw at the same time.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless; must precede any backend use
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from svg_core.audio.frontend import SAMPLE_RATE  # noqa: E402

HOP_SEC = 0.01  # one log-Mel frame
GT_COLOUR, E2E_COLOUR, CASCADE_COLOUR, NOISE_COLOUR = "#2ca02c", "#1f77b4", "#ff7f0e", "#d62728"
SILENT_COLOUR, SHUFFLED_COLOUR = "#7f7f7f", "#c49c94"  # the controls of the "Does it listen?" panel


def _fmt_iou(iou: float | None) -> str:
    return "" if iou is None else f"IoU {iou:.2f}"


def timeline_figure(result) -> Figure:
    """Segments on the video's time axis and the end-to-end model's probability curves.

    Args:
        result: an :class:`app.handlers.GroundingResult`.

    Returns:
        A Figure: top, bars for the ground truth (when known), the end-to-end and the cascade
        predictions with their IoU; bottom, start/end/inside probabilities over the N_v grid.
    """
    duration = float(result.duration_sec)
    fig = Figure(figsize=(9, 4.2))
    # Fixed margins: constrained layout doubled the drawing time (it measures every label).
    fig.subplots_adjust(left=0.17, right=0.98, top=0.93, bottom=0.11, hspace=0.12)
    ax_bar, ax_prob = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1.4))
    rows = []
    if result.query.gt_sec is not None:
        rows.append(("ground truth", result.query.gt_sec, GT_COLOUR, ""))
    rows.append(("end-to-end", (result.e2e["start_sec"], result.e2e["end_sec"]), E2E_COLOUR,
                 _fmt_iou(result.e2e_iou)))
    if result.cascade_message == "pending":
        rows.append((f"cascade ({result.asr_engine})", None, CASCADE_COLOUR, "(ASR running)"))
    elif result.cascade is not None:
        rows.append((f"cascade ({result.asr_engine})", (result.cascade["start_sec"], result.cascade["end_sec"]),
                     CASCADE_COLOUR, _fmt_iou(result.cascade_iou)))
    else:
        rows.append((f"cascade ({result.asr_engine})", None, CASCADE_COLOUR, "no query understood"))
    _segment_rows(ax_bar, rows)
    fake_parts = [name.replace("_", " ") for name, fake in result.fake.items() if fake]
    ax_bar.set_title("Predicted moments" + (f"  [FAKE: {', '.join(fake_parts)}]" if fake_parts else ""))

    n_v = len(np.asarray(result.e2e["start_prob"]))
    centres = (np.arange(n_v) + 0.5) * duration / n_v
    for key, style, label in (("start_prob", "-", "start"), ("end_prob", "--", "end"), ("inside_prob", ":", "inside")):
        ax_prob.plot(centres, np.asarray(result.e2e[key], dtype=float), style, label=f"{label} (end-to-end)",
                     color=E2E_COLOUR if key != "inside_prob" else "#555555")
    if result.query.gt_sec is not None:
        ax_prob.axvspan(*result.query.gt_sec, color=GT_COLOUR, alpha=0.15, label="ground truth")
    ax_prob.set_xlim(0, duration)
    ax_prob.set_ylim(0, 1.02)
    ax_prob.set_xlabel("video time (s)")
    ax_prob.set_ylabel("probability")
    ax_prob.legend(fontsize=7, loc="upper right", ncols=4)
    return fig


def _segment_rows(ax, rows) -> None:
    """Horizontal bars, one per (label, (start_sec, end_sec) or None, colour, note), first on top."""
    labels = []
    for i, (label, seg, colour, note) in enumerate(reversed(rows)):
        if seg is not None:
            ax.broken_barh([(seg[0], seg[1] - seg[0])], (i - 0.35, 0.7), color=colour)
            note = f"{seg[0]:.1f}-{seg[1]:.1f} s  {note}".strip()
        labels.append(f"{label}\n{note}")
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylim(-0.6, len(rows) - 0.4)


def listen_figure(res) -> Figure:
    """The "Does it listen?" timeline: the real query's prediction against the controls'.

    Args:
        res: an :class:`app.listen.ListenResult`.

    Returns:
        A Figure: top, bars for the ground truth (when known), the end-to-end prediction for the
        user's query and for a silent query of the same length, and (when the words are known)
        the text grounder on the words and on the shuffled words; bottom, the end-to-end inside
        probability for the real and the silent query.
    """
    g = res.grounding
    duration = float(g.duration_sec)
    span = (lambda p: (float(p["start_sec"]), float(p["end_sec"])))
    rows = []
    if res.gt_sec is not None:
        rows.append(("ground truth", res.gt_sec, GT_COLOUR, ""))
    rows.append(("your query", span(g.e2e), E2E_COLOUR, _fmt_iou(g.e2e_iou)))
    rows.append(("silent query", span(res.silent), SILENT_COLOUR, _fmt_iou(res.silent_iou)))
    if res.text is not None:
        rows.append(("text: your words", span(res.text.words_pred), CASCADE_COLOUR, _fmt_iou(res.text.words_iou)))
        rows.append(("text: shuffled", span(res.text.shuffled_pred), SHUFFLED_COLOUR,
                     _fmt_iou(res.text.shuffled_iou)))
    fig = Figure(figsize=(9, 2.6 + 0.35 * len(rows)))
    fig.subplots_adjust(left=0.17, right=0.98, top=0.92, bottom=0.12, hspace=0.15)
    ax_bar, ax_prob = fig.subplots(2, 1, sharex=True, height_ratios=(len(rows) / 3, 1.2))
    _segment_rows(ax_bar, rows)
    e = res.effect
    ax_bar.set_title(f"Does it listen? IoU(your query, silent query) = {e['iou']:.2f}: {e['verdict']}"
                     + ("  [FAKE model]" if g.fake.get("model") else ""), fontsize=10)
    inside = np.asarray(g.e2e["inside_prob"], dtype=float)
    centres = (np.arange(len(inside)) + 0.5) * duration / len(inside)
    ax_prob.plot(centres, inside, "-", color=E2E_COLOUR, label="inside, your query")
    ax_prob.plot(centres, np.asarray(res.silent["inside_prob"], dtype=float), "--", color=SILENT_COLOUR,
                 label="inside, silent query")
    if res.gt_sec is not None:
        ax_prob.axvspan(*res.gt_sec, color=GT_COLOUR, alpha=0.15, label="ground truth")
    ax_prob.set_xlim(0, duration)
    ax_prob.set_ylim(0, 1.35)  # room for the legend above the curves
    ax_prob.set_yticks((0, 0.5, 1))
    ax_prob.set_xlabel("video time (s)")
    ax_prob.set_ylabel("probability")
    ax_prob.legend(fontsize=7, loc="upper right", ncols=3)
    return fig


def heatmap_figure(result, spectrogram: np.ndarray) -> Figure:
    """Context-query attention [video frames x audio frames] under the noisy query's spectrogram.

    Both panels share the query-time axis in seconds, so an attention column sits under the
    sound that produced it; the noise-covered span is shaded on both.

    Args:
        result: an :class:`app.handlers.GroundingResult`.
        spectrogram: log-Mel of ``result.noisy_wave``, [frames, 128] (10 ms frames).
    """
    audio_sec = len(result.noisy_wave) / SAMPLE_RATE
    attention = np.asarray(result.e2e["attention"], dtype=float)  # [N_v, T_a]
    n_v = attention.shape[0]
    proposals = result.e2e.get("proposal_map")  # weakly supervised (SIL, FSAN) models only
    fig = Figure(figsize=(9 if proposals is None else 13, 4.6))
    right = 0.88 if proposals is None else 0.6
    fig.subplots_adjust(left=0.08 if proposals is None else 0.06, right=right, top=0.93, bottom=0.1, hspace=0.3)
    ax_spec, ax_att = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1.6))
    if proposals is not None:  # FSAN: its alignment map; SIL: its proposal map
        draw = draw_alignment_map if result.e2e.get("alignment_map") is not None else draw_proposal_map
        draw(fig.add_axes((0.69, 0.1, 0.24, 0.83)), result)
    # Both matrices have one column per 10 ms log-Mel frame (the Grounder contract); a model that
    # truncates long queries returns fewer attention columns, which then end early on the axis.
    ax_spec.imshow(spectrogram.T, origin="lower", aspect="auto", cmap="magma",
                   extent=(0, spectrogram.shape[0] * HOP_SEC, 0, spectrogram.shape[1]))
    ax_spec.set_ylabel("mel band")
    ax_spec.set_title("Noisy query (log-Mel)")
    image = ax_att.imshow(attention, origin="lower", aspect="auto", cmap="viridis",
                          extent=(0, attention.shape[1] * HOP_SEC, 0, n_v),
                          interpolation="nearest")
    # The colour bar gets its own axes so both panels keep the same width (aligned time axes).
    pos = ax_att.get_position()
    fig.colorbar(image, cax=fig.add_axes((pos.x1 + 0.012, pos.y0, 0.015, pos.height)), label="attention")
    start_cell = result.e2e["start_sec"] / result.duration_sec * n_v
    end_cell = result.e2e["end_sec"] / result.duration_sec * n_v
    for y in (start_cell, end_cell):
        ax_att.axhline(y, color="white", lw=0.8, ls="--")
    ax_att.set_ylabel(f"video frame (of {n_v})")
    ax_att.set_xlabel("query time (s)   [dashed: predicted moment]")
    fake = "  [FAKE model]" if result.fake.get("model") else ""
    ax_att.set_title("Context-query attention (end-to-end model)" + fake)
    span = result.noise_span_sec
    if span[1] > span[0]:
        for ax in (ax_spec, ax_att):
            ax.axvspan(*span, ymin=0.94, ymax=1.0, color=NOISE_COLOUR, lw=0)  # a solid band on top
            ax.axvline(span[0], color=NOISE_COLOUR, lw=1.6, ls="--")
            ax.axvline(span[1], color=NOISE_COLOUR, lw=1.6, ls="--")
        ax_spec.text(span[0], spectrogram.shape[1] * 0.9, f" noise: {result.noise.kind}, {result.noise.snr_db:g} dB",
                     color="white", fontsize=8, va="top", fontweight="bold")
    ax_att.set_xlim(0, audio_sec)
    return fig


def draw_proposal_map(ax, result) -> None:
    """A SIL model's proposal map on ``ax``: score of every (start, end) moment, in seconds.

    Cells off the (sparse) map are blank; a white ring marks the predicted moment and a green
    ring the ground truth's cell when known.
    """
    scores = np.asarray(result.e2e["proposal_map"], dtype=float)  # [N_v, N_v], nan off the map
    n_v, duration = scores.shape[0], float(result.duration_sec)
    cell = duration / n_v
    image = ax.imshow(np.ma.masked_invalid(scores).T, origin="lower", cmap="viridis", interpolation="nearest",
                      extent=(0, duration, 0, duration), vmin=0.0, vmax=max(np.nanmax(scores), 1e-6))
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="proposal score")
    marks = [((result.e2e["start_sec"], result.e2e["end_sec"] - cell), "white", "predicted")]
    if result.query.gt_sec is not None:
        gs, ge = result.query.gt_sec
        marks.append(((np.floor(gs / cell) * cell, np.floor(max(ge - 1e-9, gs) / cell) * cell), GT_COLOUR, "ground truth"))
    for (start, end), colour, label in marks:  # the cell's lower-left corner is (start, end of last clip)
        ax.plot(start + cell / 2, end + cell / 2, "o", mfc="none", mec=colour, mew=2, ms=9, label=label)
    ax.set_xlabel("moment start (s)")
    ax.set_ylabel("moment end (s)")
    ax.legend(fontsize=7, loc="lower right")
    fake = "  [FAKE model]" if result.fake.get("model") else ""
    ax.set_title("Proposal map (weakly supervised)" + fake, fontsize=10)


def draw_alignment_map(ax, result) -> None:
    """An FSAN model's alignment map P on ``ax``: query tokens (words, or speech steps in query
    seconds) across, video clips (in video seconds) up; dashed lines mark the chosen segment and
    a green bar on the right the ground truth when known.
    """
    amap = np.asarray(result.e2e["alignment_map"], dtype=float)  # [T_q, N_v], in (0, 1)
    n_tokens, duration = amap.shape[0], float(result.duration_sec)
    words = result.e2e.get("words")
    width = float(n_tokens) if words else np.asarray(result.e2e["attention"]).shape[1] * HOP_SEC
    image = ax.imshow(amap.T, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest",
                      extent=(0, width, 0, duration))
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="alignment P")
    for y in (result.e2e["start_sec"], result.e2e["end_sec"]):
        ax.axhline(y, color="white", lw=1.2, ls="--")
    if result.query.gt_sec is not None:
        ax.axvspan(width * 0.97, width, ymin=result.query.gt_sec[0] / duration, ymax=result.query.gt_sec[1] / duration,
                   color=GT_COLOUR, lw=0)
    if words:
        ax.set_xticks(np.arange(n_tokens) + 0.5, words, rotation=60, fontsize=7)
        ax.set_xlabel("query word")
    else:
        ax.set_xlabel(f"query time (s), {n_tokens} speech steps")
    ax.set_ylabel("video time (s)   [dashed: chosen segment]")
    fake = "  [FAKE model]" if result.fake.get("model") else ""
    ax.set_title("Alignment map (weakly supervised)" + fake, fontsize=10)


def alignment_map_figure(result) -> Figure:
    """The alignment map alone (:func:`draw_alignment_map`); ``result.e2e`` needs ``alignment_map``."""
    fig = Figure(figsize=(5, 4.4))
    fig.subplots_adjust(left=0.16, right=0.92, top=0.92, bottom=0.2)
    draw_alignment_map(fig.subplots(), result)
    return fig


def proposal_map_figure(result) -> Figure:
    """The proposal map alone (:func:`draw_proposal_map`); ``result.e2e`` needs ``proposal_map``."""
    fig = Figure(figsize=(5, 4.4))
    fig.subplots_adjust(left=0.14, right=0.92, top=0.92, bottom=0.12)
    draw_proposal_map(fig.subplots(), result)
    return fig


def robustness_figure(sweep) -> Figure:
    """IoU against SNR for the end-to-end model and the cascade.

    Args:
        sweep: an :class:`app.handlers.SweepResult`.
    """
    fig = Figure(figsize=(6, 3.2))
    fig.subplots_adjust(left=0.12, right=0.97, top=0.9, bottom=0.15)
    ax = fig.subplots()
    ax.plot(sweep.snr_db, sweep.e2e_iou, "o-", color=E2E_COLOUR, label="end-to-end")
    ax.plot(sweep.snr_db, sweep.cascade_iou, "s--", color=CASCADE_COLOUR, label="cascade")
    ax.invert_xaxis()  # from clean-ish (high SNR) to very noisy
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel(f"IoU vs {sweep.reference}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Robustness: {sweep.kind} noise over {sweep.proportion:.0%} of the query")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def save_png(fig: Figure, folder: Path, stem: str, keep: int = 256) -> Path:
    """Write ``fig`` as a PNG under ``folder`` (unique name) and prune the oldest beyond ``keep``.

    The app draws its figures to files itself rather than handing Figures to gr.Plot (which
    re-encodes them as webp on every update). A low PNG compression level: encoding is a large
    part of the cost, and the files are small anyway.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}-{uuid.uuid4().hex[:12]}.png"
    fig.savefig(path, format="png", pil_kwargs={"compress_level": 1})
    files = sorted(folder.glob("*.png"), key=lambda p: p.stat().st_mtime)
    for old in files[:-keep]:
        old.unlink(missing_ok=True)
    return path
