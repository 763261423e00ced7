"""Command-line path for people without a browser: ground a recorded or saved spoken query.

    python -m app.cli --video ID (--wav FILE | --record SECONDS) [--noise TYPE --snr-db X]

Prints the end-to-end model's segment and the ASR cascade's answer (``--json`` for the full
summary). Uses the same handlers, demo set and checkpoints as the web app (app/resources.py).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from app import handlers as H
from app.resources import AppConfig, Backend, DemoSet, configure_torch_threads
from svg_core.errors import UserInputError, run_cli


class RecordingError(RuntimeError):
    """No way to record here (no PortAudio library, no input device, recording failed)."""


def record(seconds: float) -> tuple[np.ndarray, int]:
    """Record mono audio from the default input device with sounddevice.

    Args:
        seconds: how long to record (0 < seconds <= 30).

    Returns:
        (float32 [n], sample_rate_hz).

    Raises:
        RecordingError: with a message saying what is missing and what to do instead.
    """
    if not 0 < seconds <= H.MAX_QUERY_SEC:
        raise RecordingError(f"--record takes 0 to {H.MAX_QUERY_SEC:.0f} seconds, found {seconds}")
    try:
        import sounddevice as sd
    except OSError as err:  # sounddevice raises OSError when libportaudio is absent
        raise RecordingError(
            f"cannot record: {err}. Install PortAudio (Debian/Ubuntu: apt-get install libportaudio2), "
            "or pass a recorded file with --wav FILE."
        ) from err
    try:
        device = sd.query_devices(kind="input")
    except Exception as err:  # sounddevice raises PortAudioError/ValueError when none exists
        raise RecordingError(
            f"no microphone found (no audio input device: {err}). Pass a recorded file with --wav FILE."
        ) from err
    rate = int(device.get("default_samplerate") or 16000)
    print(f"Recording {seconds:g} s from '{device.get('name', '?')}' at {rate} Hz... speak now.", file=sys.stderr)
    try:
        data = sd.rec(int(seconds * rate), samplerate=rate, channels=1, dtype="float32")
        sd.wait()
    except Exception as err:
        raise RecordingError(f"recording failed: {err}. Pass a recorded file with --wav FILE.") from err
    return np.asarray(data, dtype=np.float32)[:, 0], rate


def format_result(result: H.GroundingResult) -> str:
    """Human-readable lines: the video, the end-to-end segment, the cascade's answer."""
    fake = "  [FAKE: " + ", ".join(k for k, v in result.fake.items() if v) + "]" if result.any_fake else ""
    lines = [f"video {result.video_id} ({result.duration_sec:.1f} s); "
             f"model {result.model_name} on {result.device}{fake}"]
    if not result.noise.clean:
        lines.append(f"noise: {result.noise.kind} at {result.noise.snr_db:g} dB over "
                     f"{result.noise_span_sec[0]:.2f}-{result.noise_span_sec[1]:.2f} s of the query")
    e2e = result.e2e
    lines.append(f"end-to-end: {e2e['start_sec']:.1f}-{e2e['end_sec']:.1f} s "
                 f"(score {float(e2e['score']):.3f}, {result.latency_sec['end_to_end']:.3f} s)")
    if result.cascade is None:
        lines.append(f"cascade ({result.asr_engine}): {result.cascade_message}")
    else:
        c = result.cascade
        lines.append(f"cascade ({result.asr_engine}): \"{result.transcript}\" -> "
                     f"{c['start_sec']:.1f}-{c['end_sec']:.1f} s "
                     f"({result.latency_sec['cascade']:.3f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a user error prints one ``error: ...`` line and exits 2 (``--debug``: traceback)."""
    return run_cli(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.cli", description=__doc__.splitlines()[0])
    parser.add_argument("--video", help="video id of the demo set (required unless --list)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--wav", type=Path, help="spoken query file (wav/flac/mp3/ogg, any rate, up to 30 s)")
    source.add_argument("--record", type=float, metavar="SECONDS", help="record from the microphone")
    source.add_argument("--list", action="store_true", help="list the demo set's video ids and exit")
    parser.add_argument("--noise", default="none", help="noise type: none, white, pink, brown, babble, "
                                                        "esc50, esc50:<group>, esc50:<class> (default none)")
    parser.add_argument("--snr-db", type=float, default=10.0, help="SNR over the covered part in dB (default 10)")
    parser.add_argument("--proportion", type=float, default=0.6, help="covered share of the query (default 0.6)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--model", default=None,
                        help="end-to-end checkpoint name (default: the best val score among the shipped ones)")
    parser.add_argument("--asr", choices=("whisper", "sphinx"), default="whisper", help="cascade ASR engine")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    AppConfig.add_arguments(parser)
    args = parser.parse_args(argv)
    if not math.isfinite(args.snr_db) or not -50.0 <= args.snr_db <= 100.0:
        raise UserInputError(f"--snr-db must be a finite number of dB in [-50, 100], found {args.snr_db}")
    if not 0.0 <= args.proportion <= 1.0:
        raise UserInputError(f"--proportion must be in [0, 1], found {args.proportion}")
    if not 0 <= args.seed < 2**32:
        raise UserInputError(f"--seed must be an integer in [0, 2**32 - 1], found {args.seed}")
    config = AppConfig.from_args(args)
    try:
        demo_set = DemoSet(config.data_dir)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(demo_set.video_ids))
        return 0
    if not args.video:
        parser.error("--video ID is required (list the ids with --list)")
    backend = Backend(config)
    model = args.model or backend.model_names()[0]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = args.wav
            if args.record is not None:
                wave, rate = record(args.record)
                path = Path(tmp) / "recording.wav"
                sf.write(path, wave, rate)
            query = H.load_query(backend, demo_set, H.SOURCE_AUDIO, args.video, audio_path=path)
        noise = H.NoiseSettings(args.noise, args.snr_db, args.proportion if args.noise != "none" else 0.0, args.seed)
        result = H.ground(backend, demo_set, query, args.video, noise, model, args.asr)
    except (H.UserError, RecordingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result.summary(), indent=2) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    configure_torch_threads()  # process-wide, so only when run as a program (not from tests)
    sys.exit(main())
