"""Cross-engine voice check: train on some TTS engines, test on an engine never heard in training.

    python -m svg_core.synth crossengine data/synth_default --heldout piper --out data/xe_piper
    python -m svg_core.train --data data/xe_piper --model base ...        # train/val: no piper voice
    python -m svg_core.evaluate --checkpoint RUN/best --data data/xe_piper --split test  # piper only

The synthetic benchmark's voice pools are speaker-disjoint across splits, but every split mixes
the three offline engines (piper, espeak-ng, flite), so a test voice always comes from an engine
the model has heard. This command writes a dataset folder whose train and val splits keep only
the queries spoken by the other engines, and whose test split holds only held-out-engine speech:
test queries already spoken by that engine are kept, the others are re-synthesised with one of
its voices (the test pool's voices of that engine; piper has one voice, ``piper:joe``, which the
filtered training split then never contains) with the query's own speed, pitch, level and
silences. ``--no-resynth`` keeps only the test queries the engine already spoke.

Output folder (everything else is a symlink into the source folder, or a copy with ``--copy``)::

    OUT/new_{train,val,test}_data.json   filtered / re-voiced 5-field items (same wav names)
    OUT/audio/<wav_name>                 symlinks; re-synthesised test wavs are real files
    OUT/sub_activitynet_v1-3.c3d.hdf5    symlink; OUT/videos -> the source's videos/ (if any)
    OUT/manifest.json                    the source manifest with counts, voices_used and a
                                         "crossengine" block (held-out engine, re-synthesised count)
    OUT/crossengine.json                 per wav: split, voice, engine, resynthesised

Needs the source's ``scenes.json`` (the voice of every wav, written by ``synth build``). Offline
TTS only (``svg_core.audio.tts``); nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from dataclasses import fields
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from svg_core.audio import tts
from svg_core.errors import MissingInputError, UserInputError
from svg_core.synth.speech import VOICE_SPLITS, UtterancePlan, synthesize

ENGINES = ("piper", "espeak", "flite")
FEATURE_FILES = ("sub_activitynet_v1-3.c3d.hdf5", "c3d_features.hdf5", "features.hdf5", "features")


def engine_of(voice: str) -> str:
    """"espeak:en-us+m3" -> "espeak"."""
    return tts.get_voice(voice).engine


def heldout_voices(engine: str) -> list[str]:
    """Voices that speak the re-synthesised test queries: the test pool's voices of ``engine``,
    else (piper, absent from the test pool) every voice of the engine in any pool."""
    if engine not in ENGINES:
        raise UserInputError(f"--heldout must be one of {ENGINES}, found {engine!r}")
    test = [v for v in VOICE_SPLITS["test"] if engine_of(v) == engine]
    return test or sorted({v for pool in VOICE_SPLITS.values() for v in pool if engine_of(v) == engine})


def _voice_table(src: Path) -> dict[str, dict]:
    """wav name -> its query record of scenes.json (text, voice, speed, pitch, gain, silences)."""
    path = src / "scenes.json"
    if not path.is_file():
        raise MissingInputError(f"{path} not found: crossengine needs the voice of every wav, which "
                                "python -m svg_core.synth build writes to scenes.json")
    return {q["wav_name"]: q for scene in json.loads(path.read_text()) for q in scene["queries"]}


def _link(target: Path, link: Path, copy: bool) -> None:
    if copy:
        (shutil.copytree if target.is_dir() else shutil.copy2)(target, link)
    else:
        os.symlink(target.resolve(), link)


def build_crossengine(src: str | Path, out: str | Path, heldout: str, resynth: bool = True, copy: bool = False,
                      seed: int = 0, overwrite: bool = False, progress: bool = True) -> dict:
    """Write the cross-engine folder (see module docstring).

    Args:
        src: a synthetic dataset folder with scenes.json.
        out: the folder to write (must be empty unless ``overwrite``).
        heldout: "piper", "espeak" or "flite": never heard in train/val, the only engine in test.
        resynth: re-synthesise the other test queries with a held-out-engine voice (else drop them).
        copy: copy wavs and features instead of symlinking them.
        seed: seeds the choice of held-out voice per re-synthesised query.
        overwrite: delete a non-empty ``out`` first.

    Returns:
        the ``crossengine`` block written to the manifest (counts per split, voices, engines).
    """
    src, out = Path(src), Path(out)
    voices = heldout_voices(heldout)
    table = _voice_table(src)
    if src.resolve() == out.resolve():
        raise UserInputError("--out must be a new folder, not the source folder")
    test_path = src / "new_test_data.json"
    if not test_path.is_file():
        raise MissingInputError(f"{test_path} not found: the cross-engine check needs a test split")
    if not resynth and not any(engine_of(table[it[4]]["voice"]) == heldout
                               for it in json.loads(test_path.read_text()) if len(it) > 4 and it[4] in table):
        raise UserInputError(f"no test query of {src} is spoken by {heldout}: drop --no-resynth to re-voice them")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UserInputError(f"{out} is not empty; pass --overwrite to replace it")
        shutil.rmtree(out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rng_base = zlib.crc32(heldout.encode())
    plan_fields = {f.name for f in fields(UtterancePlan)}
    per_wav: dict[str, dict] = {}
    counts: dict[str, dict] = {}
    for split in ("train", "val", "test"):
        path = src / f"new_{split}_data.json"
        if not path.is_file():
            continue
        items = json.loads(path.read_text())
        kept, dropped, respoken = [], 0, 0
        for index, item in enumerate(tqdm(items, desc=f"crossengine {split}", disable=not progress)):
            wav = item[4] if len(item) > 4 else None
            if wav not in table:
                raise UserInputError(f"{path} item {index}: wav {wav!r} has no voice in scenes.json")
            query = table[wav]
            engine = engine_of(query["voice"])
            if split != "test":
                if engine == heldout:
                    dropped += 1
                    continue
                _link(src / "audio" / wav, out / "audio" / wav, copy)
                per_wav[wav] = {"split": split, "voice": query["voice"], "engine": engine, "resynthesised": False}
            elif engine == heldout:
                _link(src / "audio" / wav, out / "audio" / wav, copy)
                per_wav[wav] = {"split": split, "voice": query["voice"], "engine": engine, "resynthesised": False}
            elif resynth:
                rng = np.random.default_rng([seed, rng_base, index])
                voice = voices[int(rng.integers(len(voices)))]
                plan = UtterancePlan(**{**{k: v for k, v in query.items() if k in plan_fields}, "voice": voice})
                sf.write(str(out / "audio" / wav), synthesize(plan), tts.SAMPLE_RATE, subtype="PCM_16")
                per_wav[wav] = {"split": split, "voice": voice, "engine": heldout, "resynthesised": True,
                                "original_voice": query["voice"]}
                respoken += 1
            else:
                dropped += 1
                continue
            kept.append(item)
        (out / path.name).write_text(json.dumps(kept) + "\n")
        counts[split] = {"videos": len({it[0] for it in kept}), "queries": len(kept), "dropped": dropped,
                         "resynthesised": respoken}
    for name in FEATURE_FILES:
        if (src / name).exists():
            _link(src / name, out / name, copy)
            break
    else:
        raise MissingInputError(f"{src}: no video features to link (expected sub_activitynet_v1-3.c3d.hdf5 or features/)")
    if (src / "videos").is_dir():
        _link(src / "videos", out / "videos", copy)
    block = {"heldout_engine": heldout, "train_engines": sorted({w["engine"] for w in per_wav.values()
                                                                  if w["split"] != "test"}),
             "test_voices": sorted({w["voice"] for w in per_wav.values() if w["split"] == "test"}),
             "resynth": resynth, "seed": seed, "source": str(src), "counts": counts}
    manifest_path = src / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"synthetic": True}
    manifest["counts"] = {s: {"videos": c["videos"], "queries": c["queries"]} for s, c in counts.items()}
    manifest["voices_used"] = {s: sorted({w["voice"] for w in per_wav.values() if w["split"] == s}) for s in counts}
    manifest["crossengine"] = block
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (out / "crossengine.json").write_text(json.dumps(per_wav, indent=1, sort_keys=True) + "\n")
    return block
