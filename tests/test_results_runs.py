"""Tests of notebooks/results_runs.sh's job logic with a stand-in Python: skip, resume, logs."""

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "notebooks" / "results_runs.sh"


def test_a_lane_skips_finished_runs_and_resumes_a_killed_one(tmp_path):
    calls = tmp_path / "calls.txt"
    fake_py = tmp_path / "python"  # records its arguments instead of training
    fake_py.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n')
    fake_py.chmod(0o755)
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
