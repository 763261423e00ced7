"""Latency benchmark of the web app as a user sees it: start the server, then time requests.

    python -m app.bench [--requests 8] [--scenes 3] [--asr whisper] [--model NAME] [--data DIR] [--fake]

Starts ``app/app.py`` in a subprocess on 127.0.0.1 (as the README's run command does, with its
background warm-up), waits until the page answers, then sends the demo set's own spoken
queries (white noise, 10 dB, 60% covered) through gradio_client's ``/ground`` endpoint one at a
time. The first request is timed apart from the later ones. Targets: first <= 5 s, later <= 2 s.
Times are wall-clock at the client (queueing, ASR, both groundings and drawing the figures; not
the download of the output files, which a browser does itself). The
endpoint streams the end-to-end answer first, then the cascade's: both times are printed.
Then ``/new_scene`` renders ``--scenes`` new synthetic scenes (seeds 1, 2, ...; render, features
and mp4, until the scene is ready to ground) and their median time is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from app.resources import AppConfig, Backend, DemoSet
from svg_core.errors import UserInputError
from svg_core.synth.new_scene import plan_new_scene, scene_format_of
from svg_core.synth.worlds import DEFAULT_WORLD

ROOT = Path(__file__).resolve().parents[1]
FIRST_TARGET_SEC = 5.0
LATER_TARGET_SEC = 2.0


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(config: AppConfig, tmp: Path, timeout_sec: float = 300.0) -> tuple[subprocess.Popen, str]:
    """Start ``app/app.py`` on 127.0.0.1 at a free port with ``config``; wait until it answers.

    Used by this benchmark, by ``app.screenshot`` and by the app tests. The server's output goes
    to ``tmp/app_<port>.log`` and its gradio files to ``tmp/gradio``.

    Returns:
        (the process, to be stopped with :func:`stop_server`; the page URL).

    Raises:
        RuntimeError: the app exited or did not answer within ``timeout_sec`` (log tail included).
    """
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(tmp / "gradio"),
               PYTHONUNBUFFERED="1", SVG_DATA_DIR=str(config.data_dir),
               SVG_CHECKPOINTS_DIR=str(config.checkpoints_dir))
    env.pop("SVG_APP_FAKE", None)
    env.pop("SVG_ESC50_DIR", None)
    if config.fake:
        env["SVG_APP_FAKE"] = "1"
    if config.esc50_dir is not None:
        env["SVG_ESC50_DIR"] = str(config.esc50_dir)
    log_path = tmp / f"app_{port}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app" / "app.py"), "--port", str(port)],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout_sec
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited; log:\n{log_path.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"the app did not answer within {timeout_sec:.0f} s; log:\n{log_path.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop a server started by :func:`start_server` (that process only)."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8, help="requests after the first (default 8)")
    parser.add_argument("--scenes", type=int, default=3, help="new scenes to render and time (default 3; 0: none)")
    parser.add_argument("--asr", choices=("whisper", "sphinx"), default="whisper", help="cascade ASR engine")
    parser.add_argument("--model", default=None,
                        help="end-to-end model (default: the best val score among the shipped ones)")
    AppConfig.add_arguments(parser)
    args = parser.parse_args(argv)
    config = AppConfig.from_args(args)
    demo_set = DemoSet(config.data_dir)
    model = args.model or Backend(config).model_names()[0]
    records = [r for r in demo_set.records if demo_set.audio_path(r) is not None][: args.requests + 1]
    if not records:
        print(f"error: {config.data_dir} has no spoken queries", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="svg_app_bench_"))
    begin = time.perf_counter()
    try:
        server, url = start_server(config, tmp)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        startup_sec = time.perf_counter() - begin
        from gradio_client import Client

        # No file download by the client: a browser fetches the figures and the video itself, in
        # parallel and cached; gradio_client's sequential downloads doubled the measured time.
        client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
        times, first_update, devices, parts = [], [], set(), {"end_to_end": [], "asr": [], "text_grounding": []}
        load_before = os.getloadavg()[0]
        for record in records:
            start = time.perf_counter()
            job = client.submit("The video's own spoken query", None, "", record.query_id, record.video_id,
                                "white", 10, 0.6, 0, model, args.asr, api_name="/ground")
            while not job.outputs() and not job.done():  # the first streamed update: end-to-end answer
                time.sleep(0.01)
            first_update.append(time.perf_counter() - start)
            result = job.result()
            times.append(time.perf_counter() - start)
            devices.add(result[6]["device"])
            for key in parts:
                parts[key].append(result[6]["latency_sec"][key])
            fake = result[6]["fake"]
        try:
            scene_world = scene_format_of(demo_set.layout.manifest).world
        except UserInputError:  # no extractor named: the app renders the default world (fake mode only)
            scene_world = DEFAULT_WORLD
        scene_runs = []  # (video seconds, client seconds) per new scene
        for seed in range(1, args.scenes + 1):
            start = time.perf_counter()
            client.predict(seed, api_name="/new_scene")
            scene_runs.append((plan_new_scene(seed, scene_world).scene.duration_sec, time.perf_counter() - start))
    finally:
        stop_server(server)

    first, later = times[0], times[1:]
    e2e_first, e2e_later = first_update[0], first_update[1:]
    print(f"app latency, {platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads, "
          f"device {'/'.join(sorted(devices))}, model {model}, ASR {args.asr}"
          + ("  [FAKE parts: " + ", ".join(k for k, v in fake.items() if v) + "]" if any(fake.values()) else ""))
    print(f"load average when the requests began: {load_before:.1f} (other processes share this CPU)")
    print(f"server start to first page: {startup_sec:.1f} s")
    print(f"first request:   {first:.2f} s   (target <= {FIRST_TARGET_SEC:.0f} s: "
          f"{'ok' if first <= FIRST_TARGET_SEC else 'MISSED'})")
    if later:
        print(f"later requests:  median {statistics.median(later):.2f} s, max {max(later):.2f} s over {len(later)} "
              f"(target <= {LATER_TARGET_SEC:.0f} s: {'ok' if max(later) <= LATER_TARGET_SEC else 'MISSED'})")
    print(f"end-to-end answer on screen (first streamed update): first request {e2e_first:.2f} s"
          + (f", later median {statistics.median(e2e_later):.2f} s, max {max(e2e_later):.2f} s" if e2e_later else ""))
    print("server-side medians: " + ", ".join(f"{k} {statistics.median(v):.3f} s" for k, v in parts.items()))
    if scene_runs:
        median = statistics.median(t for _, t in scene_runs)
        runs = ", ".join(f"{d:.0f} s video in {t:.2f} s" for d, t in scene_runs)
        print(f"new scene (render + features + mp4, ready to ground): median {median:.2f} s over "
              f"{len(scene_runs)} scenes ({runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
