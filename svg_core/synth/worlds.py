"""Versions of the synthetic world: which scene generator and which pixel extractor go together.

A dataset folder records its world in ``manifest.json`` (``world``, ``generator_version`` and
``extractor``), and everything that renders new features for it (``refeature``, a new scene in
the app) asks this module for the extractor of that name, so features never mix extractors.

| world | scene generator | extractor | what changed |
|---|---|---|---|
| 2 | 1 | ``synth-pixels-v2`` | global motion blocks; objects may share a colour |
| 3 | 2 | ``synth-pixels-v3`` | one slot per colour binds shape and motion to the object; colours unique per scene |
| 4 | 2 | ``synth-pixels-v4`` | v3's slots plus each slot's change over 2, 6 and 12 s (slow state actions) |
| 5 | 3 | ``synth-pixels-v4`` | world 4's moments and extractor; short events favour state actions |
| 6 | 3 | ``synth-pixels-v4`` | world 5, and every video from index 4,000 on is a training video |

World 5 keeps every video's moments (the generator draws them before the actions), so its blind
prior equals world 4's at the same ``--videos``. World 6 is world 5 with more training data: its
videos 0-3,999 are world 5's (same scenes, speech and splits), and the videos from index 4,000 on
all go to the training split, so ``--videos 6000`` keeps world 5's val and test splits (and blind
prior) and adds 2,000 training videos. Below 4,000 videos (the default build's 2,000) a world-6
build is world 5's. World 6 is the default, and the world of ``assets/demo_bundle``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from svg_core.errors import UserInputError
from svg_core.synth import extractor as extractor_v2
from svg_core.synth import extractor_v3, extractor_v4

# The extractor modules by the name their describe() records (a plain dict of the modules:
# nothing is imported or built from a string).
EXTRACTORS: dict[str, ModuleType] = {
    extractor_v2.EXTRACTOR_NAME: extractor_v2,
    extractor_v3.EXTRACTOR_NAME: extractor_v3,
    extractor_v4.EXTRACTOR_NAME: extractor_v4,
}


@dataclass(frozen=True)
class World:
    """One world version: ``version`` (2, 3), its scene ``generator_version`` and ``extractor`` name;
    ``train_only_from``: video indices from this one on are all training videos (None: every video
    draws its split)."""

    version: int
    generator_version: int
    extractor: str
    train_only_from: int | None = None


WORLDS = {2: World(2, 1, extractor_v2.EXTRACTOR_NAME), 3: World(3, 2, extractor_v3.EXTRACTOR_NAME),
          4: World(4, 2, extractor_v4.EXTRACTOR_NAME), 5: World(5, 3, extractor_v4.EXTRACTOR_NAME),
          6: World(6, 3, extractor_v4.EXTRACTOR_NAME, train_only_from=4000)}
DEFAULT_WORLD = 6  # the listen issue's world: its text model discriminates 90.82 % (docs/RESULTS.md)


def world(version: int) -> World:
    """The world of a version number; a clear error for an unknown one."""
    if version not in WORLDS:
        raise UserInputError(f"unknown synthetic world {version!r}; known: {sorted(WORLDS)}")
    return WORLDS[version]


def extractor_module(name: str) -> ModuleType:
    """The extractor module recorded under ``name`` in a manifest (``manifest["extractor"]["name"]``)."""
    if name not in EXTRACTORS:
        raise UserInputError(f"unknown feature extractor {name!r}; this version knows {sorted(EXTRACTORS)}. "
                             "Rebuild the folder with python -m svg_core.synth build or refeature it.")
    return EXTRACTORS[name]


def world_of_manifest(manifest: dict) -> World:
    """The world a dataset folder was built in (folders from before worlds were named: world 2)."""
    if "world" in manifest:
        return world(int(manifest["world"]))
    name = manifest.get("extractor", {}).get("name", extractor_v2.EXTRACTOR_NAME)
    for w in WORLDS.values():
        if w.extractor == name:
            return w
    raise UserInputError(f"the folder's extractor {name!r} belongs to no known world ({sorted(WORLDS)})")
