"""Caption grammar for synthetic scenes: one natural sentence per event, with paraphrases.

A caption names its object with the fewest attributes that single it out among the objects on
screen (shape, colour, or both; size only when it never changes), its action with one of several
paraphrases, and, when the object does the same action more than once, the occurrence
("first", "again", "a third time"). Optional parts add speed ("quickly"), place ("near the left
side"), background ("on the grass") and narrative words ("then", "finally", "keeps ...ing").
Sentences have 6-16 words.

Each caption also records what a listener needs to pick its moment out of the video's events
(``needs``): "colour", "shape" or "colour_or_shape" when another object does the same action,
"action" when the same object does other things, "temporal" when it repeats the action.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from svg_core.synth.scene import PERIODIC_ACTIONS, EventSpec, ObjectSpec, SceneSpec

MIN_WORDS, MAX_WORDS = 6, 16

NOUNS = {
    "ball": ["ball", "ball", "sphere"],
    "box": ["box", "square", "cube", "block"],
    "triangle": ["triangle"],
    "star": ["star"],
    "ring": ["ring", "hoop", "donut"],
    "diamond": ["diamond", "rhombus"],
    "cross": ["cross", "plus sign"],
}
COLOUR_WORDS = {"red": ["red"], "green": ["green"], "blue": ["blue"], "yellow": ["yellow"],
                "purple": ["purple", "violet"], "orange": ["orange"], "pink": ["pink"]}
SIZE_WORDS = {"small": ["small", "little", "tiny"], "big": ["big", "large"]}

# (third-person phrases, -ing phrases); "{dir}" is replaced by a rotation direction
VERBS = {
    "bounce": (["bounces", "bounces up and down", "bounces lightly"], ["bouncing", "bouncing up and down"]),
    "jump": (["jumps", "jumps high", "leaps up", "makes big jumps"], ["jumping", "leaping up and down"]),
    "spin": (["spins {dir}", "rotates {dir}", "turns around {dir}"], ["spinning {dir}", "rotating {dir}"]),
    "shake": (["shakes", "wobbles", "shakes from side to side", "jiggles"], ["shaking", "wobbling", "jiggling"]),
    "circle": (["moves in a circle", "goes around in circles", "circles {dir}", "travels in a loop"],
               ["circling {dir}", "moving in circles", "going around in a loop"]),
    "blink": (["blinks", "flickers", "blinks on and off"], ["blinking", "flickering on and off"]),
    "flash": (["changes colour", "flashes different colours", "cycles through colours", "shifts its colour"],
              ["changing colour", "flashing different colours", "cycling through colours"]),
    "appear": (["appears", "fades in", "shows up", "comes into view"], ["appearing", "fading into view"]),
    "disappear": (["disappears", "fades away", "vanishes", "fades out"], ["disappearing", "fading away"]),
    "grow": (["grows", "gets bigger", "grows larger", "expands"], ["growing", "getting bigger"]),
    "shrink": (["shrinks", "gets smaller", "shrinks down"], ["shrinking", "getting smaller"]),
    "slide_left": (["slides to the left", "moves to the left", "glides left", "drifts left"],
                   ["sliding to the left", "moving left"]),
    "slide_right": (["slides to the right", "moves to the right", "glides right", "drifts right"],
                    ["sliding to the right", "moving right"]),
    "fall": (["falls down", "drops to the bottom", "sinks to the floor", "falls"], ["falling down", "dropping down"]),
    "rise": (["rises up", "floats up", "moves up toward the top", "lifts upward"], ["rising", "floating upward"]),
}
DIRECTIONS = {1: ["clockwise"], -1: ["counterclockwise", "anticlockwise"]}
FAST_WORDS = ["quickly", "fast", "rapidly"]
SLOW_WORDS = ["slowly", "gently", "lazily"]
STATE_FAST_WORDS = {"appear": ["suddenly", "quickly"], "disappear": ["suddenly", "quickly"]}
STATE_SLOW_WORDS = {"appear": ["slowly", "gradually"], "disappear": ["slowly", "gradually"]}
BACKGROUND_PHRASES = {
    "grey room": ["in the grey room", "inside the empty room"],
    "grass field": ["on the grass", "over the green field"],
    "night sky": ["in the night sky", "against the dark sky"],
    "sandy beach": ["on the beach", "above the sand"],
    "checkered floor": ["on the checkered floor", "over the tiles"],
    "blue sky": ["in the blue sky", "against the bright sky"],
}
OCCURRENCE = {1: ["for the first time", "first"], 2: ["again", "once more", "a second time"],
              3: ["a third time", "yet again"], 4: ["a fourth time"], 5: ["a fifth time"]}


@dataclass
class Caption:
    """A sentence and what it takes to ground it."""

    sentence: str
    needs: list[str]


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _place(x: float, y: float, rng: np.random.Generator) -> str:
    horiz = "left" if x < 0.36 else "right" if x > 0.64 else ""
    vert = "top" if y < 0.36 else "bottom" if y > 0.7 else ""
    if horiz and vert:
        return _pick(rng, [f"near the {vert} {horiz} corner", f"in the {vert} {horiz} corner"])
    if horiz:
        return _pick(rng, [f"near the {horiz} side", f"on the {horiz}", f"over on the {horiz}"])
    if vert:
        return _pick(rng, [f"near the {vert}", f"at the {vert} of the screen"])
    return _pick(rng, ["in the middle", "in the centre", "near the centre of the screen"])


def _object_phrase(scene: SceneSpec, idx: int, rng: np.random.Generator) -> str:
    """Noun phrase naming object idx: always its shape, its colour when another object shares the shape."""
    obj = scene.objects[idx]
    others = [o for i, o in enumerate(scene.objects) if i != idx]
    shape_unique = all(o.shape != obj.shape for o in others)
    use_colour = not shape_unique or rng.random() < 0.5
    size_changes = any(e.obj == idx and e.action in ("grow", "shrink") for e in scene.events)
    size_unique = all(o.size != obj.size for o in others)
    use_size = not size_changes and rng.random() < (0.4 if size_unique else 0.15)
    words = []
    if use_size:
        words.append(_pick(rng, SIZE_WORDS[obj.size]))
    if use_colour:
        words.append(_pick(rng, COLOUR_WORDS[obj.colour]))
    words.append(_pick(rng, NOUNS[obj.shape]))
    return " ".join(words)


def _position_at(scene: SceneSpec, ev: EventSpec) -> tuple[float, float]:
    obj: ObjectSpec = scene.objects[ev.obj]
    x, y = obj.x, obj.y
    for e in scene.events:
        if e.obj == ev.obj and e.end_sec <= ev.start_sec:
            if e.action in ("slide_left", "slide_right"):
                x += e.amount
            elif e.action in ("fall", "rise"):
                y += e.amount
    return x, y


def caption_event(scene: SceneSpec, k: int, rng: np.random.Generator) -> Caption:
    """Caption event ``k`` of ``scene`` (events sorted by start)."""
    ev = scene.events[k]
    dur = scene.duration_sec
    same_obj = [e for e in scene.events if e.obj == ev.obj]
    repeats = [e for e in same_obj if e.action == ev.action]
    occurrence = repeats.index(ev) + 1
    shared = [e for e in scene.events if e.obj != ev.obj and e.action == ev.action]

    subject = _object_phrase(scene, ev.obj, rng)
    needs = []
    obj = scene.objects[ev.obj]
    for other in (scene.objects[e.obj] for e in shared):
        # another object does the same action: what tells the two apart
        if other.shape == obj.shape:
            needs.append("colour")
        elif other.colour == obj.colour:
            needs.append("shape")
        else:
            needs.append("colour_or_shape")
    if any(e.action != ev.action for e in same_obj):
        needs.append("action")
    if len(repeats) > 1:
        needs.append("temporal")

    third, ing = VERBS[ev.action]
    verb3, verbing = _pick(rng, third), _pick(rng, ing)
    direction = _pick(rng, DIRECTIONS[ev.direction])
    verb3, verbing = verb3.replace("{dir}", direction), verbing.replace("{dir}", direction)
    if ev.action in STATE_FAST_WORDS:
        adverb = _pick(rng, STATE_FAST_WORDS[ev.action] if ev.fast else STATE_SLOW_WORDS[ev.action])
    else:
        adverb = _pick(rng, FAST_WORDS if ev.fast else SLOW_WORDS)
    use_adverb = rng.random() < 0.5

    optional = []
    if rng.random() < 0.45:
        optional.append(_place(*_position_at(scene, ev), rng))
    if rng.random() < 0.2:
        optional.append(_pick(rng, BACKGROUND_PHRASES[scene.background]))

    starts_at_zero = ev.start_sec == 0.0
    ends_at_end = abs(ev.end_sec - dur) < 0.011
    is_last = all(e.start_sec <= ev.start_sec for e in scene.events) and ev.start_sec > 0.4 * dur
    long_periodic = ev.action in PERIODIC_ACTIONS and (ev.end_sec - ev.start_sec) >= 0.3 * dur

    prefix, suffix = "", ""
    if len(repeats) > 1:
        occ = _pick(rng, OCCURRENCE[min(occurrence, 5)])
        if occurrence == len(repeats) and occurrence >= 3 and rng.random() < 0.5:
            occ = "one last time"
        if occ == "first":
            prefix = "first,"
        else:
            suffix = occ
    elif is_last and rng.random() < 0.6:
        prefix = _pick(rng, ["finally,", "in the end,", "at last,"])
    elif starts_at_zero and rng.random() < 0.5:
        prefix = _pick(rng, ["at the start,", "at the beginning,", "right from the start,"])
    elif k > 0 and rng.random() < 0.35:
        prefix = _pick(rng, ["then", "after that,", "next,", "later,"])

    the = "a" if (k == 0 and not prefix and rng.random() < 0.3) else "the"
    np_ = f"{the} {subject}"
    form = rng.random()
    if long_periodic and not suffix and rng.random() < 0.6:
        suffix = "until the end" if ends_at_end else _pick(rng, ["for a long time", "for a while"])
        core = f"{np_} keeps {verbing}"
    elif form < 0.45:
        core = f"{np_} {verb3}"
    elif form < 0.65:
        core = f"{np_} {_pick(rng, ['starts', 'begins'])} {verbing}"
    elif form < 0.8:
        core = f"{np_} is {verbing}"
    else:
        core = f"{_pick(rng, ['we see', 'you can see', 'we watch'])} {np_} {verbing}"
    adverb = adverb if use_adverb else ""
    sentence = _finish([p for p in [prefix, core, adverb, *optional, suffix] if p])
    # drop optional parts until the sentence is short enough, pad when too short
    while len(sentence.split()) > MAX_WORDS and optional:
        optional.pop()
        sentence = _finish([p for p in [prefix, core, adverb, *optional, suffix] if p])
    if len(sentence.split()) > MAX_WORDS:
        sentence = _finish([p for p in [core, suffix] if p])
    while len(sentence.split()) < MIN_WORDS:
        pad = _pick(rng, ["in the video", "on the screen", "in this clip"])
        sentence = sentence[:-1] + " " + pad + "."
    return Caption(sentence, sorted(set(needs)))


def _finish(parts: list[str]) -> str:
    text = " ".join(parts).strip()
    text = text.replace(", ,", ",")
    return text[0].upper() + text[1:] + "."


def caption_scene(scene: SceneSpec, rng: np.random.Generator) -> list[Caption]:
    """One caption per event, in event order."""
    return [caption_event(scene, k, rng) for k in range(len(scene.events))]
