"""The training and evaluation runs behind docs/RESULTS.md as one resumable job graph (CPU, synthetic benchmark).

    python -m svg_core.reporting.runs table2            # Table 2: Base, Base+CPC, VSLNet, VGCL, text (seeds 0 1 2) + cascades
    python -m svg_core.reporting.runs fig4              # Fig. 4: Base, VGCL, front-end Base at clean / large noise, cascades
    python -m svg_core.reporting.runs table3            # Table 3: four VGCL ablations (seed 0) and the full model
    python -m svg_core.reporting.runs table4            # Table 4: pacing x kappa variants (seed 0) and the full model
    python -m svg_core.reporting.runs listening --data assets/demo_bundle --out results/listening_demo  # shipped checkpoints
    python -m svg_core.reporting.runs archive           # metrics, logs, predictions -> results/e10 (committed)
    python -m svg_core.reporting.runs vgcl --seeds 0 --ground-epochs 5 --dry-run   # print the commands only
    python -m svg_core.reporting.runs variant _log10 -- --pacing logarithmic --kappa 10  # one seed-0 VGCL variant

Plans. A plan is a list of lanes; each lane adds jobs to one graph (a job two lanes share is one job):

- lanes, as in the former ``notebooks/results_runs.sh``: ``vgcl`` (VGCL pre-training, then grounding with
  the pre-trained encoder, then its test evaluation), ``cpc`` (the same with CPC), ``base``, ``vslnet``,
  ``text`` (train, evaluate), ``base_whisper`` (the Whisper base front-end: encoder cache once, then as
  base), ``base_whisper_tt`` (the same taught by the same seed's text run, after it: ``--init-from-text``
  and ``--distill-from``; likewise ``base_tt``, ``vslnet_tt``, and ``cpc_tt`` / ``vgcl_tt`` whose plain
  pre-training is shared), ``text_d256`` (the text model at D = 256), ``extra`` (clean and large noise
  evaluations of the finished Base, VGCL and front-end Base runs), ``cascade`` (Whisper / PocketSphinx -> text model at the
  three noise presets, text seeds 0 1 2, the first ``--cascade-limit`` test queries; finished text runs
  only), ``table3`` and ``table4`` (VGCL pre-training variants, seed 0; each also holds the full model of
  seed 0 that its table compares with), ``variant TAG -- ARGS`` (one seed-0 VGCL variant with extra
  pre-training ARGS), ``shipped`` (the committed ``checkpoints/*`` evaluated under their seed-0 run names),
  ``archive`` (below);
- one plan per table: ``table2`` = base, cpc, vslnet, vgcl, base_whisper, text, the five taught lanes,
  text_d256, text_f128kl (N_v = 128 and the KL boundary loss), cascade; ``fig4`` = base, vgcl, base_whisper, text, base_whisper_tt, extra, cascade (a taught lane after text);
  ``taught`` = text and the five taught lanes (the recipe of the shipped checkpoints); ``table3``;
  ``table4``; ``listening`` = shipped; ``weak`` = sil_whisper (SIL on the speech front-end), sil_base
  (SIL's Base: no ASP), fsan_text, fsan_whisper (spoken FSAN on the front-end's steps; the front-end
  lanes after the encoder cache), fsan_speech (on log-Mel), fsan_text_recon and fsan_whisper_recon (the same
  with word reconstruction and the token-mean outside term), all trained without timestamps;
  ``search`` = avlnet_whisper (AVLnet on the front-end's cached features), avlnet (log-Mel), each
  trained, then ``python -m svg_core.search evaluate --no-vcmr`` (video R@k) over the test split;
  ``all`` = table2, fig4, table3, table4, then archive once every other job finished.

Jobs. A training run is ``python -m svg_core.train --data DATA --preset small --batch-size 32 --threads 1
--no-progress [--patience N] [--min-epochs N] --out OUT/NAME ...`` with its output in ``OUT/NAME.log``,
followed by the line ``NAME wall SECONDS s`` (:func:`svg_core.reporting.results.wall_seconds` sums these
lines, one per part of a resumed run). An evaluation is ``python -m svg_core.evaluate --checkpoint
OUT/NAME/best --data DATA --split test --noise NOISE --threads 1 --listening --out OUT/eval/NAME_NOISE.jsonl
--metrics-out OUT/eval/NAME_NOISE.metrics.json``; its report goes to ``NAME_NOISE.txt.part`` and is moved
to ``NAME_NOISE.txt`` only once it finished (the cascades likewise, ``cascade_ENGINE_NOISE_text_sK.txt``).
An evaluation runs after the training it reads, a grounding run after its pre-training.

Resuming from files alone. A training job is finished once ``OUT/NAME/summary.json`` exists (skipped);
one killed part-way resumes with ``--resume`` when ``OUT/NAME/last/training_state.pt`` exists (its log
is appended to), else starts over with a fresh log. An evaluation is finished once its ``.txt`` exists.
Each job takes a lock file under ``OUT/.locks`` while it runs, so two runners started at once on
overlapping plans run each job once: a runner that finds a job locked does its other jobs first, then
waits for the lock and skips the job if the other runner finished it. A failing job stops the jobs
after it; the others go on and the runner exits 1 naming it. The archive copies the logged results
(no weights) of finished runs and finished evaluations to ``--archive`` (default ``results/eEPOCHS``)
and writes its data summary with ``python -m svg_core.results DEST --data DATA --save-data-summary``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from svg_core.errors import UserInputError, run_cli
# the job kinds and the scheduler live in run_jobs.py; re-exported here, the runner's one public face
from svg_core.reporting.run_jobs import ArchiveJob, Job, Outcome, ReportJob, TrainJob, archived_files, run_jobs

LANES = ("vgcl", "cpc", "base", "vslnet", "text", "base_whisper", "base_whisper_tt", "base_tt", "vslnet_tt", "cpc_tt",
         "vgcl_tt", "text_d256", "text_f128kl", "fsan_text", "fsan_speech", "fsan_whisper", "fsan_text_recon", "fsan_whisper_recon", "sil_base",
         "sil_whisper", "sil_whisper_k4", "sil_base_k4", "avlnet",
         "avlnet_whisper",
         "extra",
         "cascade", "table3", "table4", "variant", "shipped", "archive")
PLANS: dict[str, tuple[str, ...]] = {
    **{lane: (lane,) for lane in LANES},
    "table2": ("base", "cpc", "vslnet", "vgcl", "base_whisper", "text", "base_whisper_tt", "base_tt", "vslnet_tt", "cpc_tt",
               "vgcl_tt", "text_d256", "text_f128kl", "cascade"),
    "fig4": ("base", "vgcl", "base_whisper", "text", "base_whisper_tt", "extra", "cascade"),
    "listening": ("shipped",),
    "taught": ("text", "base_whisper_tt", "base_tt", "vslnet_tt", "cpc_tt", "vgcl_tt"),  # the shipped recipe
    "weak": ("sil_whisper", "sil_base", "sil_whisper_k4", "sil_base_k4", "fsan_text", "fsan_whisper", "fsan_speech", "fsan_text_recon", "fsan_whisper_recon"),  # weakly supervised: no timestamps in training
    "search": ("avlnet_whisper", "avlnet"),
    "all": ("base", "cpc", "vslnet", "vgcl", "base_whisper", "text", "base_whisper_tt", "base_tt", "vslnet_tt", "cpc_tt",
            "vgcl_tt", "text_d256", "text_f128kl", "extra", "cascade",
            "table3", "table4", "archive"),
}
SIL_K4 = ("--set", "mil_negatives=4", "--set", "mil_form=softmax", "--set", "use_speech_negative=false",
          "--set", "clip_fusion=product", "--set", "video_attention=false")
# lanes that train an existing model with a recipe of their own: (--model, extra flags)
LANE_RECIPES = {"base_whisper": ("base", "--set", "audio_frontend=whisper_base"),  # frozen encoder + adapter
                "base_whisper_tt": ("base", "--set", "audio_frontend=whisper_base"),  # + the text teacher below
                "base_tt": ("base",), "vslnet_tt": ("vslnet",),
                "text_d256": ("text", "--set", "model_dim=256"),  # the world-4 text trial: a wider network
                "text_f128kl": ("text", "--set", "n_video_frames=128", "--boundary-loss", "kl"),  # finer grid
                "fsan_text": ("fsan_text",), "fsan_speech": ("fsan_speech",),  # weak (engine/fsan_training.py)
                "fsan_whisper": ("fsan_speech", "--set", "audio_frontend=whisper_base"),  # speech steps of the front-end
                # FSAN with word reconstruction and the token-mean outside term (docs/RESULTS.md "Word reconstruction")
                "fsan_text_recon": ("fsan_text", "--set", "outside_stat=mean", "--set", "recon_weight=1.0"),
                "fsan_whisper_recon": ("fsan_speech", "--set", "audio_frontend=whisper_base", "--set", "outside_stat=mean",
                                       "--set", "recon_weight=1.0"),
                "sil_base": ("sil",),  # the SIL paper's Base: speech encoder from scratch, no ASP, no CIF
                "sil_whisper": ("sil", "--set", "audio_frontend=whisper_base"),  # SIL on the speech front-end
                # SIL with four video negatives in a softmax and a local clip-speech product in place of
                # the fusion BiGRU (not the paper; docs/RESULTS.md "SIL on the speech front-end"), on the
                # front-end and with the speech encoder from scratch (the weak Base)
                "sil_whisper_k4": ("sil", "--set", "audio_frontend=whisper_base", *SIL_K4),
                "sil_base_k4": ("sil", *SIL_K4)}
# lanes taught by the same seed's text run (svg_core.engine.text_teacher): weights copied, then distilled
TAUGHT_LANES = ("base_whisper_tt", "base_tt", "vslnet_tt", "cpc_tt", "vgcl_tt")
FRONTEND_CACHE_FILE = "frontend_cache_whisper_base_pool2_normal.h5"  # frontend_cache.default_cache_path's name
CASCADE_SEEDS = (0, 1, 2)  # transcripts are cached once per (engine, noise) for every text seed
# (committed checkpoint folder, seed-0 run name that svg_core.results reads) of the shipped lane: since
# world 4 the spoken checkpoints are the runs taught by the text model (plan ``taught``)
SHIPPED = (("base", "base_tt"), ("base_cpc", "cpc_base_tt"), ("vslnet_audio", "vslnet_tt"), ("vgcl_full", "vgcl_base_tt"),
           ("base_whisper", "base_whisper_tt"), ("text", "text"))


@dataclass(frozen=True)
class RunSettings:
    """What every job of a plan shares (the former script's environment variables).

    Attributes:
        data: dataset folder passed as ``--data``.
        out: folder of the runs (``OUT/NAME``, ``OUT/NAME.log``) and evaluations (``OUT/eval``).
        seeds: seeds of the multi-seed lanes (vgcl, cpc, base, vslnet, text, extra).
        ground_epochs: most grounding epochs (``--epochs`` of grounding runs).
        pre_epochs: pre-training epochs (VGCL, CPC).
        patience: early stopping after this many epochs without a better val score (None: off).
        min_epochs: no early stop before this epoch (None: the trainer's default).
        cascade_limit: test queries of the cascade evaluations (the first ones).
        archive: where the archive job copies the logged results.
        variant_tag: run-name tag of the variant lane, e.g. ``_log10``.
        variant_args: extra pre-training flags of the variant lane.
        grounding_sets: ``KEY=VALUE`` config overrides passed as ``--set`` to every supervised grounding
            run (text, Base, VSLNet, and the grounding stage of CPC/VGCL), never to pre-training or the
            weak and search families: the world-5 recipe is ``model_dim=256`` and ``video_kernel=3``,
            which a taught run must share with its teacher.
    """

    data: Path
    out: Path
    archive: Path
    seeds: tuple[int, ...] = (0, 1, 2)
    ground_epochs: int = 10
    pre_epochs: int = 3
    patience: int | None = None
    min_epochs: int | None = None
    cascade_limit: int = 100
    variant_tag: str = ""
    variant_args: tuple[str, ...] = ()
    grounding_sets: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# lanes


def _train(s: RunSettings, name: str, *args: str, after: tuple[str, ...] = ()) -> TrainJob:
    common = ["--data", str(s.data), "--preset", "small", "--batch-size", "32", "--threads", "1", "--no-progress"]
    common += ["--patience", str(s.patience)] if s.patience is not None else []
    common += ["--min-epochs", str(s.min_epochs)] if s.min_epochs is not None else []
    return TrainJob(key=f"train:{name}", after=after, run_dir=s.out / name,
                    args=("-m", "svg_core.train", *common, "--out", str(s.out / name), *args))


def _evaluate(s: RunSettings, name: str, noise: str, checkpoint: Path | None = None,
              finished_runs_only: bool = False) -> ReportJob:
    """Test metrics and listening diagnostics of ``checkpoint`` (default ``OUT/NAME/best``), after training NAME."""
    stem = s.out / "eval" / f"{name}_{noise}"
    args = ("-m", "svg_core.evaluate", "--checkpoint", str(checkpoint or s.out / name / "best"),
            "--data", str(s.data), "--split", "test", "--noise", noise, "--threads", "1", "--listening",
            "--out", f"{stem}.jsonl", "--metrics-out", f"{stem}.metrics.json")
    return ReportJob(key=f"eval:{name}_{noise}", after=() if checkpoint else (f"train:{name}",),
                     requires=s.out / name / "summary.json" if finished_runs_only else None,
                     report=stem.with_name(f"{stem.name}.txt"), args=args)


def _grounding_sets(s: RunSettings) -> tuple[str, ...]:
    """``--set KEY=VALUE`` for each of ``s.grounding_sets``."""
    return tuple(flag for kv in s.grounding_sets for flag in ("--set", kv))


def _taught(s: RunSettings, seed: int) -> tuple[str, ...]:
    """Flags of a run taught by ``OUT/text_sN/best`` (weights copied, then distilled)."""
    teacher = str(s.out / f"text_s{seed}" / "best")
    return ("--init-from-text", teacher, "--distill-from", teacher)


def _pretrain_then_ground(s: RunSettings, family: str, seed: int, tag: str = "",
                          pre_args: Sequence[str] = (), taught: bool = False) -> list[Job]:
    """``{family}_pre{tag}_sN`` pre-training, ``{family}_base{tag}_sN`` grounding with its encoder, evaluation.

    ``taught``: the grounding run is ``{family}_base_tt_sN``, taught by ``text_sN`` (after it); the
    pre-training is the plain one, shared with the untaught lane.
    """
    pre, ground = f"{family}_pre{tag}_s{seed}", f"{family}_base{tag}{'_tt' * taught}_s{seed}"
    pre_job = _train(s, pre, "--stage", "pretrain", "--model", family, "--epochs", str(s.pre_epochs),
                     "--seed", str(seed), *pre_args)
    ground_job = _train(s, ground, "--model", f"{family}_base", "--pretrained-encoder", str(s.out / pre / "encoder"),
                        *(_taught(s, seed) if taught else ()), *_grounding_sets(s), "--epochs", str(s.ground_epochs),
                        "--seed", str(seed), after=(pre_job.key,) + ((f"train:text_s{seed}",) if taught else ()))
    return [pre_job, ground_job, _evaluate(s, ground, "normal")]


def _frontend_cache(s: RunSettings) -> ReportJob:
    """The Whisper base encoder features of DATA's train/val queries, 4 noise draws (done once the file exists)."""
    report = s.out / "frontend_cache_normal.txt"
    return ReportJob(key="cache:frontend_normal", report=report, done_when=s.data / FRONTEND_CACHE_FILE,
                     args=("-m", "svg_core.data", "frontend-cache", str(s.data), "--draws", "4", "--noise", "normal"))


def _cascades(s: RunSettings) -> list[Job]:
    jobs: list[Job] = []
    for engine in ("whisper", "sphinx"):
        for noise in ("normal", "clean", "large"):
            for seed in CASCADE_SEEDS:
                text_run, stem = s.out / f"text_s{seed}", s.out / "eval" / f"cascade_{engine}_{noise}_text_s{seed}"
                args = ("-m", "svg_core.cascade", "evaluate", "--data", str(s.data), "--checkpoint", str(text_run / "best"),
                        "--engine", engine, "--noise", noise, "--limit", str(s.cascade_limit), "--threads", "1",
                        "--transcripts", str(s.out / "eval" / "transcripts.jsonl"), "--out", f"{stem}.jsonl")
                jobs.append(ReportJob(key=f"cascade:{engine}_{noise}_text_s{seed}", after=(f"train:text_s{seed}",),
                                      requires=text_run / "summary.json", exclusive="transcripts",
                                      report=stem.with_name(f"{stem.name}.txt"), args=args))
    return jobs  # the original-caption row is the text model's own evaluation (eval:text_sN_normal)


def lane_jobs(lane: str, s: RunSettings) -> list[Job]:
    """The jobs of one lane, in the order one runner with ``--jobs 1`` runs them.

    Args:
        lane: one of :data:`LANES`.
        s: the shared settings.

    Returns:
        the jobs; each job's ``after`` jobs come before it.
    """
    if lane in ("vgcl", "cpc"):
        return [job for seed in s.seeds for job in _pretrain_then_ground(s, lane, seed)]
    if lane in ("cpc_tt", "vgcl_tt"):  # pre-training as usual, grounding taught by the text run
        return [job for seed in s.seeds for job in _pretrain_then_ground(s, lane[:-3], seed, taught=True)]
    if lane in ("base", "vslnet", "text") or lane in LANE_RECIPES:
        model, *extra = LANE_RECIPES.get(lane, (lane,))
        extra += _grounding_sets(s) if model in ("base", "vslnet", "text") else ()  # not the weak families
        cache = _frontend_cache(s) if "whisper" in lane else None  # the encoder runs once, first
        jobs: list[Job] = [cache] * (cache is not None)
        for seed in s.seeds:
            taught = _taught(s, seed) if lane in TAUGHT_LANES else ()
            after = ((cache.key,) if cache else ()) + ((f"train:text_s{seed}",) if taught else ())
            jobs += [_train(s, f"{lane}_s{seed}", "--model", model, *extra, *taught, "--epochs", str(s.ground_epochs),
                            "--seed", str(seed), after=after), _evaluate(s, f"{lane}_s{seed}", "normal")]
        return jobs
    if lane in ("avlnet", "avlnet_whisper"):  # spoken search: train, then video R@k and VCMR over the test split
        return _search_lane(s, lane)
    if lane == "extra":  # Fig. 4 noise levels for the finished Base, VGCL and front-end Base runs
        return [_evaluate(s, name, noise, finished_runs_only=True) for seed in s.seeds
                for name in (f"base_s{seed}", f"vgcl_base_s{seed}", f"base_whisper_s{seed}", f"base_whisper_tt_s{seed}")
                for noise in ("clean", "large")]
    if lane == "cascade":
        return _cascades(s)
    if lane == "table3":  # VGCL ablations of pre-training, then the same grounding run
        variants = [("_nocl", "--no-curriculum"), ("_noent", "--no-entire-video"), ("_nosa", "--no-self-attention"),
                    ("_crop128", "--crop-frames", "128")]
        return _pretrain_then_ground(s, "vgcl", 0) + [
            job for tag, *args in variants for job in _pretrain_then_ground(s, "vgcl", 0, tag, args)]
    if lane == "table4":  # curriculum pacing x kappa; linear kappa 10 is the full model
        variants = [("_lin5", "linear", 5)] + [(f"_{pacing[:3]}{kappa}", pacing, kappa)
                                                for pacing in ("exponential", "logarithmic") for kappa in (5, 10)]
        return _pretrain_then_ground(s, "vgcl", 0) + [
            job for tag, pacing, kappa in variants
            for job in _pretrain_then_ground(s, "vgcl", 0, tag, ["--pacing", pacing, "--kappa", str(kappa)])]
    if lane == "variant":
        if not s.variant_tag:
            raise UserInputError("plan variant needs a TAG: variant _log10 -- --pacing logarithmic --kappa 10")
        return _pretrain_then_ground(s, "vgcl", 0, s.variant_tag, s.variant_args)
    if lane == "shipped":  # the committed checkpoints are the kept weights of these seed-0 runs
        return [_evaluate(s, f"{name}_s0", "normal", checkpoint=Path("checkpoints") / folder)
                for folder, name in SHIPPED]
    if lane == "archive":
        return [ArchiveJob(key="archive", out=s.out, dest=s.archive, data=s.data)]
    raise UserInputError(f"unknown lane {lane!r}: one of {', '.join(LANES)}")


def _search_lane(s: RunSettings, lane: str) -> list[Job]:
    """AVLnet (``avlnet_whisper``: on the front-end's cached features, after the encoder cache):
    training, then ``svg_core.search evaluate`` at normal noise over the test split."""
    cache = _frontend_cache(s) if lane == "avlnet_whisper" else None
    extra = ("--set", "audio_frontend=whisper_base") if cache else ()
    jobs: list[Job] = [cache] * (cache is not None)
    for seed in s.seeds:
        name = f"{lane}_s{seed}"
        jobs += [_train(s, name, "--model", "avlnet", *extra, "--epochs", str(s.ground_epochs), "--seed", str(seed),
                        after=(cache.key,) if cache else ()),
                 ReportJob(key=f"search:{name}", after=(f"train:{name}",), report=s.out / "eval" / f"search_{name}_test.txt",
                           args=("-m", "svg_core.search", "evaluate", "--data", str(s.data), "--checkpoint",
                                 str(s.out / name / "best"), "--split", "test", "--noise", "normal", "--no-vcmr",
                                 "--threads", "1", "--no-progress", "--json", str(s.out / "eval" / f"search_{name}_test.json")))]
    return jobs


def plan_jobs(plan: str, s: RunSettings) -> list[Job]:
    """The job graph of a plan: its lanes' jobs, each once, the archive after all others.

    Args:
        plan: a key of :data:`PLANS`.
        s: the shared settings.

    Returns:
        the jobs in run order (``after`` jobs first).

    Raises:
        UserInputError: an unknown plan.
    """
    if plan not in PLANS:
        raise UserInputError(f"unknown plan {plan!r}: one of {', '.join(PLANS)}")
    jobs: dict[str, Job] = {}
    for lane in PLANS[plan]:
        for job in lane_jobs(lane, s):
            if isinstance(job, ArchiveJob):
                job = ArchiveJob(key=job.key, after=tuple(jobs), out=job.out, dest=job.dest, data=job.data)
            jobs.setdefault(job.key, job)  # two lanes sharing a run (table3 / table4 full model) share the job
    return list(jobs.values())


# ---------------------------------------------------------------------------------------------
# command line


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m svg_core.reporting.runs`` flags."""
    parser = argparse.ArgumentParser(prog="python -m svg_core.reporting.runs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plan", help=f"what to run: {' | '.join(PLANS)}")
    parser.add_argument("variant", nargs="*", metavar="VARIANT",
                        help="plan variant only: TAG (run-name tag, e.g. _log10), then -- and the extra pre-training"
                             " flags, e.g. variant _log10 -- --pacing logarithmic --kappa 10")
    parser.add_argument("--data", type=Path, default=Path("data/synth_default"),
                        help="dataset folder (default data/synth_default)")
    parser.add_argument("--out", type=Path, default=None,
                        help="runs folder (default runs/results_eEPOCHS, EPOCHS = --ground-epochs)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds of the multi-seed lanes (default 0 1 2); put it after PLAN")
    parser.add_argument("--ground-epochs", type=int, default=10, help="most grounding epochs (default 10)")
    parser.add_argument("--pre-epochs", type=int, default=3, help="VGCL / CPC pre-training epochs (default 3)")
    parser.add_argument("--patience", type=int, default=None,
                        help="early stopping on val after N epochs without a better score (default off)")
    parser.add_argument("--min-epochs", type=int, default=None,
                        help="no early stop before epoch N (audio models plateau on the video prior first)")
    parser.add_argument("--cascade-limit", type=int, default=100, help="test queries of the cascades (default 100)")
    parser.add_argument("--archive", type=Path, default=None,
                        help="destination of the archive job (default results/eEPOCHS), committed")
    parser.add_argument("--grounding-set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every supervised grounding run (text, Base, VSLNet, CPC/VGCL "
                             "grounding; not pre-training), repeatable: the world-5 recipe is --grounding-set "
                             "model_dim=256 --grounding-set video_kernel=3")
    parser.add_argument("--jobs", type=int, default=1,
                        help="most jobs at once (default 1); each uses one CPU thread")
    parser.add_argument("--python", default=sys.executable,
                        help="python executable of the sub-commands (default: this one)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands in run order, run nothing")
    return parser


def settings_from_args(args: argparse.Namespace) -> RunSettings:
    """Check the flags and turn them into :class:`RunSettings`; bad values raise ``UserInputError``."""
    for flag, value, least in (("--ground-epochs", args.ground_epochs, 1), ("--pre-epochs", args.pre_epochs, 1),
                               ("--jobs", args.jobs, 1), ("--cascade-limit", args.cascade_limit, 1),
                               ("--patience", args.patience, 1), ("--min-epochs", args.min_epochs, 0)):
        if value is not None and value < least:
            raise UserInputError(f"{flag} must be >= {least}, found {value}")
    if bad := [kv for kv in args.grounding_set if "=" not in kv or not kv.split("=", 1)[0]]:
        raise UserInputError(f"--grounding-set {bad[0]!r}: write KEY=VALUE, e.g. --grounding-set model_dim=256")
    if args.plan == "variant":
        if not args.variant or args.variant[0].startswith("-"):
            raise UserInputError("plan variant needs a TAG: variant _log10 -- --pacing logarithmic --kappa 10")
        if not all(c.isalnum() or c == "_" for c in args.variant[0]):
            raise UserInputError(f"variant TAG {args.variant[0]!r}: letters, digits and _ only (e.g. _log10)")
        own = {flag for action in build_parser()._actions for flag in action.option_strings}
        if stray := [a.split("=")[0] for a in args.variant[1:] if a.split("=")[0] in own]:
            raise UserInputError(f"{stray[0]} after --: put the runner's options before -- (after it: pre-training flags)")
    elif args.variant:
        raise UserInputError(f"plan {args.plan} takes no further arguments, found {' '.join(args.variant)}")
    return RunSettings(
        data=args.data, out=args.out or Path(f"runs/results_e{args.ground_epochs}"),
        archive=args.archive or Path(f"results/e{args.ground_epochs}"), seeds=tuple(dict.fromkeys(args.seeds)),
        ground_epochs=args.ground_epochs, pre_epochs=args.pre_epochs, patience=args.patience,
        min_epochs=args.min_epochs, cascade_limit=args.cascade_limit,
        variant_tag=args.variant[0] if args.variant else "", variant_args=tuple(args.variant[1:]),
        grounding_sets=tuple(args.grounding_set))


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a user error prints one ``error: ...`` line and exits 2 (``--debug``: traceback)."""
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)  # runner options before or after TAG
    settings = settings_from_args(args)
    jobs = plan_jobs(args.plan, settings)
    if args.dry_run:
        for job in jobs:
            print(("# finished: " if job.finished() else "") + job.describe(args.python))
        return 0
    if shutil.which(args.python) is None:
        raise UserInputError(f"--python {args.python}: not an executable")
    problems = run_jobs(jobs, args.python, settings.out / ".locks", args.jobs,
                        echo=lambda line: print(line, flush=True))
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
