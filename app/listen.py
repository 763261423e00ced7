"""The "Does it listen?" panel: the user's query against a silent query of the same length.

A grounder that ignores its query still scores well on a benchmark with strong moment priors.
Here one query is checked on one video: the end-to-end model grounds the (noisy) query and a
silent query of the same length (:func:`svg_core.engine.listening.silent_query_prediction`);
when the words are known (typed sentence, or the video's own annotated query) the cascade's text
grounder also grounds them and the same words shuffled. How far the real query moves the
prediction (:func:`svg_core.engine.listening.query_effect`) is the answer. No gradio here.
"""

from __future__ import annotations

from dataclasses import dataclass

from app import handlers as H
from svg_core.engine.listening import query_effect, shuffled_words_prediction, silent_query_prediction


@dataclass
class TextControl:
    """The text grounder on the query's words and on the same words shuffled.

    Attributes:
        words, shuffled: the sentence and its shuffled version.
        words_pred, shuffled_pred: the text grounder's ``localize`` results.
        effect: :func:`svg_core.engine.listening.query_effect` of words against shuffled words.
        words_iou, shuffled_iou: IoU with the ground truth when known.
    """

    words: str
    shuffled: str
    words_pred: dict
    shuffled_pred: dict
    effect: dict
    words_iou: float | None
    shuffled_iou: float | None


@dataclass
class ListenResult:
    """Everything the panel shows.

    Attributes:
        grounding: the :class:`app.handlers.GroundingResult` of the real (noisy) query,
            end-to-end only (no cascade run).
        silent: the end-to-end model's ``localize`` result for the silent query.
        silent_iou: its IoU with the ground truth when known.
        effect: :func:`svg_core.engine.listening.query_effect` of the real query against the silent one.
        text: the text control, or None (no known words, or nothing to shuffle).
        text_note: why there is no text control ("" when there is one).
    """

    grounding: H.GroundingResult
    silent: dict
    silent_iou: float | None
    effect: dict
    text: TextControl | None
    text_note: str

    @property
    def duration_sec(self) -> float:
        return self.grounding.duration_sec

    @property
    def gt_sec(self) -> tuple[float, float] | None:
        return self.grounding.query.gt_sec

    def summary(self) -> dict:
        """JSON-able numbers (what the API returns)."""
        def seg(pred):
            return [round(float(pred["start_sec"]), 2), round(float(pred["end_sec"]), 2)]

        def rounded(effect):
            return {"iou": round(effect["iou"], 3), "shift_sec": round(effect["shift_sec"], 2),
                    "verdict": effect["verdict"]}

        g = self.grounding
        out = {
            "video_id": g.video_id, "model": g.model_name, "query_source": g.query.source,
            "query_sec": round(len(g.noisy_wave) / H.SAMPLE_RATE, 2),
            "ground_truth_sec": None if self.gt_sec is None else [round(x, 2) for x in self.gt_sec],
            "your_query_sec": seg(g.e2e), "your_query_iou": g.e2e_iou,
            "silent_query_sec": seg(self.silent), "silent_query_iou": self.silent_iou,
            "effect": rounded(self.effect), "text": None, "text_note": self.text_note,
            "fake": {"model": g.fake.get("model", False), "text_grounder": g.fake.get("text_grounder", False)},
        }
        if self.text is not None:
            t = self.text
            out["text"] = {"words": t.words, "shuffled": t.shuffled, "words_sec": seg(t.words_pred),
                           "shuffled_sec": seg(t.shuffled_pred), "words_iou": t.words_iou,
                           "shuffled_iou": t.shuffled_iou, "effect": rounded(t.effect)}
        return out


def listen(backend, demo, query: H.SpokenQuery, video_id: str, noise: H.NoiseSettings, model_name: str,
           asr_engine: str = "whisper", seed: int = 0) -> ListenResult:
    """Ground the query and its controls on one video.

    Args:
        backend, demo: :class:`app.resources.Backend` and :class:`app.resources.DemoSet`.
        query: from :func:`app.handlers.load_query`.
        video_id: the video.
        noise: applied to the real query (the silent one stays silent).
        model_name: the end-to-end model.
        asr_engine: only validated (the controls need no ASR).
        seed: seeds the word shuffle.

    Returns:
        A :class:`ListenResult`.
    """
    result = H.ground_end_to_end(backend, demo, query, video_id, noise, model_name, asr_engine)
    feats = demo.video_features(video_id)
    with backend.lock(f"model:{model_name}"):
        silent = silent_query_prediction(backend.grounder(model_name), feats, result.duration_sec,
                                         len(result.noisy_wave))
    text, note = None, ""
    if query.reference is None:
        note = "no known words (a recorded or uploaded query): no shuffled-words control"
    else:
        grounder = backend.text_grounder()
        with backend.lock("text_grounder"):
            shuffled = shuffled_words_prediction(grounder, feats, result.duration_sec, query.reference, seed)
            if shuffled is None:
                note = "fewer than two different words: nothing to shuffle"
            else:
                words_pred = grounder.localize(feats, result.duration_sec, text=query.reference)
        if shuffled is not None:
            text = TextControl(query.reference, shuffled[0], words_pred, shuffled[1],
                               query_effect(words_pred, shuffled[1]), H._iou(words_pred, query.gt_sec),
                               H._iou(shuffled[1], query.gt_sec))
    return ListenResult(result, silent, H._iou(silent, query.gt_sec), query_effect(result.e2e, silent), text, note)


def listen_markdown(res: ListenResult) -> str:
    """The panel's text: the one-line answer, then the numbers behind it."""
    g, e = res.grounding, res.effect
    fake = " **[FAKE model: not a model result]**" if g.fake.get("model") else ""
    lines = [f"**Your query moves the prediction by {e['shift_sec']:.1f} s / IoU between your-query and "
             f"silent-query predictions = {e['iou']:.2f}: the model {e['verdict']} to this query.**{fake}"]
    lines.append(f"End-to-end ({g.model_name}): your query {g.e2e['start_sec']:.1f}-{g.e2e['end_sec']:.1f} s, "
                 f"silent query of the same {len(g.noisy_wave) / H.SAMPLE_RATE:.1f} s "
                 f"{res.silent['start_sec']:.1f}-{res.silent['end_sec']:.1f} s.")
    if res.gt_sec is not None:
        lines.append(f"Against the ground truth {res.gt_sec[0]:.1f}-{res.gt_sec[1]:.1f} s: your query IoU "
                     f"{g.e2e_iou:.2f}, silent query IoU {res.silent_iou:.2f}.")
    else:
        lines.append("No ground truth for this query (recorded, typed, or a new scene).")
    if res.text is not None:
        t = res.text
        tfake = " [FAKE text grounder]" if g.fake.get("text_grounder") else ""
        gt = (f"; IoU with the ground truth {t.words_iou:.2f} against {t.shuffled_iou:.2f}"
              if t.words_iou is not None else "")
        lines.append(f"Text grounder{tfake} on the words \"{t.words}\" against the shuffled \"{t.shuffled}\": "
                     f"moves by {t.effect['shift_sec']:.1f} s, IoU {t.effect['iou']:.2f} "
                     f"(word order: it {t.effect['verdict']}){gt}.")
    else:
        lines.append(f"Text control: {res.text_note}.")
    return "\n\n".join(lines)

