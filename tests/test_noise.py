"""Noise: the mixing scheme, SNR accuracy, determinism, ESC-50 reader and synthetic kinds."""

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from svg_core.audio.frontend import SAMPLE_RATE
import svg_core.audio.noise as noise_mod
from svg_core.audio.noise import (ESC50, NOISE_PRESETS, SHIPPED_ESC10_DIR, NoiseConfig, draw_proportion, make_noise,
                                  mix_noise, noise_config_from_args, noise_kinds, resolve_esc50_dir)

SHARED_ESC50 = Path(__file__).resolve().parents[2] / "shared" / "data" / "esc50"
# The ESC-10 classes (rows with esc10 == True in ESC-50's meta/esc50.csv; CC BY 3.0).
ESC10_CLASSES = {"dog", "rooster", "rain", "sea_waves", "crackling_fire", "crying_baby", "sneezing", "clock_tick",
                 "helicopter", "chainsaw"}


def speech_like(sec=3.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(sec * SAMPLE_RATE)) / SAMPLE_RATE
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    return (0.2 * env * np.sin(2 * np.pi * 180 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def measured_snr_db(clean, mixed, span):
    a, b = (int(round(s * SAMPLE_RATE)) for s in span)
    noise = mixed[a:b] - clean[a:b]
    return 10 * np.log10(np.sum(clean[a:b] ** 2) / np.sum(noise ** 2))


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 20.0])
@pytest.mark.parametrize("kind", ["white", "pink", "brown"])
def test_snr_over_covered_span(kind, snr_db):
    speech = speech_like()
    rng = np.random.default_rng(3)
    noise = make_noise(kind, 5 * SAMPLE_RATE, rng)
    mixed, span = mix_noise(speech, noise, snr_db, 0.6, rng)
    assert span[1] - span[0] == pytest.approx(0.6 * 3.0, abs=1e-3)
    assert abs(measured_snr_db(speech, mixed, span) - snr_db) < 0.5
    a, b = (int(round(s * SAMPLE_RATE)) for s in span)
    assert np.array_equal(mixed[:a], speech[:a]) and np.array_equal(mixed[b:], speech[b:])  # outside untouched


def test_same_seed_same_mix_and_different_seed_differs():
    speech = speech_like()
    def run(seed):
        rng = np.random.default_rng(seed)
        return mix_noise(speech, make_noise("pink", 80_000, rng), 5.0, draw_proportion("normal", rng), rng)
    (m1, s1), (m2, s2), (m3, s3) = run(7), run(7), run(8)
    assert np.array_equal(m1, m2) and s1 == s2
    assert not np.array_equal(m1, m3)


def test_presets_and_clean():
    rng = np.random.default_rng(0)
    for preset, (low, high) in NOISE_PRESETS.items():
        draws = [draw_proportion(preset, rng) for _ in range(50)]
        assert all(low <= d <= high for d in draws)
    speech = speech_like(1.0)
    mixed, span = mix_noise(speech, make_noise("white", 100, rng), 0.0, 0.0, rng)
    assert span == (0.0, 0.0) and np.array_equal(mixed, speech)
    with pytest.raises(ValueError, match="unknown noise preset"):
        draw_proportion("huge", rng)


def test_bad_mix_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="proportion"):
        mix_noise(speech_like(1.0), np.ones(10), 0.0, 1.5, rng)
    with pytest.raises(ValueError, match="non-empty"):
        mix_noise(np.zeros(0, np.float32), np.ones(10), 0.0, 0.5, rng)
    with pytest.raises(ValueError, match="unknown noise kind"):
        make_noise("thunder", 100, rng)
    with pytest.raises(ValueError, match="needs an ESC-50 folder"):
        make_noise("esc50:dog", 100, rng)


def test_coloured_noise_spectral_slopes():
    rng = np.random.default_rng(0)
    slopes = {}
    for kind in ("white", "pink", "brown"):
        x = make_noise(kind, 2 ** 16, rng)
        power = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE)
        band = (freqs > 50) & (freqs < 4000)
        slopes[kind] = np.polyfit(np.log10(freqs[band]), np.log10(power[band] + 1e-20), 1)[0]
    assert abs(slopes["white"]) < 0.2 and abs(slopes["pink"] + 1) < 0.2 and abs(slopes["brown"] + 2) < 0.2


def make_esc50(root, ext=".wav", rate=44_100):
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    rng = np.random.default_rng(0)
    for target, category in [(0, "dog"), (12, "crackling_fire"), (44, "engine")]:
        name = f"1-{100 + target}-A-{target}.wav"
        sf.write(root / "audio" / name.replace(".wav", ext), (0.1 * rng.standard_normal(rate)).astype(np.float32), rate)
        rows.append(f"{name},1,{target},{category},False,{100 + target},A")
    rows.append("1-999-A-30.wav,1,30,door_wood_knock,False,999,A")  # listed but absent
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.parametrize("ext, rate", [(".wav", 44_100), (".flac", 16_000)])
def test_esc50_layout(tmp_path, ext, rate):
    esc = ESC50(make_esc50(tmp_path / "esc", ext, rate))
    assert len(esc.clips) == 3 and esc.missing == 1
    assert {c.group for c in esc.clips} == {"animals", "natural", "urban"}
    assert esc.select(group="urban")[0].category == "engine"
    assert esc.load(esc.select(category="dog")[0]).shape == (16_000,)  # resampled from 44.1 kHz
    rng = np.random.default_rng(0)
    assert make_noise("esc50:natural", 40_000, rng, esc50=esc).shape == (40_000,)  # tiled
    assert "esc50:dog" in noise_kinds(esc) and "esc50:animals" in noise_kinds(esc)
    with pytest.raises(ValueError, match="no ESC-50 clip"):
        esc.select(category="rain")
    with pytest.raises(FileNotFoundError, match="meta/esc50.csv"):
        ESC50(tmp_path)


@pytest.mark.skipif(not SHARED_ESC50.exists(), reason="needs ../shared/data/esc50 (this workplace's shared folder)")
def test_shared_esc50_subset():
    esc = ESC50(SHARED_ESC50)
    assert len(esc.clips) == 243 and len(esc.categories()) == 50
    assert {c.group for c in esc.clips} == {"animals", "natural", "human", "domestic", "urban"}
    speech = speech_like()
    cfg = NoiseConfig(preset="large", kinds=("esc50:urban",), snr_db_range=(5.0, 5.0), esc50_dir=str(SHARED_ESC50))
    mixed, span, snr_db = cfg.apply(speech, np.random.default_rng(0))
    assert 0.7 * 3.0 - 1e-3 <= span[1] - span[0] <= 0.9 * 3.0 + 1e-3
    assert abs(measured_snr_db(speech, mixed, span) - 5.0) < 0.5


def test_esc_noise_without_source_fails_with_its_message(monkeypatch):
    with pytest.raises(ValueError, match="ask for ESC-50 noise but no ESC-50 folder is configured"):
        NoiseConfig(preset="normal", kinds=("esc50",), esc50_dir=None)
    assert NoiseConfig(preset="clean", esc50_dir=None).provenance(0)["source"] == "synthetic"  # clean needs none
    monkeypatch.setattr(noise_mod, "SHIPPED_ESC10_DIR", Path("/nonexistent/esc10"))  # as if not shipped
    with pytest.raises(ValueError, match="no ESC-50 folder is configured"):
        noise_config_from_args("normal", None)


def test_synthetic_kinds_need_no_esc_source():
    cfg = NoiseConfig(preset="normal", kinds=("white", "pink"), esc50_dir=None)
    mixed, span, snr_db = cfg.apply(speech_like(), np.random.default_rng(1))
    assert span[1] > span[0] and 0.0 <= snr_db <= 10.0 and not np.array_equal(mixed, speech_like())
    info = cfg.provenance(seed=3)
    assert info["source"] == "synthetic" and info["dir"] is None and info["seed"] == 3


def test_shipped_esc10_is_the_default_and_mixes_at_the_requested_snr():
    cfg = noise_config_from_args("large", None)
    assert Path(cfg.esc50_dir) == SHIPPED_ESC10_DIR
    esc = cfg.esc50()
    assert len(esc.clips) == 30 and esc.missing == 0 and set(esc.categories()) == ESC10_CLASSES
    assert all(c.esc10 for c in esc.clips)
    speech = speech_like()
    for kind in ("esc50", "esc50:dog", "esc50:natural"):
        rng = np.random.default_rng(4)
        cfg = NoiseConfig(preset="large", kinds=(kind,), snr_db_range=(3.0, 3.0), esc50_dir=str(SHIPPED_ESC10_DIR))
        mixed, span, snr_db = cfg.apply(speech, rng)
        assert snr_db == 3.0 and 0.7 * 3.0 - 1e-3 <= span[1] - span[0] <= 0.9 * 3.0 + 1e-3
        assert abs(measured_snr_db(speech, mixed, span) - 3.0) < 0.5
    info = noise_config_from_args("normal", None).provenance(seed=0)
    assert info == {"source": "shipped-esc10", "dir": "assets/noise/esc10", "classes": 10,
                    "licence_tier": "CC-BY-3.0 (ESC-10)", "seed": 0, "preset": "normal", "kinds": ["esc50"]}
    assert noise_config_from_args("clean", None) is None
    with pytest.raises(ValueError, match="unknown noise preset"):
        noise_config_from_args("loud", None)


def test_explicit_folder_beats_shipped_subset(tmp_path):
    folder = make_esc50(tmp_path / "esc")
    cfg = noise_config_from_args("normal", str(folder))
    info = cfg.provenance(seed=1)
    assert cfg.esc50_dir == str(folder) and info["source"] == "esc50-folder" and info["dir"] == str(folder)
    assert info["licence_tier"] == "CC-BY-NC-3.0 (ESC-50)"  # its csv rows are not all esc10 == True
    assert resolve_esc50_dir(None) == str(SHIPPED_ESC10_DIR)


def test_no_shipped_clip_is_outside_esc10():
    with (SHIPPED_ESC10_DIR / "attribution.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 30 and sorted(r["filename"] for r in rows) == sorted(
        p.name for p in (SHIPPED_ESC10_DIR / "audio").iterdir())
    assert total_bytes(SHIPPED_ESC10_DIR) <= 5_000_000
    for row in rows:
        assert row["licence"] == "CC BY 3.0" and row["class"] in ESC10_CLASSES
        assert row["source_url"] == f"https://freesound.org/s/{row['freesound_id']}/" and row["freesound_author"]
    if (SHARED_ESC50 / "meta" / "esc50.csv").exists():  # check against the dataset's own metadata
        with (SHARED_ESC50 / "meta" / "esc50.csv").open(newline="") as handle:
            meta = {r["filename"]: r for r in csv.DictReader(handle)}
        for row in rows:
            assert meta[row["filename"]]["esc10"] == "True", row["filename"]
            assert meta[row["filename"]]["category"] == row["class"]
            assert meta[row["filename"]]["src_file"] == row["freesound_id"]


def total_bytes(folder):
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_babble_cache_is_keyed_by_every_argument(monkeypatch):
    from svg_core.audio import tts

    def fake_speak(text, voice):  # a tone per voice, so the bed depends on the talkers drawn
        t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
        return np.sin(2 * np.pi * (150 + 40 * voice) * t).astype(np.float32)

    monkeypatch.setattr(tts, "list_voices", lambda: [0, 1, 2])
    monkeypatch.setattr(tts, "speak", fake_speak)
    monkeypatch.setattr(noise_mod, "_BABBLE_BED", {})
    short = noise_mod.babble_bed(0, n_talkers=1, duration_sec=1.0)
    assert short.shape == (SAMPLE_RATE,)
    default = noise_mod.babble_bed()
    assert default.shape == (12 * SAMPLE_RATE,)
    assert noise_mod.babble_bed(0, n_talkers=2, duration_sec=1.0).shape == (SAMPLE_RATE,)
    assert not np.array_equal(noise_mod.babble_bed(0, n_talkers=2, duration_sec=1.0), short)
    assert noise_mod.babble_bed(0, n_talkers=1, duration_sec=1.0) is short  # still cached


def test_babble_is_overlapping_tts_speech():
    from svg_core.audio.noise import babble_bed

    bed = babble_bed(seed=0, n_talkers=3, duration_sec=4.0)
    assert bed.shape == (64_000,) and np.isfinite(bed).all()
    assert np.sqrt(np.mean(bed**2)) == pytest.approx(1.0, rel=1e-3)
    power = np.abs(np.fft.rfft(bed)) ** 2
    freqs = np.fft.rfftfreq(bed.size, 1 / SAMPLE_RATE)
    assert power[freqs < 4000].sum() / power.sum() > 0.8  # speech band, unlike white noise
    frames = bed[: bed.size // 400 * 400].reshape(-1, 400)
    active = np.mean(np.sqrt(np.mean(frames**2, axis=1)) > 0.1)
    assert active > 0.8  # several talkers overlap: few pauses
    mixed, span = mix_noise(speech_like(), make_noise("babble", 48_000, np.random.default_rng(0)), 0.0, 0.5,
                            np.random.default_rng(0))
    assert abs(measured_snr_db(speech_like(), mixed, span)) < 0.5


def test_train_and_evaluate_record_the_noise_source(tmp_path, capsys):
    import json

    from svg_core.engine import evaluation, training
    from tests.fixtures_build import make_tiny_dataset

    data_dir = make_tiny_dataset(tmp_path / "tiny", n_videos=4, queries_per_video=2, seed=0)
    out = tmp_path / "run"
    assert training.main(["--data", str(data_dir), "--model", "base", "--preset", "small", "--out", str(out),
                          "--epochs", "1", "--batch-size", "4", "--max-train-items", "4", "--noise", "normal",
                          "--no-progress"]) == 0
    expected = {"source": "shipped-esc10", "dir": "assets/noise/esc10", "classes": 10,
                "licence_tier": "CC-BY-3.0 (ESC-10)", "seed": 0, "preset": "normal", "kinds": ["esc50"]}
    assert json.loads((out / "best" / "metrics.json").read_text())["noise_source"] == expected
    assert json.loads((out / "summary.json").read_text())["noise_source"] == expected
    capsys.readouterr()
    assert evaluation.main(["--checkpoint", str(out / "best"), "--data", str(data_dir), "--split", "test",
                            "--noise", "normal", "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert "noise source: shipped-esc10 | assets/noise/esc10 | 10 classes | CC-BY-3.0 (ESC-10) | seed 5" in printed
    folder = make_esc50(tmp_path / "esc")
    assert evaluation.main(["--checkpoint", str(out / "best"), "--data", str(data_dir), "--split", "test",
                            "--noise", "large", "--esc50", str(folder)]) == 0
    assert f"noise source: esc50-folder | {folder} | 3 classes" in capsys.readouterr().out
