"""Can SIL's MIL tell a matched (video, speech) pair from a negative one? A short probe.

Trains a fresh SIL model (small preset, dropout 0, Adam 1e-3) on the first ``--batches`` training
batches of a dataset, cycled for ``--steps`` updates, and prints every 20 steps the mean
f(K)(matched) - f(K)(negative video) on three of those batches and on three held-out batches.
A gap that stays at 0.0000 even on the seen batches means the map collapsed to one that ignores
the pair. Used for docs/RESULTS.md "SIL" (issue 21)::

    python notebooks/sil_pairing_probe.py --data data/synth_v4 -- --set audio_frontend=whisper_base --set cross_gate=true
    python notebooks/sil_pairing_probe.py --data data/synth_v4 -- --set audio_frontend=whisper_base --set cross_gate=true \
        --set map_fusion=hadamard
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, as the other notebooks

from svg_core.engine.training import build_parser, build_task  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="dataset folder (e.g. data/synth_v4)")
    p.add_argument("--batches", type=int, default=8, help="training batches of 32, cycled (default 8)")
    p.add_argument("--steps", type=int, default=160, help="updates (default 160)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("train_args", nargs="*", help="after --: more python -m svg_core.train arguments (--set ...)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    train_args = build_parser().parse_args(["--data", args.data, "--model", "sil", "--preset", "small",
                                            "--out", "/tmp/sil_pairing_probe", "--set", "dropout=0", *args.train_args])
    task = build_task(train_args)
    torch.manual_seed(0)
    model = task.model.train()
    loader = iter(DataLoader(task.train_set, batch_size=32, shuffle=True, collate_fn=task.collate,
                             generator=torch.Generator().manual_seed(0)))
    seen = [next(loader) for _ in range(args.batches)]
    held = [next(loader) for _ in range(3)]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def gap(batches: list[dict]) -> float:
        with torch.no_grad():
            logs = [model.loss(model(b), b)[1] for b in batches]
        return sum(float(x["pos_score"]) - float(x["neg_score"]) for x in logs) / len(logs)

    active: list[float] = []  # share of the map's post-ReLU units above 0, over proposal cells
    for conv in model.scorer.convs:
        conv.register_forward_hook(lambda m, i, o: active.append(float((o > 0).float().mean())) if record else None)
    record = False

    def map_state(batch: dict) -> str:
        """Dead-map check: post-ReLU activity and the spread of the matched pairs' logits."""
        nonlocal record
        active.clear()
        record = True
        with torch.no_grad():
            out = model(batch)
        record = False
        logits = out["proposal_logits"][out["proposal_mask"]]
        return f"map active {sum(active) / max(len(active), 1):.3f}  logit mean {float(logits.mean()):+.3f} std {float(logits.std()):.4f}"

    for step in range(args.steps):
        batch = seen[step % len(seen)]
        loss, _ = model.loss(model(batch), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 20 == 0:
            print(f"step {step + 1:4d}  gap on seen batches {gap(seen[:3]):+.4f}  held-out {gap(held):+.4f}  "
                  f"{map_state(seen[0])}", flush=True)


if __name__ == "__main__":
    main()
