"""Take the README screenshot: the app grounding a bundled spoken query under ESC-50 noise.

    python -m app.screenshot [docs/img/app.png] [--fake]
    python -m app.screenshot docs/img/app_new_scene.png --new-scene 1

Starts the app on 127.0.0.1 (the default demo set and checkpoints), picks the first video's own
spoken query, adds ESC-50 animal noise at 0 dB (white noise when no ESC-50 folder is
configured), runs, waits for both paths, and saves the top of the page (1440 x 1750) as a
256-colour PNG. With ``--new-scene SEED`` it renders that new scene instead, grounds its first
caption (clean, piper voice), asks "Does it listen?" and saves the whole page. Drives Debian's
/usr/bin/chromium through playwright (no browser download).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from app.resources import AppConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path("docs/img/app.png"), help="PNG to write")
    parser.add_argument("--new-scene", type=int, default=None, metavar="SEED",
                        help="render new scene SEED, ground its first caption and ask 'Does it listen?'")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="browser executable")
    AppConfig.add_arguments(parser)
    args = parser.parse_args(argv)
    config = AppConfig.from_args(args)

    from playwright.sync_api import expect, sync_playwright

    from app.bench import start_server, stop_server

    tmp = Path(tempfile.mkdtemp(prefix="svg_app_shot_"))
    proc, url = start_server(config, tmp)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True,
                                         args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic"])
            page = browser.new_page(viewport={"width": 1440, "height": 1750})
            page.set_default_timeout(180_000)
            page.goto(url)
            page.wait_for_selector("#run_btn")
            page.locator("#gallery img").first.wait_for(state="visible")
            if args.new_scene is not None:
                raw = tmp / "raw.png"
                _new_scene_and_listen(page, args.new_scene, raw)
                browser.close()
                return _save(raw, args.out)
            page.locator("#source").get_by_text("The video's own spoken query").click()
            noise = "Animals" if config.esc50_dir is not None else "white (synthetic)"
            kind = page.locator("#noise_kind input")
            kind.click()
            kind.fill(noise.split()[0])
            page.get_by_role("option", name=re.compile(re.escape(noise))).first.click()
            snr = page.locator("#snr_db input[type=number]")
            snr.fill("0")
            snr.press("Enter")
            page.locator("#run_btn").click()
            expect(page.locator("#info")).to_contain_text(re.compile(r"WER|no query understood"), timeout=180_000)
            page.wait_for_timeout(1500)  # let the figures and the video settle
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(500)
            raw = tmp / "raw.png"
            page.screenshot(path=str(raw))
            browser.close()
    finally:
        stop_server(proc)
    return _save(raw, args.out)


def _new_scene_and_listen(page, seed: int, raw: Path) -> None:
    """New scene ``seed``, its first caption grounded, "Does it listen?"; the whole page to ``raw``."""
    from playwright.sync_api import expect

    page.locator("#new_scene_box").get_by_text("New scene: a video no model has seen").click()
    page.locator("#scene_seed input").fill(str(seed))
    page.locator("#scene_btn").click()
    expect(page.locator("#scene_info")).to_contain_text(f"New scene v_new{seed:06d}", timeout=180_000)
    page.locator("#run_btn").click()
    expect(page.locator("#info")).to_contain_text(re.compile(r"WER|no query understood"), timeout=180_000)
    page.locator("#listen_btn").click()
    expect(page.locator("#listen_plot img")).to_be_visible(timeout=180_000)
    page.wait_for_timeout(1500)  # let the figures and the video settle
    page.screenshot(path=str(raw), full_page=True)


def _save(raw: Path, out: Path) -> int:
    """``raw`` as a 256-colour PNG at ``out``."""
    from PIL import Image

    out.parent.mkdir(parents=True, exist_ok=True)
    Image.open(raw).convert("RGB").quantize(colors=256, dither=Image.Dither.NONE).save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
