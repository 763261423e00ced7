"""Linear probe of the video features: can a linear read-out tell which object does what, and when?

``python -m svg_core.synth probe`` renders scenes of a separate seed (never the benchmark's),
extracts the features of each extractor from the same frames, and fits a ridge read-out
(closed form, numpy: the benchmark has no sklearn or scipy) from a clip's features and its two
neighbours' to the events active at the clip's centre, on 70 % of the videos, scored on the rest:

- per-label ROC AUC, averaged over the labels with enough positives, for the label families
  ``action``, ``colour``, ``shape`` (an object of that colour / shape is in an event),
  ``colour+action``, ``shape+action`` and ``colour+shape+action``;
- per action, the colour+action AUC averaged over the colours (slow state actions vs periodic);
- binding swap: in test clips where two objects of different colours and different actions are
  both active (c1 does a1, c2 does a2), how often the read-out scores (c1, a1) + (c2, a2) above
  the swapped (c1, a2) + (c2, a1). A read-out that knows the actions and the colours present but
  not which does which scores 50 %.

All extractors are printed side by side in one run; the figures are synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from svg_core.synth.render import render_frames
from svg_core.synth.scene import ACTIONS, COLOURS, SHAPES, SceneSpec, sample_scene
from svg_core.synth.worlds import DEFAULT_WORLD, EXTRACTORS, extractor_module, world

PROBE_SEED = 9091  # scenes of their own: not the benchmark's seed 0
FAMILIES = ("action", "colour", "shape", "colour+action", "shape+action", "colour+shape+action")
MIN_POSITIVES = 5  # a label is scored when the test clips hold at least this many positives and negatives
RIDGE = 10.0  # ridge strength, per standardised feature


@dataclass
class ProbeScores:
    """Scores of one extractor: mean AUC (and number of labels scored) per family, binding swap."""

    extractor: str
    auc: dict[str, float]
    n_labels: dict[str, int]
    swap_accuracy: float
    n_swap_clips: int
    by_action: dict[str, float] = field(default_factory=dict)  # colour+action AUC per action (mean over colours)


def label_names() -> dict[str, list[tuple]]:
    """The labels of each family, in column order."""
    c, s, a = list(COLOURS), list(SHAPES), list(ACTIONS)
    return {
        "action": [(x,) for x in a],
        "colour": [(x,) for x in c],
        "shape": [(x,) for x in s],
        "colour+action": [(x, y) for x in c for y in a],
        "shape+action": [(x, y) for x in s for y in a],
        "colour+shape+action": [(x, y, z) for x in c for y in s for z in a],
    }


def clip_events(scene: SceneSpec, n_clips: int, clip_sec: float) -> list[list[tuple[str, str, str]]]:
    """(colour, shape, action) of the events active at each clip's centre time."""
    centres = (np.arange(n_clips) + 0.5) * clip_sec
    out: list[list[tuple[str, str, str]]] = [[] for _ in range(n_clips)]
    for ev in scene.events:
        obj = scene.objects[ev.obj]
        for i in np.nonzero((centres >= ev.start_sec) & (centres <= ev.end_sec))[0]:
            out[i].append((obj.colour, obj.shape, ev.action))
    return out


def targets(events: list[list[tuple[str, str, str]]]) -> dict[str, np.ndarray]:
    """Binary targets per family: float32 [n_clips, n_labels]."""
    names = label_names()
    index = {fam: {lab: j for j, lab in enumerate(labs)} for fam, labs in names.items()}
    out = {fam: np.zeros((len(events), len(labs)), np.float32) for fam, labs in names.items()}
    for i, evs in enumerate(events):
        for colour, shape, action in evs:
            keys = {"action": (action,), "colour": (colour,), "shape": (shape,), "colour+action": (colour, action),
                    "shape+action": (shape, action), "colour+shape+action": (colour, shape, action)}
            for fam, key in keys.items():
                out[fam][i, index[fam][key]] = 1.0
    return out


def with_neighbours(feats: np.ndarray) -> np.ndarray:
    """A clip's features next to its two neighbours' (edge clips repeat themselves): [T, D] -> [T, 3D]."""
    prev = np.concatenate([feats[:1], feats[:-1]])
    nxt = np.concatenate([feats[1:], feats[-1:]])
    return np.concatenate([prev, feats, nxt], axis=1)


def ridge_fit(x: np.ndarray, y: np.ndarray, strength: float = RIDGE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge regression on standardised inputs. x [n, d], y [n, k] -> (mean [d], std [d], weights [d + 1, k])."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = np.concatenate([(x - mean) / std, np.ones((len(x), 1))], axis=1)
    reg = strength * np.eye(z.shape[1])
    reg[-1, -1] = 0.0  # no penalty on the bias
    w = np.linalg.solve(z.T @ z + reg, z.T @ y)
    return mean, std, w


def ridge_predict(model: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    mean, std, w = model
    return np.concatenate([(x - mean) / std, np.ones((len(x), 1))], axis=1) @ w


def roc_auc(score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties counted half. Hand-written: one line of
    ranks, and sklearn is not a dependency."""
    pos, neg = score[label > 0.5], score[label <= 0.5]
    _, inverse, counts = np.unique(np.concatenate([pos, neg]), return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based ranks, ties averaged
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def swap_accuracy(scores: np.ndarray, events: list[list[tuple[str, str, str]]]) -> tuple[float, int]:
    """Binding-swap accuracy on the colour+action read-out ``scores`` [n_clips, 7 * n_actions]."""
    cols, acts = list(COLOURS), list(ACTIONS)
    idx = lambda c, a: cols.index(c) * len(acts) + acts.index(a)
    wins, n = 0.0, 0
    for i, evs in enumerate(events):
        for j in range(len(evs)):
            for k in range(j + 1, len(evs)):
                (c1, _, a1), (c2, _, a2) = evs[j], evs[k]
                if c1 == c2 or a1 == a2:
                    continue
                right = scores[i, idx(c1, a1)] + scores[i, idx(c2, a2)]
                swapped = scores[i, idx(c1, a2)] + scores[i, idx(c2, a1)]
                wins += 1.0 if right > swapped else 0.5 if right == swapped else 0.0
                n += 1
    return (wins / n if n else float("nan")), n


def score_extractor(name: str, feats: list[np.ndarray], events: list[list[list]], train_videos: np.ndarray) -> ProbeScores:
    """Fit the read-outs on the train videos' clips and score them on the others."""
    x = [with_neighbours(f) for f in feats]
    ys = [targets(e) for e in events]
    tr = [i for i in range(len(x)) if train_videos[i]]
    te = [i for i in range(len(x)) if not train_videos[i]]
    x_tr, x_te = np.concatenate([x[i] for i in tr]), np.concatenate([x[i] for i in te])
    auc, n_labels, swap, by_action = {}, {}, (float("nan"), 0), {}
    for fam in FAMILIES:
        y_tr = np.concatenate([ys[i][fam] for i in tr])
        y_te = np.concatenate([ys[i][fam] for i in te])
        pred = ridge_predict(ridge_fit(x_tr, y_tr), x_te)
        cols = [j for j in range(y_te.shape[1])
                if MIN_POSITIVES <= y_te[:, j].sum() <= len(y_te) - MIN_POSITIVES and y_tr[:, j].sum() >= MIN_POSITIVES]
        col_auc = {j: roc_auc(pred[:, j], y_te[:, j]) for j in cols}
        auc[fam] = float(np.mean(list(col_auc.values()))) if cols else float("nan")
        n_labels[fam] = len(cols)
        if fam == "colour+action":
            swap = swap_accuracy(pred, [e for i in te for e in events[i]])
            labs = label_names()[fam]
            per = {a: [v for j, v in col_auc.items() if labs[j][1] == a] for a in ACTIONS}
            by_action = {a: float(np.mean(v)) for a, v in per.items() if v}
    return ProbeScores(name, auc, n_labels, swap[0], swap[1], by_action)


def run_probe(n_videos: int = 120, seed: int = PROBE_SEED, world_version: int = DEFAULT_WORLD, fps: float = 8.0,
              frame_size: int = 128, max_sec: float = 90.0, extractors: tuple[str, ...] = tuple(EXTRACTORS),
              progress: bool = True) -> list[ProbeScores]:
    """Render ``n_videos`` scenes (first ``max_sec`` seconds each) and score every extractor on them."""
    if n_videos < 10:
        raise ValueError(f"the probe needs at least 10 videos (7 to fit, 3 to score), found {n_videos}")
    modules = [extractor_module(name) for name in extractors]
    gen = world(world_version).generator_version
    feats: dict[str, list[np.ndarray]] = {m.EXTRACTOR_NAME: [] for m in modules}
    events = []
    clip_frames = modules[0].CLIP_FRAMES
    for i in tqdm(range(n_videos), desc="probe scenes", disable=not progress):
        scene = sample_scene(np.random.default_rng([seed, i]), f"v_probe{i:04d}", "train", version=gen)
        n_frames = min(int(round(scene.duration_sec * fps)), int(max_sec * fps)) // clip_frames * clip_frames
        frames = render_frames(scene, frame_size, fps, 0, n_frames)
        for m in modules:
            feats[m.EXTRACTOR_NAME].append(m.video_features(frames))
        events.append(clip_events(scene, n_frames // clip_frames, clip_frames / fps))
    train_videos = np.random.default_rng([seed, 1]).random(n_videos) < 0.7
    return [score_extractor(name, f, events, train_videos) for name, f in feats.items()]


def format_probe(scores: list[ProbeScores]) -> str:
    """The probe's table: one column per extractor."""
    head = f"{'label family (mean ROC AUC)':30s}" + "".join(f"{s.extractor:>22s}" for s in scores)
    lines = [head]
    for fam in FAMILIES:
        lines.append(f"{fam:30s}" + "".join(f"{s.auc[fam]:>14.3f} ({s.n_labels[fam]:3d} lab)" for s in scores))
    lines.append(f"{'binding swap accuracy':30s}" + "".join(f"{100 * s.swap_accuracy:>13.1f} % ({s.n_swap_clips:4d})"
                                                            for s in scores))
    for a in ACTIONS:
        lines.append(f"{'  colour+action: ' + a:30s}" + "".join(
            f"{s.by_action[a]:>14.3f}          " if a in s.by_action else f"{'-':>14s}          " for s in scores))
    lines.append("chance: AUC 0.5, swap 50 %; synthetic scenes of a probe seed, not the benchmark's")
    return "\n".join(lines)
