"""Tests of notebooks/results_runs.sh's job logic with a stand-in Python: skip, resume, logs."""

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "notebooks" / "results_runs.sh"


def _fake_python(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in for .venv/bin/python that records its arguments instead of training."""
    calls = tmp_path / "calls.txt"
    fake_py = tmp_path / "python"
    fake_py.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n')
    fake_py.chmod(0o755)
    return fake_py, calls


def test_a_lane_skips_finished_runs_and_resumes_a_killed_one(tmp_path):
    fake_py, calls = _fake_python(tmp_path)
    out = tmp_path / "runs"
    (out / "vgcl_pre_nocl_s0").mkdir(parents=True)
    (out / "vgcl_pre_nocl_s0" / "summary.json").write_text("{}")  # finished: skipped
    (out / "vgcl_base_nocl_s0" / "last").mkdir(parents=True)
    (out / "vgcl_base_nocl_s0" / "last" / "training_state.pt").write_bytes(b"state")  # killed part-way
    (out / "vgcl_base_nocl_s0.log").write_text("vgcl_base_nocl_s0 wall 10.0 s\n")
    (out / "vgcl_pre_noent_s0.log").write_text("stale log of an earlier attempt\n")
    env = dict(os.environ, PY=str(fake_py), OUT=str(out))
    done = subprocess.run(["bash", str(SCRIPT), "table3", str(tmp_path / "data")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    train_of = {ln.split("--out ")[1].split()[0]: ln for ln in lines if "svg_core.train" in ln}
    assert str(out / "vgcl_pre_nocl_s0") not in train_of  # finished runs are not trained again
    assert "--resume" in train_of[str(out / "vgcl_base_nocl_s0")]
    assert "--resume" not in train_of[str(out / "vgcl_pre_noent_s0")]
    assert "--no-entire-video" in train_of[str(out / "vgcl_pre_noent_s0")]
    assert sum("svg_core.evaluate" in ln for ln in lines) == 4  # one test evaluation per variant
    resumed_log = (out / "vgcl_base_nocl_s0.log").read_text()
    assert resumed_log.startswith("vgcl_base_nocl_s0 wall 10.0 s\n") and resumed_log.count(" wall ") == 2
    assert "stale" not in (out / "vgcl_pre_noent_s0.log").read_text()  # a fresh run starts a fresh log


def test_archive_keeps_finished_runs_and_finished_evaluations_only(tmp_path):
    fake_py, _ = _fake_python(tmp_path)
    out, dest = tmp_path / "runs", tmp_path / "archive"
    for name, files in (("base_s0", ("summary.json", "log.csv", "best/config.json", "best/metrics.json",
                                     "best/model.safetensors")),
                        ("vgcl_base_s0", ("log.csv", "best/config.json", "last/training_state.pt"))):  # killed
        for rel in files:
            (out / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / name / rel).write_text("x")
        (out / f"{name}.log").write_text(f"{name} log\n")
    (out / "eval").mkdir()
    for rel in ("base_s0_normal.jsonl", "base_s0_normal.metrics.json", "base_s0_normal.txt",
                "vgcl_base_s0_normal.txt.part"):
        (out / "eval" / rel).write_text("x")
    env = dict(os.environ, PY=str(fake_py), OUT=str(out), ARCHIVE=str(dest))
    done = subprocess.run(["bash", str(SCRIPT), "archive", str(tmp_path / "data")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    kept = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert kept == ["base_s0.log", "base_s0/best/config.json", "base_s0/best/metrics.json", "base_s0/log.csv",
                    "base_s0/summary.json", "eval/base_s0_normal.jsonl", "eval/base_s0_normal.metrics.json",
                    "eval/base_s0_normal.txt"]


def test_shipped_lane_evaluates_each_checkpoint_with_the_listening_diagnostics(tmp_path):
    fake_py, calls = _fake_python(tmp_path)
    out = tmp_path / "runs"
    env = dict(os.environ, PY=str(fake_py), OUT=str(out))
    done = subprocess.run(["bash", str(SCRIPT), "shipped", "assets/demo_bundle"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    assert len(lines) == 5 and all("svg_core.evaluate" in ln for ln in lines)
    for ckpt, name in (("base", "base_s0"), ("base_cpc", "cpc_base_s0"), ("vslnet_audio", "vslnet_s0"),
                       ("vgcl_full", "vgcl_base_s0"), ("text", "text_s0")):  # the names svg_core.results reads
        line = next(ln for ln in lines if f"--checkpoint checkpoints/{ckpt} " in ln)
        stem = out / "eval" / f"{name}_normal"
        assert "--data assets/demo_bundle --split test --noise normal --threads 1 --listening" in line
        assert f"--out {stem}.jsonl --metrics-out {stem}.metrics.json" in line
        assert (out / "eval" / f"{name}_normal.txt").exists()  # the finished report: a rerun skips it


def test_variant_lane_and_two_lanes_evaluate_a_run_once(tmp_path):
    """The variant lane trains one seed-0 VGCL variant; a second lane reaching the same finished run
    waits on its report's lock instead of evaluating it again."""
    calls = tmp_path / "calls.txt"
    fake_py = tmp_path / "python"  # evaluations take a moment, so the two lanes overlap
    fake_py.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n[[ $2 == svg_core.evaluate ]] && sleep 2\ntrue\n')
    fake_py.chmod(0o755)
    out = tmp_path / "runs"
    env = dict(os.environ, PY=str(fake_py), OUT=str(out), DATA=str(tmp_path / "data"))
    done = subprocess.run(["bash", str(SCRIPT), "variant", "_log10", "--pacing", "logarithmic", "--kappa", "10"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    pre = next(ln for ln in lines if f"--out {out}/vgcl_pre_log10_s0" in ln)
    assert "--pacing logarithmic --kappa 10" in pre and f"--data {tmp_path / 'data'}" in pre
    assert any(f"--out {out}/vgcl_base_log10_s0" in ln and "--pretrained-encoder" in ln for ln in lines)
    assert sum("svg_core.evaluate" in ln for ln in lines) == 1

    calls.unlink()
    (out / "eval" / "vgcl_base_log10_s0_normal.txt").unlink()
    for name in ("vgcl_pre_log10_s0", "vgcl_base_log10_s0"):
        (out / name).mkdir(exist_ok=True)
        (out / name / "summary.json").write_text("{}")  # both runs finished: only the evaluation is left
    lanes = [subprocess.Popen(["bash", str(SCRIPT), "variant", "_log10"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]  # started together
    for lane in lanes:
        assert lane.wait(timeout=120) == 0, lane.stderr.read()
    assert sum("svg_core.evaluate" in ln for ln in calls.read_text().splitlines()) == 1
    assert (out / "eval" / "vgcl_base_log10_s0_normal.txt").exists()
    assert not (out / "eval" / "vgcl_base_log10_s0_normal.lock").exists()
