"""Fake grounder and fake ASR: run and test the UI with no checkpoint and no ASR model.

They follow the real interfaces (``svg_core.predictor.Grounder.localize`` and
``svg_core.asr.ASREngine``) but compute nothing meaningful: predictions are a deterministic
function of the input (a hash of the waveform or text), so that tests are reproducible and a
change of noise moves the prediction. The UI labels every run on them as FAKE
(``is_fake = True``).
"""

from __future__ import annotations

import time
import zlib

import numpy as np

from svg_core.asr.engines import Transcript
from svg_core.audio.frontend import SAMPLE_RATE, n_frames

N_VIDEO_FRAMES = 64


def _seed_of(audio: np.ndarray | None, text: str | None) -> int:
    """A stable 32-bit seed from the query (rounded samples, or the lower-cased text)."""
    if audio is not None:
        quantised = np.round(np.asarray(audio, dtype=np.float32) * 1000).astype(np.int16)
        return zlib.crc32(quantised.tobytes())
    return zlib.crc32((text or "").lower().encode())


def _bump(n: int, centre: float, width: float) -> np.ndarray:
    """A normalised Gaussian bump over n grid cells."""
    grid = np.arange(n, dtype=np.float64)
    curve = np.exp(-0.5 * ((grid - centre) / max(width, 1e-3)) ** 2)
    return (curve / curve.sum()).astype(np.float32)


class FakeGrounder:
    """Stand-in for ``svg_core.predictor.Grounder`` (same ``localize`` output keys).

    Args:
        name: shown in the UI.
        n_video_frames: N_v, the video grid size.
    """

    is_fake = True
    device = "cpu"

    def __init__(self, name: str = "fake", n_video_frames: int = N_VIDEO_FRAMES):
        self.name = name
        self.n_video_frames = n_video_frames

    def localize(
        self,
        video_features: np.ndarray,
        duration_sec: float,
        audio: np.ndarray | None = None,
        text: str | None = None,
    ) -> dict:
        """Predict a moment from a hash of the query.

        Args:
            video_features: float32 [T, 500] (only validated).
            duration_sec: video duration in seconds.
            audio: float32 [n] at 16 kHz, or None when ``text`` is given.
            text: a sentence, or None when ``audio`` is given.

        Returns:
            dict with ``start_sec``, ``end_sec``, ``score``, ``top5_sec`` [(s, e, score)],
            ``start_prob``, ``end_prob``, ``inside_prob`` [N_v], ``attention`` [N_v, T_a]
            (T_a = log-Mel frames for audio, words for text), ``latency_sec``, ``device``.
        """
        begin = time.perf_counter()
        feats = np.asarray(video_features)
        if feats.ndim != 2 or feats.shape[0] == 0:
            raise ValueError(f"video_features must be [T, dim] with T > 0, found {feats.shape}")
        if duration_sec <= 0:
            raise ValueError(f"duration_sec must be positive, found {duration_sec}")
        if (audio is None) == (text is None):
            raise ValueError("give exactly one of audio= or text=")
        rng = np.random.default_rng(_seed_of(audio, text))
        n = self.n_video_frames
        start_idx = int(rng.integers(0, n - 4))
        end_idx = int(min(n - 1, start_idx + rng.integers(3, n // 2)))
        start_prob, end_prob = _bump(n, start_idx, 2.0), _bump(n, end_idx, 2.0)
        inside = np.zeros(n, dtype=np.float32)
        inside[start_idx: end_idx + 1] = 0.9
        inside = np.clip(inside + 0.05 * rng.random(n), 0, 1).astype(np.float32)
        if audio is not None:
            t_a = n_frames(len(audio))
        else:
            t_a = max(1, len(text.split()))
        logits = rng.standard_normal((n, t_a)).astype(np.float32)
        logits[start_idx: end_idx + 1] += 1.5  # the attended rows line up with the prediction
        attention = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        sec_per_cell = duration_sec / n
        start_sec, end_sec = start_idx * sec_per_cell, (end_idx + 1) * sec_per_cell
        score = float(start_prob[start_idx] * end_prob[end_idx])
        top5 = [(start_sec, end_sec, score)]
        for k in range(4):
            s = int(rng.integers(0, n - 2))
            e = int(min(n, s + rng.integers(2, n // 2)))
            top5.append((s * sec_per_cell, e * sec_per_cell, score * 0.5 ** (k + 1)))
        return {
            "start_sec": start_sec,
            "end_sec": end_sec,
            "score": score,
            "top5_sec": top5,
            "start_prob": start_prob,
            "end_prob": end_prob,
            "inside_prob": inside,
            "attention": attention,
            "latency_sec": time.perf_counter() - begin,
            "device": self.device,
        }


class FakeASR:
    """Stand-in for an ``svg_core.asr`` engine: returns a fixed sentence for any speech.

    Args:
        name: engine name shown in the UI ("whisper" or "sphinx").
    """

    is_fake = True
    device = "cpu"
    TEXT = "a person is talking about the video"

    def __init__(self, name: str = "whisper"):
        self.name = name

    def transcribe(self, waveform: np.ndarray, sample_rate: int) -> Transcript:
        """Return :attr:`TEXT` for non-silent input, "" for silence (like the real engines)."""
        begin = time.perf_counter()
        wave = np.asarray(waveform, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"expected a mono waveform of shape [n], found {wave.shape}")
        text = self.TEXT if wave.size and float(np.max(np.abs(wave))) > 1e-4 else ""
        return Transcript(text=text, seconds=time.perf_counter() - begin, engine=self.name)


def fake_speak(text: str, voice: str = "piper:joe") -> np.ndarray:
    """A tone burst per word, float32 [n] at 16 kHz: stands in for ``svg_core.tts.speak``."""
    words = text.split() or ["_"]
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    pieces = []
    for _ in words:
        freq_hz = float(rng.uniform(150, 400))
        t = np.arange(int(0.25 * SAMPLE_RATE)) / SAMPLE_RATE
        pieces.append(0.3 * np.sin(2 * np.pi * freq_hz * t) * np.hanning(t.size))
        pieces.append(np.zeros(int(0.05 * SAMPLE_RATE)))
    return np.concatenate(pieces).astype(np.float32)


def write_tiny_demo_set(out_dir, n_videos: int = 3, queries_per_video: int = 2, with_mp4: bool = True,
                        seed: int = 0):
    """Write a tiny dataset in the ActivityNet Speech layout (for tests and UI trials).

    Features are random, the "speech" is tone bursts from :func:`fake_speak`, and the mp4s are
    ffmpeg test patterns; ``manifest.json`` marks the folder synthetic.

    Args:
        out_dir: folder to create.
        n_videos: number of videos (``v_fake0``, ``v_fake1``...), 8-20 s long.
        queries_per_video: annotated spoken queries per video.
        with_mp4: also write ``videos/<id>.mp4`` (needs imageio-ffmpeg).
        seed: seeds durations, moments and features.

    Returns:
        The folder, as a Path.
    """
    import json
    import subprocess
    from pathlib import Path

    import h5py
    import soundfile as sf

    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    words = ["red", "ball", "bounces", "blue", "box", "spins", "then", "slides", "left", "again"]
    items = []
    with h5py.File(out / "sub_activitynet_v1-3.c3d.hdf5", "w") as h5:
        for v in range(n_videos):
            video_id = f"v_fake{v}"
            duration = float(rng.integers(8, 21))
            n_feat = int(duration * 2)
            h5.create_group(video_id).create_dataset("c3d_features", data=rng.random((n_feat, 500), dtype=np.float32))
            for q in range(queries_per_video):
                start = float(np.round(rng.uniform(0, duration * 0.6), 2))
                end = float(np.round(rng.uniform(start + 1, duration), 2))
                sentence = " ".join(rng.choice(words, size=5))
                wav_name = f"{video_id[2:]}_test_{q}.wav"
                sf.write(out / "audio" / wav_name, fake_speak(sentence), SAMPLE_RATE)
                items.append([video_id, duration, [start, end], sentence, wav_name])
            if with_mp4:
                import imageio_ffmpeg

                (out / "videos").mkdir(exist_ok=True)
                subprocess.run(
                    [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                     f"testsrc=duration={duration:g}:size=160x120:rate=4", "-pix_fmt", "yuv420p",
                     "-c:v", "libx264", "-movflags", "+faststart", str(out / "videos" / f"{video_id}.mp4")],
                    check=True, capture_output=True,
                )
    (out / "new_test_data.json").write_text(json.dumps(items, indent=1))
    (out / "manifest.json").write_text(json.dumps({"synthetic": True, "note": "tiny fake set for tests"}))
    return out


class FakeCascade:
    """Stand-in for :class:`svg_core.cascade.Cascade`: fake ASR, then the fake grounder on the text.

    Args:
        engine: the ASR engine name ("whisper" or "sphinx").
    """

    is_fake = True

    def __init__(self, engine: str = "whisper"):
        self.engine = FakeASR(engine)
        self.grounder = FakeGrounder("fake text grounder")

    def run(self, video_features: np.ndarray, duration_sec: float, waveform: np.ndarray, sample_rate: int,
            reference: str | None = None) -> dict:
        """Same keys as ``Cascade.run``; an empty transcript is "no query understood"."""
        from svg_core.asr.cascade import NO_QUERY, word_error_rate

        begin = time.perf_counter()
        transcript = self.engine.transcribe(waveform, sample_rate)
        grounding_begin = time.perf_counter()
        understood = bool(transcript.text.strip())
        grounding = self.grounder.localize(video_features, duration_sec, text=transcript.text) if understood else None
        end = time.perf_counter()
        return {
            "engine": transcript.engine, "transcript": transcript.text, "known_words": transcript.text.split(),
            "understood": understood, "message": "" if understood else f"{NO_QUERY}: an empty transcript",
            "grounding": grounding, "reference": reference,
            "wer": word_error_rate([reference], [transcript.text]) if reference is not None else None,
            "latency_sec": {"asr": transcript.seconds, "grounding": end - grounding_begin, "total": end - begin},
        }


class FakeSearcher:
    """Stand-in for the AVLnet index (``app.search.Searcher``): a video's score is a hash of the
    query and the video id, so results are stable for a query and need no weights.

    Args:
        video_ids: the videos to rank; durations: id -> seconds (for the best window).
    """

    is_fake = True

    def __init__(self, video_ids: list[str], durations: dict[str, float]):
        self.video_ids = list(video_ids)
        self.durations = durations

    def search(self, wave: np.ndarray, top: int = 10) -> list[dict]:
        """Ranked ``[{"video_id", "score", "start_sec", "end_sec"}]``, best first."""
        seed = _seed_of(wave, None)
        rows = []
        for vid in self.video_ids:
            rng = np.random.default_rng([seed, zlib.crc32(vid.encode())])
            start_frac = float(rng.uniform(0.0, 0.7))
            duration = self.durations[vid]
            rows.append({"video_id": vid, "score": float(rng.uniform(-1.0, 1.0)), "start_sec": start_frac * duration,
                         "end_sec": (start_frac + 0.3) * duration})
        return sorted(rows, key=lambda r: -r["score"])[:top]
