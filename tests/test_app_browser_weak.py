"""The app in headless Chromium with a real weakly supervised checkpoint: FSAN's alignment map.

Its own module (and app server): the fake-mode browser module keeps one playwright session open
for all its tests, and a second sync session cannot start inside it.
"""

from __future__ import annotations

import re

import pytest

from app.fake import write_tiny_demo_set
from tests.test_app_browser import BASE_FLAGS, CHROMIUM, TIMEOUT_MS, _wait_info
from tests.test_app_client import OUT, speech_wav, start_app, stop_app

pytestmark = [pytest.mark.needs_binary(CHROMIUM), pytest.mark.slow]  # slow: a live app + chromium


def test_fsan_alignment_map_renders_next_to_the_attention_view(tmp_path):
    """A real (tiny, untrained, seeded) spoken FSAN checkpoint in a non-fake app: the run draws its
    alignment map right of the context-query attention view (a wider heatmap figure) and the info
    text describes it."""
    from playwright.sync_api import expect, sync_playwright

    from svg_core.engine.checkpoint import save_checkpoint
    from svg_core.models import build_model
    from tests.test_fsan import tiny_fsan

    cfg = tiny_fsan("speech")
    save_checkpoint(tmp_path / "checkpoints" / "fsan_speech", build_model(cfg), cfg)
    data = write_tiny_demo_set(tmp_path / "demo", n_videos=1, queries_per_video=1)
    proc, url = start_app(tmp_path, data, fake=False, checkpoints_dir=tmp_path / "checkpoints")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=BASE_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            page.wait_for_selector("#run_btn")
            expect(page.locator("#model input")).to_have_value(re.compile(r"fsan_speech \(weakly supervised\)"))
            page.locator("#asr").get_by_text("sphinx", exact=True).click()
            page.locator("#audio_in").get_by_label("Upload file").click()
            page.locator("#audio_in input[type=file]").set_input_files(str(speech_wav(tmp_path / "q.wav", 2.0)))
            page.locator("#audio_in audio").first.wait_for(state="attached", timeout=TIMEOUT_MS)
            page.locator("#run_btn").click()
            _wait_info(page, r"Alignment map.*speech steps x \d+ clips")
            heat = page.locator("#heatmap img")
            expect(heat).to_be_visible(timeout=TIMEOUT_MS)
            page.wait_for_function("() => { const i = document.querySelector('#heatmap img'); "
                                   "return i && i.complete && i.naturalWidth > 0; }", timeout=TIMEOUT_MS)
            width, height = heat.evaluate("i => [i.naturalWidth, i.naturalHeight]")
            assert width / height > 2.5, (width, height)  # 13 x 4.6 in with the map; 9 x 4.6 without
            page.screenshot(path=str(OUT / "app_fsan_alignment_map.png"), full_page=True)
            browser.close()
    finally:
        stop_app(proc)
