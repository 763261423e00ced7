"""The app as a server: gradio_client calls of the main endpoint, errors, upload limit, 8 at once.

The app runs in a subprocess on 127.0.0.1 at a free port, on the fake predictor and a tiny
generated demo set (``SVG_APP_FAKE=1``), so no checkpoint is needed; one test runs the real
checkpoints and ASR when they are present in ``checkpoints/`` and ``assets/demo_bundle/``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.bench import start_server
from app.bench import stop_server as stop_app
from app.fake import write_tiny_demo_set
from app.resources import DEFAULT_DATA_DIR, FAKE_MODEL, AppConfig, discover_checkpoints

pytestmark = pytest.mark.slow  # starts the app in a subprocess (seconds per test)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "out"


def start_app(tmp: Path, data_dir: Path | None, fake: bool = True, checkpoints_dir: Path | None = None):
    """The app in a subprocess on 127.0.0.1 (app.bench.start_server); returns (process, url).
    The checkpoints are the shipped ones unless ``checkpoints_dir`` is given."""
    OUT.mkdir(parents=True, exist_ok=True)
    config = AppConfig.from_env()
    config.fake = fake
    if data_dir is not None:
        config.data_dir = data_dir
    config.checkpoints_dir = checkpoints_dir or ROOT / "checkpoints"
    return start_server(config, tmp, timeout_sec=180.0)


def speech_wav(path: Path, seconds: float = 1.5, rate: int = 44_100, channels: int = 2) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.4 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 2 * t) ** 2).astype(np.float32)
    sf.write(path, np.stack([wave] * channels, axis=1), rate)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app_client")
    data = write_tiny_demo_set(tmp / "demo", n_videos=2, queries_per_video=2)
    proc, url = start_app(tmp, data)
    yield url, tmp
    stop_app(proc)


def ground_args(audio, video_id="v_fake0", source="Record or upload", query_id=None, model=FAKE_MODEL):
    # source, audio, typed text, query id, video, noise kind, SNR dB, proportion, seed, model, ASR
    return [source, audio, "", query_id, video_id, "white", 5, 0.6, 0, model, "whisper"]


def test_main_endpoint_returns_every_output(server):
    from gradio_client import Client, handle_file

    url, tmp = server
    client = Client(url, verbose=False, download_files=str(tmp / "dl"), analytics_enabled=False)
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/ground", "/robustness", "/evaluate_demo_set", "/listen", "/new_scene"} <= set(endpoints)
    wav = speech_wav(tmp / "q.wav")
    video, timeline, heatmap, noisy, transcript, info, summary, seek = client.predict(
        *ground_args(handle_file(str(wav))), api_name="/ground")
    assert Path(video).suffix == ".mp4" and Path(video).stat().st_size > 0
    assert Path(timeline).read_bytes()[:4] == b"\x89PNG" and Path(heatmap).read_bytes()[:4] == b"\x89PNG"
    assert sf.info(noisy).samplerate == 16_000 and abs(sf.info(noisy).duration - 1.5) < 0.05
    assert transcript == "a person is talking about the video"
    assert "FAKE run" in info and "End-to-end" in info
    assert summary["fake"]["model"] and summary["end_to_end_sec"][0] == pytest.approx(seek, abs=0.01)
    assert summary["noise"]["kind"] == "white" and summary["noise"]["covered_sec"][1] > 0


def test_new_scene_then_ground_and_listen_on_it(server):
    from gradio_client import Client

    url, tmp = server
    client = Client(url, verbose=False, download_files=str(tmp / "dl"), analytics_enabled=False)
    video_id, mp4, info, captions = client.predict(23, api_name="/new_scene")
    assert video_id == "v_new000023" and Path(mp4).stat().st_size > 0 and "No model has seen it" in info
    args = ["Typed sentence (piper voice)", None, captions[0], None, video_id, "none", 10, 0.6, 0, FAKE_MODEL,
            "whisper"]
    result = client.predict(*args, api_name="/ground")
    assert result[6]["video_id"] == video_id and result[6]["ground_truth_sec"] is None
    figure, text, summary = client.predict(*args, api_name="/listen")
    assert Path(figure).read_bytes()[:4] == b"\x89PNG" and "silent-query predictions" in text
    assert summary["your_query_sec"] and summary["silent_query_sec"] and summary["text"]["words"] == captions[0]
    with pytest.raises(Exception, match="whole number from 0 to 999999"):
        client.predict(1_000_000, api_name="/new_scene")


def test_endpoint_errors_are_user_messages(server):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, tmp = server
    client = Client(url, verbose=False, download_files=str(tmp / "dl"), analytics_enabled=False)
    with pytest.raises(AppError, match="No audio"):
        client.predict(*ground_args(None), api_name="/ground")
    silent = tmp / "silent.wav"
    sf.write(silent, np.zeros(16_000, np.float32), 16_000)
    with pytest.raises(AppError, match="silent"):
        client.predict(*ground_args(handle_file(str(silent))), api_name="/ground")
    with pytest.raises(AppError, match="unknown video"):
        client.predict(*ground_args(handle_file(str(speech_wav(tmp / "a.wav"))), video_id="v_nope"),
                       api_name="/ground")


def test_upload_size_limit(server):
    import httpx

    url, tmp = server
    big = tmp / "big.wav"
    big.write_bytes(b"\0" * (11 * 1024 * 1024))
    with big.open("rb") as handle:
        response = httpx.post(url + "gradio_api/upload", files={"files": ("big.wav", handle, "audio/wav")}, timeout=60)
    assert response.status_code == 413


def test_eight_concurrent_requests_all_succeed(server):
    from gradio_client import Client, handle_file

    url, tmp = server
    client = Client(url, verbose=False, download_files=str(tmp / "dl8"), analytics_enabled=False)
    wavs = [speech_wav(tmp / f"c{i}.wav", seconds=1.0 + 0.2 * i, rate=16_000 + 8000 * (i % 3), channels=1 + i % 2)
            for i in range(8)]

    def call(i):
        return client.predict(*ground_args(handle_file(str(wavs[i])), video_id=f"v_fake{i % 2}"), api_name="/ground")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(8)))
    assert len(results) == 8
    for i, result in enumerate(results):
        summary = result[6]
        assert summary["video_id"] == f"v_fake{i % 2}" and result[4]
        assert abs(sf.info(result[3]).duration - (1.0 + 0.2 * i)) < 0.05


REAL_READY = (DEFAULT_DATA_DIR / "manifest.json").exists() and any(
    c.query == "audio" for c in discover_checkpoints(ROOT / "checkpoints"))


@pytest.mark.skipif(not REAL_READY, reason="needs the shipped checkpoints and assets/demo_bundle")
def test_real_checkpoints_on_the_demo_bundle(tmp_path):
    """The default app (no fake): a bundled spoken query grounded by the first shipped model."""
    from gradio_client import Client

    from app.resources import DemoSet

    demo_set = DemoSet(DEFAULT_DATA_DIR)
    record = next(r for r in demo_set.records if demo_set.audio_path(r) is not None)
    model = next(c.name for c in discover_checkpoints(ROOT / "checkpoints") if c.query == "audio")
    proc, url = start_app(tmp_path, None, fake=False)
    try:
        client = Client(url, verbose=False, download_files=str(tmp_path / "dl"), analytics_enabled=False)
        result = client.predict("The video's own spoken query", None, "", record.query_id, record.video_id, "none",
                                10, 0.0, 0, model, "sphinx", api_name="/ground")
    finally:
        stop_app(proc)
    summary = result[6]
    assert not summary["fake"]["model"] and not summary["fake"]["asr"]
    assert summary["model"] == model and summary["ground_truth_sec"] is not None
    assert 0.0 <= summary["end_to_end_iou"] <= 1.0 and summary["wer"] is not None
    assert Path(result[1]).read_bytes()[:4] == b"\x89PNG" and Path(result[2]).read_bytes()[:4] == b"\x89PNG"


def readme_client_example() -> str:
    """The python block after the ``client-example`` marker in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text.split("<!-- client-example", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_client_example_runs_against_the_live_app(tmp_path, capsys):
    code = readme_client_example()
    assert 'api_name="/ground"' in code and "video_id=" in code and "snr_db=" in code
    proc, url = start_app(tmp_path, None, fake=False)
    try:
        exec(compile(code.replace("http://127.0.0.1:7860/", url), "README.md", "exec"), {})
    finally:
        stop_app(proc)
    printed = capsys.readouterr().out.strip().splitlines()[-1]  # after "Loaded as API: ..."
    assert printed.startswith("[") and "[11.74, 42.2]" in printed  # the predicted span, then the truth


def test_every_endpoint_names_its_parameters(server):
    from gradio_client import Client

    url, tmp = server
    client = Client(url, verbose=False, download_files=str(tmp / "dl"), analytics_enabled=False)
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in endpoints["/new_scene"]["parameters"]] == ["scene_seed"]
    for name in ("/ground", "/robustness", "/evaluate_demo_set", "/listen"):
        params = [p["parameter_name"] for p in endpoints[name]["parameters"]]
        assert "snr_db" in params and "seed" in params and not any(p.startswith("param_") for p in params), params
    assert "video_id" in [p["parameter_name"] for p in endpoints["/ground"]["parameters"]]


def test_search_endpoint_ranks_every_video(server):
    from gradio_client import Client, handle_file

    url, tmp = server
    client = Client(url, verbose=False, download_files=str(tmp / "dl_search"), analytics_enabled=False)
    assert "/search" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    wav = speech_wav(tmp / "q_search.wav")
    gallery, table, timeline, pick, summary = client.predict("Record or upload", handle_file(str(wav)), "", FAKE_MODEL,
                                                             api_name="/search")
    assert len(gallery) == 2 and Path(timeline).read_bytes()[:4] == b"\x89PNG"
    assert summary["fake_search"] and summary["top_video"] in ("v_fake0", "v_fake1")
    assert [row[0] for row in table["data"]] == [1, 2]
