# %% [markdown]
# # Does an FSAN alignment map localise? (issue 23)
#
# For the first N queries of a split: the map's per-clip mean over tokens, inside the ground-truth
# moment minus outside it, and its correlation with the moment's clip mask; and the predicted
# segment's length as a share of the video. A map that localises has a clearly positive gain and
# correlation; a map that does not sits at 0 whatever its segment scores. Synthetic data.
#
# `python notebooks/fsan_map_check.py CHECKPOINT [--data DIR] [--split val] [--limit 300]`

# %%
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent
sys.path.insert(0, str(ROOT))

from svg_core.data.dataset import DatasetLayout, GroundingDataset  # noqa: E402
from svg_core.engine.predictor import Grounder  # noqa: E402


def map_check(checkpoint: str, data: str, split: str, limit: int) -> dict:
    """Gain, correlation and predicted length over the first ``limit`` queries (text or speech FSAN)."""
    grounder = Grounder.from_checkpoint(checkpoint)
    layout = DatasetLayout.from_dir(data)
    records = layout.records(split)[0][:limit]
    dataset = GroundingDataset(layout, split, n_video_frames=grounder.cfg.n_video_frames, records=records)
    gains, corrs, lengths = [], [], []
    for i, rec in enumerate(records):
        feats = dataset.features.get(rec.video_id)
        query = {"text": rec.sentence} if grounder.query_kind == "text" else {"audio": dataset.noisy_wave(i)[0]}
        result = grounder.alignment_map(feats, rec.duration_sec, **query)
        col = np.asarray(result["map"]).mean(0)  # [N_v]: the clip's mean alignment over tokens
        centres = (np.arange(col.shape[0]) + 0.5) * result["clip_sec"]
        inside = (centres >= rec.start_sec) & (centres <= rec.end_sec)
        if inside.any() and (~inside).any():
            gains.append(col[inside].mean() - col[~inside].mean())
            corrs.append(np.corrcoef(col, inside.astype(float))[0, 1])
        lengths.append((result["end_sec"] - result["start_sec"]) / rec.duration_sec)
    return {"queries": len(records), "gain_inside_minus_outside": float(np.mean(gains)),
            "share_gain_positive": float(np.mean(np.asarray(gains) > 0)), "corr_with_moment": float(np.nanmean(corrs)),
            "pred_length_share_median": float(np.median(lengths))}


# %%
if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Does an FSAN alignment map follow the ground-truth moment?")
    parser.add_argument("checkpoint")
    parser.add_argument("--data", default="data/synth_v4")
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=300)
    args = parser.parse_args()
    for key, value in map_check(args.checkpoint, args.data, args.split, args.limit).items():
        print(f"{key:<28} {value:.4f}" if isinstance(value, float) else f"{key:<28} {value}")
