"""Throw bad inputs at the app's handlers, the library and the command lines; count the answers.

    python -m app.probe [--out probe.json] [--real]

Each case is one bad (or borderline) input, as a careless user or script would send it. Its
answer is classified:

- ``clear``: a user error with a message (``UserInputError`` in the library and the app, which
  the app shows as one ``gr.Error``; for a command line exit status 2 and one ``error:`` line,
  no traceback); a data folder or checkpoint left out *and listed* in the app's banner also
  counts here;
- ``processed``: the input was usable and the answer is valid (finite, start <= end, inside
  the video);
- ``other``: anything else (a traceback, another exception, a wrong exit status, an invalid
  answer). The command exits 1 when any case lands here.

Cases run on a tiny generated demo set and, with ``--real``, on the shipped checkpoints (the
model menu cases need them anyway). Nothing here is a test of speed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from app import handlers as H  # noqa: E402
from app.fake import write_tiny_demo_set  # noqa: E402
from app.resources import FAKE_MODEL, AppConfig, Backend, DemoSet  # noqa: E402
from svg_core.errors import UserInputError  # noqa: E402

SR = 16_000


def _tone(seconds: float, rate: int = SR, channels: int = 1, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (amp * np.sin(2 * np.pi * 200 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return np.repeat(wave[:, None], channels, axis=1) if channels > 1 else wave


def _valid_result(out, duration_sec: float) -> bool:
    """A grounding answer that is finite and inside the video."""
    e2e = getattr(out, "e2e", out)
    start, end = float(e2e["start_sec"]), float(e2e["end_sec"])
    return math.isfinite(start) and math.isfinite(end) and 0 <= start <= end <= duration_sec + 1e-6


def _cli(main: Callable[[list[str]], int], argv: list[str]) -> tuple[str, str]:
    """Run a command line in-process; classify its status and stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse: usage + "error:" line, status 2
            status = exit_.code
    text = err.getvalue()
    errors = [line for line in text.splitlines() if line.startswith("error:") or ": error:" in line]
    if status == 2 and errors and "Traceback" not in text:
        return "clear", errors[-1][:160]
    if status == 0 and "Traceback" not in text:
        return "processed", ""
    return "other", f"status {status}: {text.strip()[-300:]}"


class Probe:
    """Builds the fixtures once and runs the cases."""

    def __init__(self, work: Path, real: bool):
        self.work = work
        self.demo_dir = write_tiny_demo_set(work / "demo", n_videos=3, queries_per_video=2, with_mp4=False)
        self.demo = DemoSet(self.demo_dir)
        self.backend = Backend(AppConfig(data_dir=self.demo_dir, fake=not real))
        self.model = self.backend.model_names()[0] if real else FAKE_MODEL
        self.video = self.demo.video_ids[0]
        self.results: list[dict] = []

    def case(self, group: str, name: str, fn: Callable[[], object], check: Callable[[object], bool] | None = None):
        try:
            out = fn()
        except UserInputError as err:
            kind, detail = "clear", str(err)[:160]
        except Exception as err:  # noqa: BLE001 - the point is to catch what should not happen
            kind, detail = "other", f"{type(err).__name__}: {str(err)[:200]}"
        else:
            if isinstance(out, tuple) and len(out) == 2 and out[0] in ("clear", "processed", "other"):
                kind, detail = out
            elif check is None or check(out):
                kind, detail = "processed", ""
            else:
                kind, detail = "other", f"invalid answer: {str(out)[:200]}"
        self.results.append({"group": group, "case": name, "answer": kind, "detail": detail})

    # --- helpers ---------------------------------------------------------------------------
    def file(self, name: str, data: bytes | None = None, wave=None, rate=SR, subtype=None, fmt=None) -> Path:
        path = self.work / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data)
        else:
            sf.write(path, wave, rate, subtype=subtype, format=fmt)
        return path

    def ground_file(self, path) -> Callable[[], object]:
        def run():
            query = H.load_query(self.backend, self.demo, H.SOURCE_AUDIO, self.video, audio_path=path)
            return H.ground_end_to_end(self.backend, self.demo, query, self.video, H.NoiseSettings("none", 10, 0.6, 0),
                                       self.model, "whisper")
        return run

    def ground_with(self, source=H.SOURCE_OWN, video=None, text=None, query_id=None, noise=None, model=None):
        def run():
            vid = self.video if video is None else video
            qid = query_id if query_id is not None else (self.demo.queries(self.video)[0].query_id
                                                         if source == H.SOURCE_OWN else None)
            query = H.load_query(self.backend, self.demo, source, vid, typed_text=text, query_id=qid)
            settings = noise() if callable(noise) else (noise or H.NoiseSettings("none", 10, 0.6, 0))
            return H.ground_end_to_end(self.backend, self.demo, query, vid, settings, model or self.model, "whisper")
        return run

    def duration_ok(self, out) -> bool:
        return _valid_result(out, self.demo.duration_sec(self.video))

    # --- case groups -----------------------------------------------------------------------
    def audio_cases(self):
        long_wave = _tone(40)
        cases = {
            "empty file": self.file("empty.wav", b""),
            "garbage bytes": self.file("garbage.wav", b"\x00\x01garbage" * 50),
            "truncated wav header": self.file("trunc.wav", b"RIFF\x24\x00\x00\x00WAVEfmt "),
            "text named .wav": self.file("text.wav", b"hello, this is not audio\n" * 20),
            "garbage mp3": self.file("bad.mp3", b"ID3\x03\x00" + b"\xff" * 300),
            "garbage ogg": self.file("bad.ogg", b"OggS" + b"\x00" * 300),
            "silence": self.file("silence.wav", wave=np.zeros(SR * 2, np.float32)),
            "10 ms": self.file("short.wav", wave=_tone(0.01)),
            "40 s": self.file("long.wav", wave=long_wave),
            "float far beyond 1": self.file("loud.wav", wave=_tone(2, amp=80.0), subtype="FLOAT"),
            "NaN samples": self.file("nan.wav", wave=np.full(SR, np.nan, np.float32), subtype="FLOAT"),
            "inf samples": self.file("inf.wav", wave=np.full(SR, np.inf, np.float32), subtype="FLOAT"),
            "8 channels 96 kHz, 60 s": self.file("multi.flac", wave=np.zeros((96_000 * 60, 8), np.float32),
                                                 rate=96_000, fmt="FLAC"),
            "a folder": self.work,
            "missing file": self.work / "nope.wav",
            "no audio given": None,
            "unicode name": self.file("ärger ünïcödé.wav", wave=_tone(2)),
            "stereo 44.1 kHz": self.file("stereo.wav", wave=_tone(2, 44_100, 2), rate=44_100),
            "8 kHz": self.file("8k.wav", wave=_tone(2, 8000), rate=8000),
            "48 kHz flac": self.file("48k.flac", wave=_tone(2, 48_000), rate=48_000, fmt="FLAC"),
            "24-bit wav": self.file("24.wav", wave=_tone(2), subtype="PCM_24"),
            "clipped full scale": self.file("clip.wav", wave=np.sign(_tone(2)), subtype="PCM_16"),
        }
        for name, path in cases.items():
            self.case("upload", name, self.ground_file(path), self.duration_ok)

    def text_cases(self):
        for name, text in {"NUL": "a man\x00 jumps", "escape": "\x1b[31mred", "zero width": "red\u200bball",
                           "bell": "ball\x07", "only dots": "...", "only dash": "-", "emoji only": "\U0001f642\U0001f642",
                           "empty": "", "spaces": "   ", "5000 chars": "ball " * 1000, "digits": "123",
                           "hebrew": "\u05e9\u05dc\u05d5\u05dd", "plain": "the red ball bounces", "newline inside":
                           "red ball\nblue box", "None": None}.items():
            self.case("typed text", name, self.ground_with(H.SOURCE_TTS, text=text), self.duration_ok)

    def noise_cases(self):
        for name, args in {"NaN SNR": ("white", float("nan"), 0.6, 0), "inf SNR": ("white", float("inf"), 0.6, 0),
                           "SNR -1e9": ("white", -1e9, 0.6, 0), "SNR 1e9": ("pink", 1e9, 0.6, 0),
                           "proportion -0.1": ("white", 10, -0.1, 0), "proportion 1.5": ("white", 10, 1.5, 0),
                           "proportion NaN": ("white", 10, float("nan"), 0), "seed -1": ("white", 10, 0.6, -1),
                           "seed 2**64": ("white", 10, 0.6, 2**64), "seed 2**32-1": ("white", 10, 0.6, 2**32 - 1),
                           "unknown kind": ("thunder", 10, 0.6, 0), "unknown ESC class": ("esc50:unicorn", 10, 0.6, 0),
                           "SNR -10 babble": ("babble", -10, 1.0, 3), "proportion 0": ("brown", 5, 0.0, 0),
                           "string SNR": ("white", "loud", 0.6, 0)}.items():
            self.case("noise", name, self.ground_with(noise=lambda a=args: H.NoiseSettings(*a)), self.duration_ok)

    def id_cases(self):
        other_video_query = self.demo.queries(self.demo.video_ids[1])[0].query_id
        for name, kw in {"unknown video": {"video": "v_nope"}, "empty video id": {"video": ""},
                         "padded video id": {"video": " v_fake0 "}, "query of another video": {"query_id": other_video_query},
                         "unknown query": {"query_id": "zzz.wav"}, "unknown model": {"model": "resnet9000"},
                         "unknown source": {"source": "telepathy"}, "traversal video id": {"video": "../../etc"},
                         }.items():
            self.case("ids", name, self.ground_with(**kw), self.duration_ok)

    def library_cases(self):
        from svg_core.engine.predictor import Grounder

        grounder = self.backend.grounder(self.model)
        if not isinstance(grounder, Grounder):  # fake mode: the library cases need a real model
            from svg_core.models import BaseConfig, build_model

            cfg = BaseConfig.small(model_dim=32, davenet1_dims=(16, 32), davenet2_dims=(32, 32))
            grounder = Grounder(build_model(cfg).eval(), cfg)
        feats = np.random.default_rng(0).random((30, 500), dtype=np.float32)
        wave = _tone(2)
        nan_feats = feats.copy()
        nan_feats[4] = np.nan
        for name, kw in {"NaN feature row": dict(video_features=nan_feats), "300-d features": dict(video_features=feats[:, :300]),
                         "zero rows": dict(video_features=feats[:0]), "1-D features": dict(video_features=feats[0]),
                         "duration 0": dict(duration_sec=0.0), "duration NaN": dict(duration_sec=float("nan")),
                         "duration 1e9": dict(duration_sec=1e9), "duration -5": dict(duration_sec=-5.0),
                         "2-D audio": dict(audio=np.stack([wave, wave])), "empty audio": dict(audio=np.zeros(0, np.float32)),
                         "NaN audio": dict(audio=np.full(SR, np.nan, np.float32)), "no audio": dict(audio=None),
                         "good": {}}.items():
            args = {"video_features": feats, "duration_sec": 30.0, "audio": wave, **kw}
            self.case("library", name, lambda a=args: grounder.localize(**a),
                      lambda out, d=args["duration_sec"]: _valid_result(out, d))

    def folder_cases(self):
        import h5py

        def variant(name: str, edit: Callable[[Path], None]) -> Callable[[], object]:
            def run():
                folder = self.work / "folders" / name.replace(" ", "_")
                shutil.copytree(self.demo_dir, folder)
                edit(folder)
                demo = DemoSet(folder)
                # usable, and every left-out video or item listed for the banner
                return ("clear", "; ".join(demo.problem_lines())[:160]) if demo.problems else ("processed", "")
            return run

        def features(folder: Path, how: str):
            with h5py.File(folder / "sub_activitynet_v1-3.c3d.hdf5", "a") as h5:
                data = h5["v_fake1"]["c3d_features"][()]
                del h5["v_fake1"]["c3d_features"]
                data = {"nan": lambda d: np.where(np.arange(len(d))[:, None] == 2, np.nan, d),
                        "width": lambda d: d[:, :300], "empty": lambda d: d[:0],
                        "inf": lambda d: d * np.inf}[how](data)
                h5["v_fake1"].create_dataset("c3d_features", data=data)

        def annotations(folder: Path, edit: Callable[[list], object]):
            path = folder / "new_test_data.json"
            items = json.loads(path.read_text())
            result = edit(items)
            path.write_text(json.dumps(items if result is None else result))

        def set_item(index: int, field: int, value):
            return lambda items: items[index].__setitem__(field, value)

        edits = {
            "NaN features": lambda f: features(f, "nan"), "300-d features": lambda f: features(f, "width"),
            "zero-row features": lambda f: features(f, "empty"), "inf features": lambda f: features(f, "inf"),
            "corrupt HDF5": lambda f: (f / "sub_activitynet_v1-3.c3d.hdf5").write_bytes(b"\x89HDF broken"),
            "no features file": lambda f: (f / "sub_activitynet_v1-3.c3d.hdf5").unlink(),
            "reversed moment": lambda f: annotations(f, set_item(0, 2, [5.0, 1.0])),
            "negative start": lambda f: annotations(f, set_item(0, 2, [-3.0, 1.0])),
            "NaN duration": lambda f: annotations(f, set_item(0, 1, float("nan"))),
            "duration 1e9": lambda f: annotations(f, lambda items: [[v, 1e9 if v == "v_fake2" else d, *r]
                                                                   for v, d, *r in items]),
            "moment past the end": lambda f: annotations(f, set_item(0, 2, [1.0, 500.0])),
            "3-number moment": lambda f: annotations(f, set_item(0, 2, [1.0, 2.0, 3.0])),
            "wav name with ..": lambda f: annotations(f, set_item(0, 4, "../../etc/passwd")),
            "absolute wav name": lambda f: annotations(f, set_item(0, 4, "/etc/passwd")),
            "item of 2 fields": lambda f: annotations(f, lambda items: items + [["v_fake0", 3.0]]),
            "JSON object not list": lambda f: (f / "new_test_data.json").write_text('{"a": 1}'),
            "invalid UTF-8": lambda f: (f / "new_test_data.json").write_bytes(b'[["v_fake0", 1.0, [0, 1], "\xff"]]'),
            "deeply nested JSON": lambda f: (f / "new_test_data.json").write_text("[" * 5000 + "]" * 5000),
            "empty JSON list": lambda f: (f / "new_test_data.json").write_text("[]"),
            "missing wav": lambda f: next((f / "audio").glob("*.wav")).unlink(),
            "no annotations": lambda f: [p.unlink() for p in f.glob("*.json") if p.name != "manifest.json"],
        }
        for name, edit in edits.items():
            self.case("data folder", name, variant(name, edit))

    def checkpoint_cases(self):
        base = ROOT / "checkpoints" / "base"
        if not base.is_dir():
            return

        def variant(name: str, edit: Callable[[Path], None]) -> Callable[[], object]:
            def run():
                folder = self.work / "ckpts" / name.replace(" ", "_")
                shutil.copytree(base, folder / "broken")
                shutil.copytree(base, folder / "good")
                edit(folder / "broken")
                backend = Backend(AppConfig(data_dir=self.demo_dir, checkpoints_dir=folder))
                if "broken" in backend.model_names() or backend.model_names() != ["good"]:
                    return "other", f"menu offers {backend.model_names()}"
                if "broken" not in backend.checkpoint_problems:
                    return "other", "broken checkpoint not listed"
                return "clear", backend.checkpoint_problems["broken"][:160]
            return run

        def config_edit(change: dict):
            def edit(folder: Path):
                cfg = json.loads((folder / "config.json").read_text())
                (folder / "config.json").write_text(json.dumps({**cfg, **change}))
            return edit

        for name, edit in {
            "garbage weights": lambda f: (f / "model.safetensors").write_bytes(b"nope"),
            "truncated weights": lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:500]),
            "broken config JSON": lambda f: (f / "config.json").write_text("{"),
            "wrong model_dim": config_edit({"model_dim": 48}),
            "unknown family": config_edit({"family": "transformer9000"}),
            "unknown field": config_edit({"warp_drive": True}),
            "no weights": lambda f: (f / "model.safetensors").unlink(),
            "pickle only": lambda f: ((f / "model.safetensors").unlink(), (f / "model.pt").write_bytes(b"\x80\x04pickle")),
        }.items():
            self.case("checkpoint", name, variant(name, edit))

    def cli_cases(self):
        from app.cli import main as app_cli
        from svg_core.data.__main__ import main as data_cli
        from svg_core.engine.evaluation import main as evaluate_cli
        from svg_core.engine.training import main as train_cli

        good = {"duration_sec": 10.0, "gt_window_sec": [1.0, 4.0], "pred_windows_sec": [[1.0, 3.0, 0.5]]}

        def pred_file(name: str, lines: list[str]) -> str:
            path = self.work / "pred" / f"{name}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n")
            return str(path)

        preds = {
            "malformed line": ["{not json"], "incomplete record": [json.dumps({"duration_sec": 10.0})],
            "NaN gt": [json.dumps({**good, "gt_window_sec": [float("nan"), 2.0]})],
            "reversed gt": [json.dumps({**good, "gt_window_sec": [4.0, 1.0]})],
            "negative gt": [json.dumps({**good, "gt_window_sec": [-1.0, 1.0]})],
            "3-number gt": [json.dumps({**good, "gt_window_sec": [1.0, 2.0, 3.0]})],
            "pred past duration": [json.dumps({**good, "pred_windows_sec": [[1.0, 90.0, 0.1]]})],
            "empty file": [""], "good record": [json.dumps(good)],
        }
        for name, lines in preds.items():
            path = pred_file(name.replace(" ", "_"), lines)
            self.case("cli evaluate", name, lambda p=path: _cli(evaluate_cli, ["--pred", p]))
        nested = self.work / "nested.json"
        nested.write_text("[" * 5000 + "]" * 5000)
        bad_utf8 = self.file("bad.json", b'[["v", 1.0, [0, 1], "\xff"]]')
        for name, argv in {"inspect a folder": ["inspect", str(self.work)], "inspect nested JSON": ["inspect", str(nested)],
                           "inspect invalid UTF-8": ["inspect", str(bad_utf8)],
                           "inspect missing": ["inspect", str(self.work / "none.json")],
                           "cache of a missing folder": ["cache", str(self.work / "none")]}.items():
            self.case("cli data", name, lambda a=argv: _cli(data_cli, a))
        wav = self.file("cli_ok.wav", wave=_tone(2))
        base = ["--data", str(self.demo_dir), "--video", self.video]
        for name, argv in {"--snr-db nan": [*base, "--wav", str(wav), "--snr-db", "nan", "--noise", "white"],
                           "--seed -1": [*base, "--wav", str(wav), "--seed", "-1", "--noise", "white"],
                           "--proportion 3": [*base, "--wav", str(wav), "--proportion", "3", "--noise", "white"],
                           "missing wav": [*base, "--wav", str(self.work / "no.wav")],
                           "unknown video": ["--data", str(self.demo_dir), "--video", "v_x", "--wav", str(wav)],
                           "unknown model": [*base, "--wav", str(wav), "--model", "nope"],
                           "missing data folder": ["--data", str(self.work / "none"), "--list"],
                           "silent wav": [*base, "--wav", str(self.file("cli_silent.wav", wave=np.zeros(SR, np.float32)))],
                           "unknown noise": [*base, "--wav", str(wav), "--noise", "thunder"]}.items():
            self.case("cli app", name, lambda a=argv: _cli(app_cli, a + (["--fake"] if self.model == FAKE_MODEL else [])))
        out = str(self.work / "run")
        splits = self.work / "with_splits"  # the demo folder has only a test split: give it train and val
        shutil.copytree(self.demo_dir, splits)
        for split in ("train", "val"):
            shutil.copy(splits / "new_test_data.json", splits / f"new_{split}_data.json")
        data = ["--data", str(splits), "--out", out, "--epochs", "1", "--no-progress"]
        for name, argv in {"missing data": ["--data", str(self.work / "none"), "--model", "base", "--out", out],
                           "bad --set": [*data, "--model", "base", "--set", "head_rnn=xyz"],
                           "unknown --set field": [*data, "--model", "base", "--set", "warp=1"],
                           "--patience 0": [*data, "--model", "base", "--patience", "0"],
                           "--batch-size 0": [*data, "--model", "text", "--batch-size", "0"],
                           "unknown model": [*data, "--model", "gpt"]}.items():
            self.case("cli train", name, lambda a=argv: _cli(train_cli, a))

    def run_all(self) -> list[dict]:
        for group in (self.audio_cases, self.text_cases, self.noise_cases, self.id_cases, self.library_cases,
                      self.folder_cases, self.checkpoint_cases, self.cli_cases):
            group()
        return self.results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.probe", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write every case and its answer as JSON")
    parser.add_argument("--real", action="store_true", help="run the app cases on the shipped checkpoints")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="svg_probe_") as tmp:
        results = Probe(Path(tmp), args.real).run_all()
    counts = Counter(r["answer"] for r in results)
    by_group: dict[str, Counter] = {}
    for r in results:
        by_group.setdefault(r["group"], Counter())[r["answer"]] += 1
    print(f"{'group':<14} {'clear':>6} {'processed':>10} {'other':>6}")
    for group, c in by_group.items():
        print(f"{group:<14} {c['clear']:>6} {c['processed']:>10} {c['other']:>6}")
    print(f"{'all ' + str(len(results)):<14} {counts['clear']:>6} {counts['processed']:>10} {counts['other']:>6}")
    for r in results:
        if r["answer"] == "other":
            print(f"OTHER [{r['group']}] {r['case']}: {r['detail']}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 1 if counts["other"] else 0


if __name__ == "__main__":
    sys.exit(main())
