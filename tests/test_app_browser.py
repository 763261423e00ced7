"""The app in headless Chromium (playwright driving Debian's /usr/bin/chromium, no download).

Uploads a wav and runs; records through the real record button from a fake microphone that
plays a wav; loads a failure case with one click; renders a new scene and grounds a query on it
and asks "Does it listen?"; and checks that the page made no request outside 127.0.0.1. Runs on the fake predictor (``SVG_APP_FAKE=1``) and a tiny generated demo set.
Screenshots go to tests/out/.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile

import numpy as np
import pytest
import soundfile as sf

from app.fake import write_tiny_demo_set
from tests.test_app_client import OUT, speech_wav, start_app, stop_app

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BASE_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 90_000  # generous: the CPU is shared and slow

pytestmark = [pytest.mark.needs_binary(CHROMIUM), pytest.mark.slow]  # slow: a live app + chromium


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """(page, external_requests, url): one app server and one browser for the whole module."""
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("app_browser")
    data = write_tiny_demo_set(tmp / "demo", n_videos=2, queries_per_video=2)
    mic = tmp / "fake_mic_48k_stereo.wav"
    t = np.arange(4 * 48_000) / 48_000
    tone = (0.5 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2.5 * t))).astype(np.float32)
    sf.write(mic, np.stack([tone, tone], axis=1), 48_000, subtype="PCM_16")
    proc, url = start_app(tmp, data)
    external: list[str] = []
    mic_flags = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={mic}"]
    try:
        with sync_playwright() as pw:
            profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp)
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=BASE_FLAGS + mic_flags,
                viewport={"width": 1400, "height": 1600})

            def gate(route):  # loopback only; anything else is recorded and refused (offline check)
                request_url = route.request.url
                if request_url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
                    route.continue_()
                else:
                    external.append(request_url)
                    route.abort()

            ctx.route("**/*", gate)
            page = ctx.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            page.wait_for_selector("#run_btn")
            # No "networkidle": gr.State keeps a heartbeat stream open for the whole session.
            page.locator("#gallery img").first.wait_for(state="visible")
            yield page, external, tmp
            ctx.close()
    finally:
        stop_app(proc)


def _wait_info(page, pattern: str):
    from playwright.sync_api import expect

    expect(page.locator("#info")).to_contain_text(re.compile(pattern), timeout=TIMEOUT_MS)


def test_upload_run_shows_timeline_heatmap_transcript(browser):
    from playwright.sync_api import expect

    page, _, tmp = browser
    expect(page.locator("#fake_banner")).to_contain_text("FAKE MODE")
    page.locator("#audio_in").get_by_label("Upload file").click()
    page.locator("#audio_in input[type=file]").set_input_files(str(speech_wav(tmp / "upload.wav", 1.5, 22_050, 1)))
    page.locator("#audio_in audio").first.wait_for(state="attached", timeout=TIMEOUT_MS)
    kind = page.locator("#noise_kind input")
    kind.click()
    kind.fill("white")
    page.get_by_role("option", name="white (synthetic)").click()
    page.locator("#run_btn").click()
    _wait_info(page, r"Query: 1\.5 s \(Record or upload\); white noise")
    expect(page.locator("#timeline img")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#heatmap img")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#transcript textarea")).to_have_value("a person is talking about the video")
    expect(page.locator("#noisy_audio audio").first).to_be_attached()
    # The chained js step seeks the video to the predicted start shown in the info text.
    start_sec = float(re.search(r"End-to-end.*?: ([\d.]+)-", page.locator("#info").inner_text()).group(1))
    page.wait_for_function(
        f"() => {{ const v = document.querySelector('#video_out video'); return v && v.readyState >= 1 && "
        f"Math.abs(v.currentTime - {start_sec}) < 0.3; }}", timeout=TIMEOUT_MS)
    page.locator("#sweep_btn").click()
    expect(page.locator("#robustness img")).to_be_visible(timeout=TIMEOUT_MS)
    page.screenshot(path=str(OUT / "app_upload_run.png"), full_page=True)


def test_fake_microphone_through_the_record_button(browser):
    page, _, _ = browser
    page.locator("#audio_in").get_by_label("Clear").click()
    page.locator("#audio_in").get_by_label("Record audio").click()
    page.locator("#audio_in button.record-button").click()
    page.wait_for_timeout(3000)
    page.locator("#audio_in button.stop-button").click()
    page.locator("#audio_in audio").first.wait_for(state="attached", timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)
    page.locator("#run_btn").click()
    # A browser recording arrives as a 44.1 kHz wav of about 3 s; the info line reports 16 kHz seconds.
    _wait_info(page, r"Query: [2-4]\.\d s \(Record or upload\)")
    assert page.locator("#timeline img").is_visible() and page.locator("#heatmap img").is_visible()
    page.screenshot(path=str(OUT / "app_mic_run.png"), full_page=True)


def test_failure_case_loads_with_one_click(browser):
    from playwright.sync_api import expect

    page, _, _ = browser
    page.get_by_role("tab", name="Failure cases").click()
    page.locator("#eval_btn").click()
    first_cell = page.get_by_role("gridcell", name=re.compile(r"\.wav$")).first
    expect(first_cell).to_be_visible(timeout=TIMEOUT_MS)
    row = first_cell.get_attribute("data-row")
    sentence = page.locator(f'#cases [data-testid="cell-{row}-2"]').inner_text().strip()
    page.screenshot(path=str(OUT / "app_failure_cases.png"), full_page=True)
    first_cell.click()
    _wait_info(page, r"Query: .*\(The video's own spoken query\)")
    _wait_info(page, r"Ground truth: [\d.]+-[\d.]+ s")
    expect(page.locator("#info")).to_contain_text(f'against the reference: "{sentence}"')
    assert page.locator("#run_btn").is_visible()  # back on the main tab


def test_new_scene_then_ground_and_listen(browser):
    """New scene renders a video, puts it in the menu with its first caption typed; grounding and
    "Does it listen?" then run on it (no ground truth)."""
    from playwright.sync_api import expect

    page, _, _ = browser
    page.get_by_role("tab", name="Ground a spoken query").click()
    page.locator("#new_scene_box").get_by_text("New scene: a video no model has seen").click()
    seed = page.locator("#scene_seed input")
    expect(seed).to_have_value("1")  # the box has its initial value: a fill before that is overwritten
    page.wait_for_timeout(500)
    seed.fill("23")  # a 12 s scene
    seed.blur()  # the number box commits its value on change: click only once it holds 23
    expect(seed).to_have_value("23")
    page.locator("#scene_btn").click()
    expect(page.locator("#scene_info")).to_contain_text("New scene v_new000023", timeout=TIMEOUT_MS)
    expect(page.locator("#video_pick input")).to_have_value("v_new000023")
    expect(page.locator("#typed textarea")).not_to_have_value("")
    page.locator("#run_btn").click()
    _wait_info(page, r"New scene.*no ground truth")
    assert "Ground truth:" not in page.locator("#info").inner_text()
    page.locator("#listen_btn").click()
    expect(page.locator("#listen_info")).to_contain_text("IoU between your-query and silent-query predictions",
                                                         timeout=TIMEOUT_MS)
    expect(page.locator("#listen_plot img")).to_be_visible(timeout=TIMEOUT_MS)
    page.screenshot(path=str(OUT / "app_new_scene_listen.png"), full_page=True)
    seed.fill("-4")
    seed.blur()
    page.locator("#scene_btn").click()
    expect(page.get_by_text("whole number from 0 to 999999").first).to_be_visible(timeout=TIMEOUT_MS)


def test_no_request_left_the_machine(browser):
    _, external, _ = browser
    assert external == []
