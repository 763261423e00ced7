"""Tests of the results runner (svg_core/reporting/runs.py) with a stand-in Python: no training happens.

The stand-in records its arguments, writes ``OUT/summary.json`` for a training run (what a finished
``svg_core.train`` leaves) and fails for a run whose ``--out`` contains ``$FAIL_ON``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from svg_core.reporting import runs
from svg_core.reporting.results import FIG4_ROWS, TABLE2_ROWS, TABLE3_ROWS, TABLE4_ROWS, wall_seconds

ROOT = Path(__file__).resolve().parents[1]
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> {calls}
out=; prev=; for arg in "$@"; do [[ $prev == --out ]] && out=$arg; prev=$arg; done
if [[ -n ${{FAIL_ON:-}} && $out == *$FAIL_ON* ]]; then echo "boom" >&2; exit 3; fi
[[ $2 == svg_core.evaluate ]] && sleep {eval_sec}
if [[ $2 == svg_core.train ]]; then sleep {train_sec}; mkdir -p "$out"; echo {{}} > "$out/summary.json"; fi
true
"""


def _fake_python(tmp_path: Path, train_sec: float = 0, eval_sec: float = 0) -> tuple[Path, Path]:
    """A stand-in python executable and the file it appends its argument lines to."""
    calls, fake_py = tmp_path / "calls.txt", tmp_path / "python"
    fake_py.write_text(FAKE_PYTHON.format(calls=calls, train_sec=train_sec, eval_sec=eval_sec))
    fake_py.chmod(0o755)
    return fake_py, calls


def _runner(*args: str) -> list[str]:
    return [sys.executable, "-m", "svg_core.reporting.runs", *args]


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(_runner(*args), cwd=ROOT, env=dict(os.environ, **env), capture_output=True, text=True,
                          timeout=120)


def _train_lines(calls: Path) -> dict[str, str]:
    """``{--out folder: argument line}`` of the training runs the stand-in saw."""
    return {ln.split("--out ")[1].split()[0]: ln for ln in calls.read_text().splitlines() if "svg_core.train" in ln}


def test_finished_runs_are_skipped_and_a_killed_run_resumes_with_its_log(tmp_path):
    fake_py, calls = _fake_python(tmp_path)
    out = tmp_path / "runs"
    for name in ("vgcl_pre_s0", "vgcl_base_s0", "vgcl_pre_nocl_s0"):  # finished: skipped
        (out / name).mkdir(parents=True)
        (out / name / "summary.json").write_text("{}")
    (out / "eval").mkdir()
    (out / "eval" / "vgcl_base_s0_normal.txt").write_text("report")  # a finished evaluation
    (out / "vgcl_base_nocl_s0" / "last").mkdir(parents=True)
    (out / "vgcl_base_nocl_s0" / "last" / "training_state.pt").write_bytes(b"state")  # killed part-way
    (out / "vgcl_base_nocl_s0.log").write_text("vgcl_base_nocl_s0 wall 10.0 s\n")
    (out / "vgcl_pre_noent_s0.log").write_text("stale log of an earlier attempt\n")
    done = _run("table3", "--out", str(out), "--data", str(tmp_path / "data"), "--python", str(fake_py))
    assert done.returncode == 0, done.stderr
    train_of = _train_lines(calls)
    assert not {str(out / n) for n in ("vgcl_pre_s0", "vgcl_base_s0", "vgcl_pre_nocl_s0")} & set(train_of)
    assert "--resume" in train_of[str(out / "vgcl_base_nocl_s0")]
    assert "--resume" not in train_of[str(out / "vgcl_pre_noent_s0")]
    assert "--no-entire-video" in train_of[str(out / "vgcl_pre_noent_s0")]
    assert sum("svg_core.evaluate" in ln for ln in calls.read_text().splitlines()) == 4  # one per variant
    resumed_log = (out / "vgcl_base_nocl_s0.log").read_text()
    assert resumed_log.startswith("vgcl_base_nocl_s0 wall 10.0 s\n") and resumed_log.count(" wall ") == 2
    assert "stale" not in (out / "vgcl_pre_noent_s0.log").read_text()  # a fresh run starts a fresh log
    walls = wall_seconds(out)  # what svg_core.results reads: the parts of a resumed run summed
    assert walls["vgcl_base_nocl_s0"] >= 10.0 and "vgcl_pre_noent_s0" in walls

    calls.unlink()  # everything finished: a second run does nothing
    again = _run("table3", "--out", str(out), "--data", str(tmp_path / "data"), "--python", str(fake_py))
    assert again.returncode == 0 and not calls.exists()


def test_archive_keeps_finished_runs_and_finished_evaluations_only(tmp_path):
    fake_py, calls = _fake_python(tmp_path)
    out, dest = tmp_path / "runs", tmp_path / "archive"
    for name, files in (("base_s0", ("summary.json", "log.csv", "best/config.json", "best/metrics.json",
                                     "best/model.safetensors")),
                        ("vgcl_base_s0", ("log.csv", "best/config.json", "last/training_state.pt"))):  # killed
        for rel in files:
            (out / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / name / rel).write_text("x")
        (out / f"{name}.log").write_text(f"{name} log\n")
    (out / "eval").mkdir()
    for rel in ("base_s0_normal.jsonl", "base_s0_normal.metrics.json", "base_s0_normal.txt", "transcripts.jsonl",
                "vgcl_base_s0_normal.jsonl", "vgcl_base_s0_normal.txt.part"):  # the last two: unfinished
        (out / "eval" / rel).write_text("x")
    done = _run("archive", "--out", str(out), "--archive", str(dest), "--data", "d", "--python", str(fake_py))
    assert done.returncode == 0, done.stderr
    kept = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert kept == ["base_s0.log", "base_s0/best/config.json", "base_s0/best/metrics.json", "base_s0/log.csv",
                    "base_s0/summary.json", "eval/base_s0_normal.jsonl", "eval/base_s0_normal.metrics.json",
                    "eval/base_s0_normal.txt", "eval/transcripts.jsonl"]
    assert calls.read_text().split() == ["-m", "svg_core.results", str(dest), "--data", "d", "--save-data-summary"]


def test_listening_plan_evaluates_each_shipped_checkpoint_with_the_listening_diagnostics(tmp_path):
    fake_py, calls = _fake_python(tmp_path)
    out = tmp_path / "runs"
    done = _run("listening", "--out", str(out), "--data", "assets/demo_bundle", "--python", str(fake_py))
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    assert len(lines) == 6 and all("svg_core.evaluate" in ln for ln in lines)
    for ckpt, name in (("base", "base_tt_s0"), ("base_cpc", "cpc_base_tt_s0"), ("vslnet_audio", "vslnet_tt_s0"),
                       ("vgcl_full", "vgcl_base_tt_s0"), ("base_whisper", "base_whisper_tt_s0"),
                       ("text", "text_s0")):  # the names svg_core.results reads
        line = next(ln for ln in lines if f"--checkpoint checkpoints/{ckpt} " in ln)
        stem = out / "eval" / f"{name}_normal"
        assert "--data assets/demo_bundle --split test --noise normal --threads 1 --listening" in line
        assert f"--out {stem}.jsonl --metrics-out {stem}.metrics.json" in line
        assert (out / "eval" / f"{name}_normal.txt").exists()  # moved in place once finished
        assert not (out / "eval" / f"{name}_normal.txt.part").exists()


def test_two_runners_started_at_once_run_each_shared_job_once(tmp_path):
    fake_py, calls = _fake_python(tmp_path, train_sec=0.5, eval_sec=0.5)  # long enough for the two to overlap
    out = tmp_path / "runs"
    args = ("variant", "_log10", "--out", str(out), "--data", str(tmp_path / "data"), "--python", str(fake_py),
            "--", "--pacing", "logarithmic", "--kappa", "10")
    runners = [subprocess.Popen(_runner(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    for runner in runners:
        stdout, stderr = runner.communicate(timeout=120)
        assert runner.returncode == 0, stderr
    lines = calls.read_text().splitlines()
    assert sorted(_train_lines(calls)) == [str(out / "vgcl_base_log10_s0"), str(out / "vgcl_pre_log10_s0")]
    assert len(lines) == 3 and sum("svg_core.evaluate" in ln for ln in lines) == 1
    pre = _train_lines(calls)[str(out / "vgcl_pre_log10_s0")]
    assert "--pacing logarithmic --kappa 10" in pre and f"--data {tmp_path / 'data'}" in pre
    assert (out / "eval" / "vgcl_base_log10_s0_normal.txt").exists()


def test_a_failing_job_stops_only_its_dependants(tmp_path):
    fake_py, calls = _fake_python(tmp_path)
    out = tmp_path / "runs"
    done = _run("base", "--seeds", "0", "1", "--jobs", "2", "--out", str(out), "--data", "d", "--python",
                str(fake_py), FAIL_ON="base_s0")
    assert done.returncode == 1
    assert "failed: train:base_s0" in done.stderr and "not run: eval:base_s0_normal" in done.stderr
    assert "base_s1" not in done.stderr
    assert sorted(_train_lines(calls)) == [str(out / "base_s0"), str(out / "base_s1")]
    evaluations = [ln for ln in calls.read_text().splitlines() if "svg_core.evaluate" in ln]
    assert len(evaluations) == 1 and f"--checkpoint {out / 'base_s1' / 'best'}" in evaluations[0]
    assert "boom" in (out / "base_s0.log").read_text() and " wall " in (out / "base_s0.log").read_text()


def test_dry_run_prints_the_commands_in_run_order_and_runs_nothing(tmp_path):
    fake_py, calls = _fake_python(tmp_path)
    out = tmp_path / "runs"
    done = _run("vgcl", "--seeds", "0", "--dry-run", "--out", str(out), "--data", "d", "--python", str(fake_py),
                "--ground-epochs", "5", "--patience", "4", "--min-epochs", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    common = "--data d --preset small --batch-size 32 --threads 1 --no-progress --patience 4 --min-epochs 2"
    assert lines == [
        f"{fake_py} -m svg_core.train {common} --out {out}/vgcl_pre_s0 --stage pretrain --model vgcl --epochs 3"
        f" --seed 0 >> {out}/vgcl_pre_s0.log",
        f"{fake_py} -m svg_core.train {common} --out {out}/vgcl_base_s0 --model vgcl_base --pretrained-encoder"
        f" {out}/vgcl_pre_s0/encoder --epochs 5 --seed 0 >> {out}/vgcl_base_s0.log",
        f"{fake_py} -m svg_core.evaluate --checkpoint {out}/vgcl_base_s0/best --data d --split test --noise normal"
        f" --threads 1 --listening --out {out}/eval/vgcl_base_s0_normal.jsonl --metrics-out"
        f" {out}/eval/vgcl_base_s0_normal.metrics.json > {out}/eval/vgcl_base_s0_normal.txt"]
    assert not calls.exists() and not out.exists()


@pytest.mark.parametrize("args", [("tabel2",), ("vgcl", "extra"), ("variant",), ("base", "--jobs", "0"),
                                  ("variant", "_x", "--", "--pacing", "linear", "--dry-run"),
                                  ("taught", "--grounding-set", "model_dim")])
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, args):
    done = _run(*args, "--out", str(tmp_path / "runs"), "--dry-run")
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_table_plans_produce_every_run_the_results_tables_read(tmp_path):
    settings = runs.RunSettings(data=Path("d"), out=tmp_path, archive=tmp_path / "archive")
    jobs = runs.plan_jobs("all", settings)
    keys = [job.key for job in jobs]
    assert len(keys) == len(set(keys)) and keys[-1] == "archive"
    for n, job in enumerate(jobs):  # run order: what a job waits for comes before it
        assert set(job.after) <= set(keys[:n])
    reports = {job.report.name for job in jobs if isinstance(job, runs.ReportJob)}
    for rows, seeds, noises in ((TABLE2_ROWS, (0, 1, 2), ("normal",)), (TABLE3_ROWS, (0,), ("normal",)),
                                (TABLE4_ROWS, (0,), ("normal",)), (FIG4_ROWS, (0, 1, 2), ("normal", "clean", "large"))):
        for _, before, after in rows:
            for seed in seeds:
                for noise in noises:
                    stem = before.format(noise=noise) + str(seed) + (after or ("" if "cascade" in before
                                                                               else f"_{noise}"))
                    assert f"{stem}.txt" in reports, stem


def test_the_deprecated_script_maps_its_lane_and_variables_onto_the_runner(tmp_path):
    fake_py, calls = _fake_python(tmp_path)
    out = tmp_path / "runs"
    env = dict(os.environ, PY=str(fake_py), OUT=str(out), SEEDS="1", GROUND_EPOCHS="7")
    done = subprocess.run(["bash", "notebooks/results_runs.sh", "text", "data/x"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (train,) = _train_lines(calls).values()
    assert "--data data/x" in train and f"--out {out}/text_s1" in train and "--epochs 7 --seed 1" in train


def test_front_end_lane_builds_the_encoder_cache_once_then_trains(tmp_path):
    """base_whisper: the cache job comes first and is skipped once the cache file is in the data folder."""
    fake_py, calls = _fake_python(tmp_path)
    out, data = tmp_path / "runs", tmp_path / "data"
    done = _run("base_whisper", "--seeds", "0", "--out", str(out), "--data", str(data), "--python", str(fake_py))
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    assert [ln.split()[1] for ln in lines] == ["svg_core.data", "svg_core.train", "svg_core.evaluate"]
    assert lines[0].split()[2:4] == ["frontend-cache", str(data)] and "--draws 4 --noise normal" in lines[0]
    assert "--model base --set audio_frontend=whisper_base" in _train_lines(calls)[str(out / "base_whisper_s0")]
    from svg_core.data.frontend_cache import default_cache_path

    layout = SimpleNamespace(root=data)  # default_cache_path reads only the layout's root
    assert default_cache_path(layout, "whisper_base", 2, "normal") == data / runs.FRONTEND_CACHE_FILE
    data.mkdir()
    (data / runs.FRONTEND_CACHE_FILE).write_bytes(b"cache")  # built (e.g. by hand): the job is skipped
    (out / "base_whisper_s0" / "summary.json").unlink()
    calls.unlink()
    assert _run("base_whisper", "--seeds", "0", "--out", str(out), "--data", str(data), "--python",
                str(fake_py)).returncode == 0
    assert [ln.split()[1] for ln in calls.read_text().splitlines()] == ["svg_core.train"]
    dry = _run("text_d256", "--seeds", "0", "--dry-run", "--out", str(out), "--data", "d")
    assert "--model text --set model_dim=256" in dry.stdout and "text_d256_s0_normal.jsonl" in dry.stdout


def test_taught_front_end_runs_after_its_text_teacher(tmp_path):
    """base_whisper_tt: taught by the same seed's text run, so it waits for it and names its best/."""
    settings = runs.RunSettings(data=Path("d"), out=tmp_path, archive=tmp_path / "archive", seeds=(0, 1))
    jobs = {job.key: job for job in runs.plan_jobs("fig4", settings)}
    for seed in (0, 1):
        job = jobs[f"train:base_whisper_tt_s{seed}"]
        assert job.after == ("cache:frontend_normal", f"train:text_s{seed}")
        teacher = str(tmp_path / f"text_s{seed}" / "best")
        args = list(job.args)
        assert args[args.index("--init-from-text") + 1] == teacher == args[args.index("--distill-from") + 1]
    assert "--init-from-text" not in jobs["train:base_whisper_s0"].args
    keys = list(jobs)
    assert keys.index("train:text_s0") < keys.index("train:base_whisper_tt_s0")  # run order respects it


def test_taught_pretrained_lanes_share_the_plain_pretraining(tmp_path):
    settings = runs.RunSettings(data=Path("d"), out=tmp_path, archive=tmp_path / "archive", seeds=(0,))
    jobs = {job.key: job for job in runs.plan_jobs("taught", settings)}
    for family in ("cpc", "vgcl"):
        ground = jobs[f"train:{family}_base_tt_s0"]
        assert ground.after == (f"train:{family}_pre_s0", "train:text_s0")
        assert "--init-from-text" in ground.args and f"eval:{family}_base_tt_s0_normal" in jobs
    assert {"train:base_tt_s0", "train:vslnet_tt_s0", "train:base_whisper_tt_s0"} <= set(jobs)


def test_weak_and_search_plans(tmp_path):
    """weak: FSAN on words, on the front-end's speech steps (after the encoder cache) and on log-Mel;
    search: AVLnet training, then its video R@k / VCMR report over the test split."""
    settings = runs.RunSettings(data=Path("d"), out=tmp_path, archive=tmp_path / "archive", seeds=(0,))
    weak = {job.key: job for job in runs.plan_jobs("weak", settings)}
    assert "--model fsan_text" in " ".join(weak["train:fsan_text_s0"].args)
    front = weak["train:fsan_whisper_s0"]
    assert front.after == ("cache:frontend_normal",)
    assert "--model fsan_speech --set audio_frontend=whisper_base" in " ".join(front.args)
    assert "--set" not in weak["train:fsan_speech_s0"].args and "eval:fsan_whisper_s0_normal" in weak
    recon = " ".join(weak["train:fsan_whisper_recon_s0"].args)
    assert weak["train:fsan_whisper_recon_s0"].after == ("cache:frontend_normal",)
    assert "--set outside_stat=mean --set recon_weight=1.0" in recon and "--model fsan_speech" in recon
    assert "--set recon_weight=1.0" in " ".join(weak["train:fsan_text_recon_s0"].args)
    search = {job.key: job for job in runs.plan_jobs("search", settings)}
    assert search["train:avlnet_whisper_s0"].after == ("cache:frontend_normal",)
    assert "--set audio_frontend=whisper_base" in " ".join(search["train:avlnet_whisper_s0"].args)
    report = search["search:avlnet_s0"]
    assert report.after == ("train:avlnet_s0",) and report.report == tmp_path / "eval" / "search_avlnet_s0_test.txt"
    args = list(report.args)
    assert args[:3] == ["-m", "svg_core.search", "evaluate"]
    assert args[args.index("--checkpoint") + 1] == str(tmp_path / "avlnet_s0" / "best")


def test_grounding_sets_reach_every_supervised_grounding_run_and_no_pretraining(tmp_path):
    """The world-5 recipe (D = 256, video kernel 3) for the teacher and every taught lane alike;
    pre-training and the weak families keep their own configs."""
    settings = runs.RunSettings(data=Path("d"), out=tmp_path, archive=tmp_path / "archive", seeds=(0,),
                                grounding_sets=("model_dim=256", "video_kernel=3"))
    jobs = {job.key: " ".join(job.args) for job in runs.plan_jobs("taught", settings) if job.key.startswith("train:")}
    sets = "--set model_dim=256 --set video_kernel=3"
    grounding = ("text_s0", "base_whisper_tt_s0", "base_tt_s0", "vslnet_tt_s0", "cpc_base_tt_s0", "vgcl_base_tt_s0")
    assert {f"train:{name}" for name in grounding} | {"train:cpc_pre_s0", "train:vgcl_pre_s0"} == set(jobs)
    for name in grounding:
        assert sets in jobs[f"train:{name}"], name
    for name in ("cpc_pre_s0", "vgcl_pre_s0"):
        assert "--set" not in jobs[f"train:{name}"]
    weak = {job.key: " ".join(job.args) for job in runs.plan_jobs("weak", settings) if job.key.startswith("train:")}
    assert not any("model_dim" in line for line in weak.values())
    dry = _run("text", "--seeds", "0", "--dry-run", "--out", str(tmp_path), "--data", "d",
               "--grounding-set", "model_dim=256", "--grounding-set", "video_kernel=3")
    assert dry.returncode == 0 and f"--model text {sets} --epochs 10" in dry.stdout, dry.stderr
