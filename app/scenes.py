"""New scenes on demand: a synthetic video that no model has seen, rendered while the user waits.

:class:`SceneStore` renders a scene with :func:`svg_core.synth.new_scene.render_new_scene`, in
the demo set's own format (its ``manifest.json``: world, feature extractor, fps, frame size, so
the scene and its features are of the kind the checkpoints were trained on), keeps the mp4 in the app's temp folder and
adds the video to the :class:`app.resources.DemoSet`, where every handler finds it. New scenes
have no annotated query: typed or recorded queries only, and no ground truth. No gradio here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from app.handlers import UserError
from svg_core.errors import UserInputError
from svg_core.synth.new_scene import (
    MAX_NEW_SCENE_SEED,
    NewScene,
    SceneFormat,
    check_seed,
    new_scene_id,
    render_new_scene,
    scene_format_of,
)
from svg_core.synth.worlds import DEFAULT_WORLD, world

MAX_SCENES = 32  # kept per server (a scene: ~0.2 MB of features, ~0.1 MB of mp4); the oldest go first


class SceneStore:
    """Renders new scenes for one demo set and keeps the last :data:`MAX_SCENES`.

    Args:
        demo: the :class:`app.resources.DemoSet` the scenes join.
        folder: where the mp4s go (one subfolder per extractor, fps and frame size).
        allow_default_extractor: render in the default world (``worlds.DEFAULT_WORLD``) when
            the demo set's manifest names no extractor (fake mode: the fake model reads no features).

    Attributes:
        format: the :class:`svg_core.synth.new_scene.SceneFormat` of the demo set, or None.
        problem: why no scene can be rendered ("" when they can).
    """

    def __init__(self, demo, folder: Path, allow_default_extractor: bool = False):
        self.demo = demo
        self.problem = ""
        self.format: SceneFormat | None = None
        manifest = demo.layout.manifest
        if allow_default_extractor and not (manifest.get("extractor") or {}).get("name"):
            self.format = SceneFormat(DEFAULT_WORLD, world(DEFAULT_WORLD).extractor, 8.0, 128)
        else:
            try:
                self.format = scene_format_of(manifest)
            except UserInputError as err:
                self.problem = f"{demo.root.name}: {err}"
        fmt = self.format
        self.folder = Path(folder) / (f"world{fmt.world}-{fmt.extractor_name}-{fmt.fps:g}fps-{fmt.frame_size}px"
                                      if fmt is not None else "none")
        self._scenes: OrderedDict[str, NewScene] = OrderedDict()
        self._lock = threading.Lock()

    def render(self, seed, progress: Callable[[float, str], None] | None = None) -> NewScene:
        """The new scene of ``seed``, rendered now or kept from an earlier call, added to the demo set.

        Raises:
            UserError: a seed outside 0 .. 999999 (or not whole), or a demo set whose features
                a new scene cannot match.
        """
        try:
            seed = check_seed(seed)
        except UserInputError as err:
            raise UserError(f"{err}.") from None
        if self.problem:
            raise UserError(f"New scenes are not available: {self.problem}.")
        video_id = new_scene_id(seed)
        with self._lock:
            if video_id in self._scenes:
                self._scenes.move_to_end(video_id)
                return self._scenes[video_id]
        try:
            fmt = self.format
            scene = render_new_scene(seed, self.folder, fps=fmt.fps, frame_size=fmt.frame_size,
                                     extractor_name=fmt.extractor_name, world_version=fmt.world, progress=progress)
        except UserInputError as err:  # a frame size or fps the renderer refuses
            raise UserError(str(err)) from None
        with self._lock:
            self._scenes[video_id] = scene
            self.demo.added[video_id] = scene
            while len(self._scenes) > MAX_SCENES:
                old_id, old = self._scenes.popitem(last=False)
                self.demo.added.pop(old_id, None)
                old.mp4_path.unlink(missing_ok=True)
        return scene

    def describe(self, scene: NewScene) -> str:
        """One paragraph about a rendered scene, for the panel."""
        return (f"**New scene `{scene.video_id}`** (seed {scene.seed}): {scene.duration_sec:.1f} s, "
                f"{len(scene.captions)} events, world {scene.world}, rendered with {scene.extractor_name} features "
                f"({scene.features.shape[0]} x {scene.features.shape[1]}) in {scene.render_sec:.1f} s. "
                "No model has seen it; it has no spoken query and no ground truth: type or record a query "
                "(its own captions are offered as examples) and press \"Ground the query\".")


SEED_HELP = f"a whole number from 0 to {MAX_NEW_SCENE_SEED}; the same seed gives the same scene"
