# %% [markdown]
# # Results on the synthetic benchmark (docs/RESULTS.md)
#
# A notebook in Jupytext "percent" format: open it in Jupyter (with jupytext) or VS Code, or run
# it top to bottom with `python notebooks/results.py`. It defines no logic: the tables come from
# `svg_core.results`, which reads the runs of `python -m svg_core.reporting.runs PLAN` and scores their
# prediction files with `svg_core.engine.metrics.compute_metrics`; `svg_core.reporting.plots` draws the PNGs.
# All data is SYNTHETIC.
# The tables in docs/RESULTS.md are written by
# `python -m svg_core.results results/e10 --update-md docs/RESULTS.md` from the same functions.

# %%
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent
sys.path.insert(0, str(ROOT))

from svg_core.reporting import plots as results_plots, results  # noqa: E402

# The committed archive of the runs (metrics, logs, per-query predictions; no weights), written by
# `python -m svg_core.reporting.runs archive --out runs/results_e10 --archive results/e10`. Point
# SVG_RESULTS_RUNS at runs/results_e10 to read the live runs instead.
RUNS = Path(os.environ.get("SVG_RESULTS_RUNS", ROOT / "results" / "e10"))
IMG = ROOT / "docs" / "img"
IMG.mkdir(parents=True, exist_ok=True)
CASCADE_LIMIT = 100  # the cascades transcribe the first 100 test queries (ASR is ~2 s per query on CPU)

# %% [markdown]
# ## Table 2: every method on the test split (noise preset "normal")

# %%
rows = [results.prior_row(RUNS)] + results.table2(RUNS)  # prior from RUNS/data_summary.json
print(results.format_table(rows))
results_plots.plot_rows(rows, IMG / "results_table2.png",
                        title="Synthetic benchmark, test split, normal noise\n(mean ± std over seeds)")

# %% [markdown]
# The same rows on the cascade subset (first 100 test queries), so that end-to-end and cascade
# rows compare on the same queries.

# %%
subset = results.table2(RUNS, limit=CASCADE_LIMIT)
print(results.format_table(subset))

# %% [markdown]
# Paired differences on the same test queries, with a 95 % bootstrap interval (videos resampled).

# %%
print(results.paired_table(RUNS))

# %% [markdown]
# ## Table 3 (VGCL ablations) and Table 4 (curriculum pacing x kappa), when their runs exist

# %%
# The variants are trained at seed 0 only, so each table compares seed-0 runs, with paired
# differences to the seed-0 full model and the full model's spread over its seeds as the yardstick.
for title, spec in (("Table 3", results.TABLE3_ROWS), ("Table 4", results.TABLE4_ROWS)):
    print(title, "\n" + (results.ablation_table(RUNS, spec) or "(no ablation runs in this folder yet)"))
diffs = results.ablation_differences(RUNS)  # each variant minus the seed-0 full model, same queries
full = results.table(RUNS, results.TABLE3_ROWS[:1])
if diffs and full:
    results_plots.plot_differences(diffs, IMG / "results_ablations.png", seed_std=full[0].std("R1@0.5"),
                                   title="Tables 3-4: VGCL variant - full model, seed 0, R1@0.5 (synthetic, normal noise)")

# %% [markdown]
# ## Fig. 4: clean / normal / large noise

# %%
levels = results.noise_rows(RUNS)  # end-to-end: whole test split; cascades: their first 100 queries
results_plots.plot_noise(levels, IMG / "results_noise.png",
                         title=f"R1@0.5 by noise preset (synthetic; cascades on the first {CASCADE_LIMIT} test queries)")
print(results.format_table([r for by in levels.values() for r in by.values()], metrics=("R1@0.5", "mIoU")))

# %% [markdown]
# ## Validation curves of the seed-0 grounding runs

# %%
curves = {name: results.val_curve(RUNS / name) for name in
          ("base_s0", "cpc_base_s0", "vslnet_s0", "vgcl_base_s0", "text_s0")}
results_plots.plot_curves(curves, IMG / "results_val_curves.png", title="Validation R1@0.5 per epoch (synthetic)")
print({k: v[-1] if v else None for k, v in curves.items()})
print(results.wall_seconds(RUNS))

# %% [markdown]
# ## Where the models fail: R1@0.5 by what the caption must name (seed 0, full test split)

# %%
print(results.format_table(results.need_rows(RUNS), metrics=("R1@0.5", "mIoU")))
