"""Plots of the result tables (PNG, matplotlib), drawn by ``notebooks/results.py`` into docs/img.

The numbers come from :mod:`svg_core.results`; this module only draws them. Each function builds a
standalone ``matplotlib.figure.Figure`` (no pyplot state), so importing it never switches a backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from svg_core.reporting.results import NOISE_LEVELS, Row


def _figure(size_in: tuple[float, float]):
    """A standalone matplotlib Figure and its axes: no pyplot state, no backend switch for the caller."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size_in)
    return fig, fig.subplots()


def plot_rows(rows: list[Row], path: str | Path, metric: str = "R1@0.5", title: str = "") -> None:
    """Horizontal bars of ``metric`` (mean, with ±std whiskers over seeds) per row, saved as PNG."""
    fig, ax = _figure((7, 0.45 * len(rows) + 1.2))
    labels = [f"{r.label} (n={len(r.per_seed)})" for r in rows]
    ax.barh(labels, [r.mean(metric) for r in rows], xerr=[r.std(metric) for r in rows], color="#4c72b0", capsize=3)
    for y, r in enumerate(rows):
        ax.text(r.mean(metric) + r.std(metric) + 0.5, y, f"{r.mean(metric):.1f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} (%)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_noise(levels: dict[str, dict[str, Row]], path: str | Path, metric: str = "R1@0.5", title: str = "") -> None:
    """``metric`` against noise level (clean, normal, large) per model, saved as PNG."""
    fig, ax = _figure((6, 3.6))
    for label, by_noise in levels.items():
        xs = [i for i, n in enumerate(NOISE_LEVELS) if n in by_noise]
        ys = [by_noise[NOISE_LEVELS[i]].mean(metric) for i in xs]
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xticks(range(len(NOISE_LEVELS)), NOISE_LEVELS)
    ax.set_xlabel("noise preset of the spoken query")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_differences(diffs: list[tuple[str, dict]], path: str | Path, seed_std: float = 0.0,
                     metric: str = "R1@0.5", title: str = "") -> None:
    """Each variant's paired difference to a reference (dot) with its 95 % interval (bar), and the
    reference's seed-to-seed std as a grey band around 0; saved as PNG.

    Args:
        diffs: ``(label, paired_difference result)``, e.g. from :func:`ablation_differences`.
        seed_std: standard deviation of the reference over its training seeds (band half-width).
    """
    fig, ax = _figure((7, 0.45 * len(diffs) + 1.4))
    ys = np.arange(len(diffs))
    centre = np.array([d["diff"] for _, d in diffs])
    err = np.array([[d["diff"] - d["ci_low"] for _, d in diffs], [d["ci_high"] - d["diff"] for _, d in diffs]])
    if seed_std > 0:
        ax.axvspan(-seed_std, seed_std, color="#dddddd")
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.errorbar(centre, ys, xerr=err, fmt="o", color="#4c72b0", capsize=3)
    ax.set_yticks(ys, [label for label, _ in diffs])
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric}: variant - reference (points)")
    key = "dot: difference on the same queries, bar: 95% interval, videos resampled"
    if seed_std > 0:
        key += f", grey: ± reference seed std ({seed_std:.2f})"
    ax.set_title(f"{title}\n{key}" if title else key, fontsize=8)  # a legend would cover the dots
    reach = max(float(np.abs(err + np.abs(centre)).max()), seed_std) * 1.1
    ax.set_xlim(-reach, reach)  # symmetric: left of 0 is worse than the reference
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")


def plot_curves(curves: dict[str, list[tuple[int, float]]], path: str | Path, ylabel: str = "val R1@0.5 (%)",
                title: str = "") -> None:
    """Validation curves (one line per run), saved as PNG."""
    fig, ax = _figure((6, 3.6))
    for label, points in curves.items():
        if points:
            ax.plot(*zip(*points), marker=".", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
