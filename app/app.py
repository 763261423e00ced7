"""Spoken video grounding demo: speak (or type, or pick) a query, add noise, pick a video, and
compare the end-to-end model with the ASR -> text cascade.

Run:  python app/app.py [--data DIR] [--esc50 DIR] [--port 7860] [--fake]
(also ``python -m app.app``; flags and environment variables: docs/APP.md).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry, no version look-up

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script (Spaces: app_file = app/app.py)
    sys.path[0] = str(ROOT)  # so that `app` is the package, not this file

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from app import handlers as H  # noqa: E402
from app import listen as L  # noqa: E402
from app import plots  # noqa: E402
from app.resources import AppConfig, Backend, DemoSet, configure_torch_threads  # noqa: E402
from app.scenes import SEED_HELP, SceneStore  # noqa: E402
from app.search import build_search_tab  # noqa: E402
from svg_core.errors import UserInputError  # noqa: E402

MAX_FILE_SIZE = "10mb"  # 30 s of 48 kHz stereo 16-bit wav is 5.8 MB
CONCURRENCY_LIMIT = 2  # this CPU has 2 cores; more parallel requests only queue inside torch
SEEK_JS = """(t) => {
  const v = document.querySelector('#video_out video');
  if (!v || t == null) return t;
  const go = () => { v.currentTime = t; };
  if (v.readyState >= 1) go(); else v.addEventListener('loadedmetadata', go, {once: true});
  return t;
}"""


# Gradio's cache (uploads, outputs): every hour, files older than an hour are deleted.
DELETE_CACHE = (3600, 3600)


# The API documents the query handlers' parameters from this Args block (ground, robustness).
QUERY_ARGS_DOC = """
    Args:
        source: which speech to use: one of the "Speech source" choices (recorded/uploaded
            audio, the typed sentence spoken by piper, or the video's own spoken query).
        audio_path: a wav/flac/mp3/ogg file (up to 30 s), for the audio source.
        typed_text: a sentence to speak with the piper voice, for the typed source.
        query_id: a spoken query of the demo set (its wav name), for the own-query source.
        video_id: the demo video to ground in (e.g. "v_syn000001").
        noise_kind: "none", a synthetic noise or an ESC-10 class (see the noise menu).
        snr_db: signal-to-noise ratio in dB over the covered part (-10 to 30).
        proportion: covered part of the utterance, 0 to 1 (paper: normal 0.5-0.7).
        seed: noise seed, an integer 0 to 2**32 - 1.
        model_name: end-to-end model (one of the model menu's names).
        asr_engine: cascade ASR, "whisper" or "sphinx".
"""


def _with_query_args(fn):
    """Append :data:`QUERY_ARGS_DOC` to a handler's docstring (before it is wrapped)."""
    fn.__doc__ = fn.__doc__.rstrip() + "\n\n" + QUERY_ARGS_DOC
    return fn


_ABS_PATH = re.compile(r"(?<![\w.])/(?:[^\s'\",:;()]+/)*[^\s'\",:;()]*")
_LOG = logging.getLogger("svg_app")


def public_message(err: Exception) -> str:
    """A user error's text without the server's paths: repository paths become relative, others
    (uploads in the gradio cache, temp files) keep only their file name."""
    root = str(ROOT.resolve()) + "/"

    def shorten(match: re.Match) -> str:
        path = match.group(0)
        if path.startswith(root):
            return path[len(root):]
        return Path(path).name or path

    return _ABS_PATH.sub(shorten, str(err))


def _to_gr_error(err: UserInputError) -> gr.Error:
    """The one conversion of a user error: one log line on the server (no traceback), a gr.Error."""
    message = public_message(err)
    _LOG.info("user error: %s", message)
    return gr.Error(message)


def _user_errors(fn):
    """Show :class:`app.handlers.UserError` as a gr.Error (a red toast, and an API error)."""
    @functools.wraps(fn)  # keeps the signature: the API names its parameters (video_id, snr_db, ...)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserInputError as err:  # every user error of svg_core and app.handlers
            raise _to_gr_error(err) from None
    return wrapped


def _user_errors_streaming(fn):
    """:func:`_user_errors` for generator handlers (gradio must still see a generator function)."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            yield from fn(*args, **kwargs)
        except UserInputError as err:  # every user error of svg_core and app.handlers
            raise _to_gr_error(err) from None
    return wrapped


def _pcm16(wave: np.ndarray) -> tuple[int, np.ndarray]:
    return H.SAMPLE_RATE, (np.clip(wave, -1, 1) * 32767).astype(np.int16)


def _info_markdown(result: H.GroundingResult) -> str:
    """Latency, device, IoU and WER of one result."""
    lat = result.latency_sec
    e2e = result.e2e
    lines = []
    if result.any_fake:
        parts = ", ".join(k for k, v in result.fake.items() if v)
        lines.append(f"**FAKE run** ({parts} not trained): numbers below are not model results.")
    noise = "clean" if result.noise.clean else (
        f"{result.noise.kind} noise at {result.noise.snr_db:g} dB over "
        f"{result.noise_span_sec[0]:.2f}-{result.noise_span_sec[1]:.2f} s")
    lines.append(f"Query: {len(result.noisy_wave) / H.SAMPLE_RATE:.1f} s ({result.query.source}); {noise}")
    iou = "" if result.e2e_iou is None else f", IoU **{result.e2e_iou:.2f}**"
    lines.append(f"**End-to-end** ({result.model_name}): {e2e['start_sec']:.1f}-{e2e['end_sec']:.1f} s{iou}; "
                 f"{lat['end_to_end']:.3f} s on {result.device}")
    if e2e.get("alignment_map") is not None:  # FSAN: drawn right of the attention view
        n_tokens, n_clips = np.asarray(e2e["alignment_map"]).shape
        unit = "words" if e2e.get("words") else "speech steps"
        lines.append(f"**Alignment map** (right of the attention view): P over {n_tokens} query {unit} x "
                     f"{n_clips} clips; dashed lines mark the chosen segment")
    elif e2e.get("proposal_map") is not None:  # SIL
        lines.append("**Proposal map** (right of the attention view): the score of every (start, end) moment; "
                     "the white ring is the prediction")
    if result.cascade_message == "pending":
        lines.append(f"**Cascade** ({result.asr_engine} -> text grounder): the ASR is still running...")
    elif result.cascade is None:
        lines.append(f"**Cascade** ({result.asr_engine}): {result.cascade_message}; ASR {lat['asr']:.3f} s")
    else:
        c = result.cascade
        iou = "" if result.cascade_iou is None else f", IoU **{result.cascade_iou:.2f}**"
        lines.append(f"**Cascade** ({result.asr_engine} -> text grounder): "
                     f"{c['start_sec']:.1f}-{c['end_sec']:.1f} s{iou}; "
                     f"ASR {lat['asr']:.3f} s + grounding {lat['text_grounding']:.3f} s")
    if result.wer is not None:
        lines.append(f"**WER** {result.wer:.2f} against the reference: \"{result.query.reference}\"")
    elif result.query.reference is None:
        lines.append("WER: no reference for a recorded/uploaded query")
    if result.query.gt_sec is not None:
        lines.append(f"Ground truth: {result.query.gt_sec[0]:.1f}-{result.query.gt_sec[1]:.1f} s")
    if result.video_path is None:
        lines.append("This demo set has no mp4 for the video: the timeline shows the prediction.")
    return "\n\n".join(lines)


def _left_out_markdown(demo_set: DemoSet, backend: Backend, shown: int = 8) -> str:
    """The banner naming the videos, annotation items and checkpoints that were not loaded (or "")."""
    parts = []
    for title, problems in (("videos or annotation items", demo_set.problems),
                            ("checkpoints", backend.checkpoint_problems)):
        if problems:
            lines = [f"- `{k}`: {public_message(ValueError(v))}" for k, v in list(problems.items())[:shown]]
            more = f"\n- ... and {len(problems) - shown} more" if len(problems) > shown else ""
            parts.append(f"**{len(problems)} {title} left out:**\n" + "\n".join(lines) + more)
    return "\n\n".join(parts)


def build_demo(config: AppConfig | None = None) -> gr.Blocks:
    """The Blocks app on a demo set and the shipped checkpoints (models load on first use)."""
    config = config or AppConfig.from_env()
    demo_set = DemoSet(config.data_dir)
    backend = Backend(config)
    videos = demo_set.video_ids
    models = backend.model_names()
    thumbs = [(str(demo_set.thumbnail(v, backend.cache_dir / "thumbs")), v) for v in videos]
    eval_cache: dict[tuple, list[dict]] = {}
    fig_dir = backend.cache_dir / "figures"
    # New scenes match the demo set's features; with only fake models any set will do.
    scene_store = SceneStore(demo_set, backend.cache_dir / "new_scenes",
                             allow_default_extractor=all(backend.is_fake(m) for m in models))
    new_scene_note = "\n\n**New scene**: no model has seen this video; there is no ground truth."
    cascade_pool = ThreadPoolExecutor(max_workers=CONCURRENCY_LIMIT, thread_name_prefix="cascade")

    def query_choices(video_id):
        return [(f"{r.start_sec:.1f}-{r.end_sec:.1f} s: {r.sentence}", r.query_id)
                for r in demo_set.queries(video_id)] if video_id in videos else []

    def settings(kind, snr_db, proportion, seed):
        try:
            seed_f = float(seed or 0)
            seed_i = int(seed_f)
            if seed_i != seed_f:
                raise ValueError
            return H.NoiseSettings(kind or "none", float(snr_db), float(proportion), seed_i)
        except (TypeError, ValueError, OverflowError) as err:
            if isinstance(err, UserInputError):
                raise
            raise H.UserError(f"SNR, proportion and seed must be numbers (seed a whole number), found"
                              f" {snr_db!r}, {proportion!r}, {seed!r}") from None

    # --- handlers (thin: the work is in app/handlers.py) -----------------------------------
    @_user_errors_streaming
    @_with_query_args
    def ground(source, audio_path, typed_text, query_id, video_id, noise_kind, snr_db, proportion, seed,
               model_name, asr_engine):
        """Ground one spoken query with the end-to-end model and the ASR cascade.

        Streams twice: the end-to-end answer as soon as it is drawn, then everything with the
        cascade's answer. API callers get the final, complete outputs.
        """
        query = H.load_query(backend, demo_set, source, video_id, audio_path, typed_text, query_id)
        result = H.ground_end_to_end(backend, demo_set, query, video_id,
                                     settings(noise_kind, snr_db, proportion, seed), model_name, asr_engine)
        # The ASR (native code, outside the GIL) runs while the end-to-end figures are drawn: on
        # a small CPU this overlap takes ~0.3-0.5 s off the full answer. The cascade's reported
        # latency then includes some competition for the CPU (``python -m svg_core.bench
        # latency`` times each path alone).
        cascade_job = cascade_pool.submit(H.add_cascade, backend, demo_set, result)
        video = str(result.video_path) if result.video_path is not None else None
        noisy = _pcm16(result.noisy_wave)
        seek_sec = round(float(result.e2e["start_sec"]), 2)
        heatmap = str(plots.save_png(plots.heatmap_figure(result, H.spectrogram(result.noisy_wave)), fig_dir,
                                     "heatmap"))
        timeline = str(plots.save_png(plots.timeline_figure(result), fig_dir, "timeline"))
        note = new_scene_note if video_id in demo_set.added else ""
        yield (video, timeline, heatmap, noisy, "(the ASR is running...)", _info_markdown(result) + note,
               result.summary(), seek_sec)
        result = cascade_job.result()
        timeline = str(plots.save_png(plots.timeline_figure(result), fig_dir, "timeline"))
        transcript = result.transcript or "(nothing recognised)"
        yield (video, timeline, heatmap, noisy, transcript, _info_markdown(result) + note, result.summary(), seek_sec)

    @_user_errors
    @_with_query_args
    def sweep(source, audio_path, typed_text, query_id, video_id, noise_kind, snr_db, proportion, seed,
              model_name, asr_engine, progress=gr.Progress()):
        """IoU against SNR (20 to -5 dB) for the current query, both paths.
        """
        query = H.load_query(backend, demo_set, source, video_id, audio_path, typed_text, query_id)
        result = H.robustness_sweep(backend, demo_set, query, video_id, settings(noise_kind, snr_db, proportion, seed),
                                    model_name, asr_engine, progress=lambda f, d: progress(f, desc=d))
        return str(plots.save_png(plots.robustness_figure(result), fig_dir, "robustness"))

    @_user_errors
    @_with_query_args
    def listen(source, audio_path, typed_text, query_id, video_id, noise_kind, snr_db, proportion, seed,
               model_name, asr_engine):
        """Does it listen? The end-to-end prediction for the query beside the one for a silent query
        of the same length on the same video; when the words are known (typed sentence or the
        video's own query), also the text grounder on the words and on the same words shuffled.

        Returns the timeline figure, the verdict text and its numbers (JSON).
        """
        query = H.load_query(backend, demo_set, source, video_id, audio_path, typed_text, query_id)
        noise = settings(noise_kind, snr_db, proportion, seed)
        result = L.listen(backend, demo_set, query, video_id, noise, model_name, asr_engine, seed=noise.seed)
        figure = str(plots.save_png(plots.listen_figure(result), fig_dir, "listen"))
        return figure, L.listen_markdown(result), result.summary()

    @_user_errors
    def new_scene(scene_seed, progress=gr.Progress()):
        """Render a brand-new synthetic scene that no model has seen and add it to the video list.

        The mp4 and the features (the demo set's extractor) are made now, in a few seconds; then
        ground a typed or recorded query on it with /ground or /listen (video_id = the returned
        id). It has no spoken query and no ground truth; its own captions are example queries.

        Args:
            scene_seed: which scene, a whole number from 0 to 999999 (the same seed gives the
                same scene, id v_new<seed:06d>).

        Returns:
            (video id, the mp4, a description, the scene's captions).
        """
        scene = scene_store.render(scene_seed, progress=lambda f, d: progress(f, desc=d))
        return scene.video_id, str(scene.mp4_path), scene_store.describe(scene), list(scene.captions)

    def offer_scene(video_id, captions, new_ids):
        """Put a rendered scene in this session's video menu and its first caption in the typed box."""
        ids = [v for v in (new_ids or []) if v in demo_set.added and v != video_id] + [video_id]
        first = captions[0] if captions else ""
        return (gr.Dropdown(choices=videos + ids, value=video_id), gr.Dropdown(choices=[], value=None),
                gr.Dropdown(choices=captions, value=first or None), H.SOURCE_TTS, first, ids)

    @_user_errors
    def evaluate(noise_kind, snr_db, proportion, seed, model_name, asr_engine, order, progress=gr.Progress()):
        """Ground every query of the demo set (cached per settings) and list them.

        Args:
            noise_kind: "none", a synthetic noise or an ESC-10 class (see the noise menu).
            snr_db: signal-to-noise ratio in dB over the covered part (-10 to 30).
            proportion: covered part of each utterance, 0 to 1.
            seed: noise seed (query i uses seed + i), an integer 0 to 2**32 - 1.
            model_name: end-to-end model (one of the model menu's names).
            asr_engine: cascade ASR, "whisper" or "sphinx".
            order: how to sort the table (one of the "Sort by" choices).
        """
        key = (noise_kind, float(snr_db), float(proportion), int(seed or 0), model_name, asr_engine)
        if key not in eval_cache:
            skipped: list[tuple[str, str]] = []
            eval_cache[key] = H.evaluate_demo_set(backend, demo_set, settings(*key[:4]), model_name, asr_engine,
                                                  progress=lambda f, d: progress(f, desc=d), skipped=skipped)
            if skipped:  # a corrupt wav costs its own row, not the table
                gr.Warning(f"{len(skipped)} queries left out: " + public_message(ValueError(skipped[0][1]))
                           + (" (and more)" if len(skipped) > 1 else ""))
        rows = H.sort_cases(eval_cache[key], order)
        return H.cases_table(rows), rows

    @_user_errors
    def resort(rows, order):
        rows = H.sort_cases(rows or [], order)
        return H.cases_table(rows), rows

    def load_case(rows, evt: gr.SelectData):
        """Clicking a row of the failure table loads that query into the main view."""
        row = evt.row_value if evt.row_value else rows[evt.index[0]]
        query_id, video_id = row[0], row[1]
        return (gr.Tabs(selected="main"), H.SOURCE_OWN, video_id,
                gr.Dropdown(choices=query_choices(video_id), value=query_id))

    def pick_video(evt: gr.SelectData):
        video_id = videos[evt.index]
        choices = query_choices(video_id)
        return video_id, gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)

    def video_changed(video_id):
        choices = query_choices(video_id)
        return gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)

    # --- layout ----------------------------------------------------------------------------
    with gr.Blocks(title="Spoken video grounding", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown("# Spoken video grounding\nSay what happens in a video; the model finds when it happens. "
                    "The end-to-end model (VGCL, ACM MM 2022) listens to the speech directly; the cascade "
                    "transcribes it first and grounds the text.")
        fake_parts = [p for p, f in (("grounding model", backend.is_fake(models[0])),
                                     ("ASR", backend.asr_is_fake()),
                                     ("cascade text grounder", backend.text_is_fake())) if f]
        if fake_parts:
            gr.Markdown(f"**FAKE MODE:** the {', '.join(fake_parts)} run on a fake predictor (no trained "
                        "checkpoint is loaded); predictions are placeholders.", elem_id="fake_banner")
        if demo_set.synthetic:
            gr.Markdown(f"Demo set: `{demo_set.root.name}` — **synthetic** videos and TTS speech "
                        f"({len(videos)} videos, {len(demo_set.records)} spoken queries).")
        left_out = _left_out_markdown(demo_set, backend)
        if left_out:
            gr.Markdown(left_out, elem_id="problems_banner")
        with gr.Tabs() as tabs:
            with gr.Tab("Ground a spoken query", id="main"):
                with gr.Row():
                    with gr.Column(scale=1):
                        source = gr.Radio(list(H.SPEECH_SOURCES), value=H.SOURCE_AUDIO, label="Speech source",
                                          elem_id="source")
                        audio = gr.Audio(sources=["microphone", "upload"], type="filepath", elem_id="audio_in",
                                         label="Speech (record or upload wav/flac/mp3/ogg, up to 30 s)")
                        typed = gr.Textbox(label="Or type a sentence (spoken by the piper voice)", elem_id="typed",
                                           placeholder="e.g. the red ball bounces near the left side")
                        first = query_choices(videos[0])
                        query_dd = gr.Dropdown(first, value=first[0][1] if first else None, elem_id="query_pick",
                                               label="Or pick one of the video's spoken queries (ground truth known)",
                                               allow_custom_value=True)  # API callers: any query id
                        with gr.Accordion("Noise", open=True):
                            noise_kind = gr.Dropdown(backend.noise_choices(), value="none", label="Noise type",
                                                     elem_id="noise_kind")
                            preset = gr.Radio(list(H.PROPORTION_PRESETS), value="normal", elem_id="preset",
                                              label="Covered proportion preset (paper: clean / normal / large)")
                            proportion = gr.Slider(0.0, 1.0, value=H.PROPORTION_PRESETS["normal"], step=0.05,
                                                   label="Covered proportion", elem_id="proportion")
                            snr_db = gr.Slider(-10, 30, value=10, step=1, label="SNR (dB)", elem_id="snr_db")
                            seed = gr.Number(0, precision=0, minimum=0, maximum=2**32 - 1, label="Seed", elem_id="seed")
                        video_dd = gr.Dropdown(videos, value=videos[0], label="Video", elem_id="video_pick",
                                               allow_custom_value=True)  # the handler names unknown ids
                        gallery = gr.Gallery(thumbs, label="Demo videos", columns=4, height=170,
                                             allow_preview=False, elem_id="gallery")
                        with gr.Accordion("New scene: a video no model has seen", open=False, elem_id="new_scene_box"):
                            with gr.Row():
                                # No precision/min/max: the handler's own message names the range (UI and API alike).
                                scene_seed = gr.Number(1, step=1, label="Scene seed (0 to 999999)", info=SEED_HELP,
                                                       elem_id="scene_seed", scale=2)
                                scene_btn = gr.Button("New scene", elem_id="scene_btn", scale=1)
                            scene_info = gr.Markdown(label="New scene", elem_id="scene_info")
                            captions_dd = gr.Dropdown([], label="Example queries: the new scene's own captions "
                                                      "(pick one to type it)", elem_id="scene_captions")
                        with gr.Row():
                            model_dd = gr.Dropdown(models, value=models[0], label="End-to-end model", elem_id="model")
                            asr_radio = gr.Radio(["whisper", "sphinx"], value="whisper", elem_id="asr",
                                                 label="Cascade ASR (Whisper base / PocketSphinx)")
                        run_btn = gr.Button("Ground the query", variant="primary", elem_id="run_btn")
                        sweep_btn = gr.Button("Robustness sweep (SNR 20 to -5 dB)", elem_id="sweep_btn")
                    with gr.Column(scale=2):
                        with gr.Row():
                            video_out = gr.Video(label="Video (seeks to the predicted start)", elem_id="video_out",
                                                 interactive=False, height=300, scale=3)
                            with gr.Column(scale=2):
                                transcript = gr.Textbox(label="ASR transcript", elem_id="transcript",
                                                        interactive=False)
                                noisy_out = gr.Audio(label="Noisy query (what both paths heard)", type="numpy",
                                                     interactive=False, elem_id="noisy_audio")
                        info = gr.Markdown(elem_id="info")
                        timeline = gr.Image(label="Timeline", elem_id="timeline", type="filepath", format="png",
                                            interactive=False)
                        heatmap = gr.Image(label="Attention over the noisy query", elem_id="heatmap",
                                           type="filepath", format="png", interactive=False)
                        with gr.Accordion("Details (JSON)", open=False):
                            summary = gr.JSON(elem_id="summary")
                        robustness = gr.Image(label="Robustness: IoU against SNR", elem_id="robustness",
                                              type="filepath", format="png", interactive=False)
                        with gr.Group(elem_id="listen_panel"):
                            gr.Markdown("### Does it listen?\nThe same video with your query and with a silent "
                                        "query of the same length: a model that listens moves its answer.")
                            listen_btn = gr.Button("Does it listen? (your query against a silent one)",
                                                   elem_id="listen_btn")
                            listen_info = gr.Markdown(label="Does it listen?", elem_id="listen_info")
                            listen_plot = gr.Image(label="Your query against the controls", elem_id="listen_plot",
                                                   type="filepath", format="png", interactive=False)
                            with gr.Accordion("Details (JSON)", open=False):
                                listen_json = gr.JSON(elem_id="listen_summary")
            with gr.Tab("Failure cases", id="cases"):
                gr.Markdown("Ground every spoken query of the demo set with both paths under the current noise "
                            "settings (query i uses seed + i). Click a row to load it into the main view; click a "
                            "column header to sort.")
                with gr.Row():
                    eval_btn = gr.Button("Evaluate the demo set", variant="primary", elem_id="eval_btn")
                    order = gr.Dropdown(list(H.SORT_KEYS), value=next(iter(H.SORT_KEYS)), label="Sort by",
                                        elem_id="order")
                table = gr.Dataframe(headers=H.CASE_COLUMNS, interactive=False, wrap=True, elem_id="cases")
                rows_state = gr.State([])
            build_search_tab(backend, demo_set, models, fig_dir, tabs, video_dd, query_dd, query_choices)
        seek_t = gr.Number(visible=False)
        new_ids = gr.State([])  # this session's new scenes, in the video menu after the demo set's
        # new_scene's plain outputs (for the API), passed on to offer_scene
        scene_id = gr.Textbox(visible=False, label="New scene's video id")
        scene_captions = gr.JSON(visible=False, label="New scene's captions")

        inputs = [source, audio, typed, query_dd, video_dd, noise_kind, snr_db, proportion, seed, model_dd, asr_radio]
        outputs = [video_out, timeline, heatmap, noisy_out, transcript, info, summary, seek_t]
        run_btn.click(ground, inputs, outputs, api_name="ground").then(None, seek_t, None, js=SEEK_JS)
        seek_t.change(None, seek_t, None, js=SEEK_JS)  # seek on the first (end-to-end) update already
        sweep_btn.click(sweep, inputs, robustness, api_name="robustness")
        listen_btn.click(listen, inputs, [listen_plot, listen_info, listen_json], api_name="listen")
        scene_btn.click(new_scene, scene_seed, [scene_id, video_out, scene_info, scene_captions],
                        api_name="new_scene", concurrency_limit=1).success(
            offer_scene, [scene_id, scene_captions, new_ids], [video_dd, query_dd, captions_dd, source, typed, new_ids],
            api_visibility="private")
        captions_dd.input(lambda c: (c, H.SOURCE_TTS) if c else (gr.skip(), gr.skip()), captions_dd, [typed, source],
                          api_visibility="private")
        eval_btn.click(evaluate, [noise_kind, snr_db, proportion, seed, model_dd, asr_radio, order],
                       [table, rows_state], api_name="evaluate_demo_set", concurrency_limit=1)
        order.input(resort, [rows_state, order], [table, rows_state], api_visibility="private")
        table.select(load_case, rows_state, [tabs, source, video_dd, query_dd], api_visibility="private").then(
            ground, inputs, outputs, api_visibility="private").then(None, seek_t, None, js=SEEK_JS)
        gallery.select(pick_video, None, [video_dd, query_dd], api_visibility="private")
        video_dd.input(video_changed, video_dd, query_dd, api_visibility="private")
        preset.input(lambda p: H.PROPORTION_PRESETS[p], preset, proportion, api_visibility="private")
        # Using an input selects it as the speech source.
        audio.input(lambda a: H.SOURCE_AUDIO if a else gr.skip(), audio, source, api_visibility="private")
        audio.stop_recording(lambda: H.SOURCE_AUDIO, None, source, api_visibility="private")
        typed.input(lambda t: H.SOURCE_TTS if t.strip() else gr.skip(), typed, source, api_visibility="private")
        query_dd.input(lambda q: H.SOURCE_OWN, query_dd, source, api_visibility="private")
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=64)
    demo.backend = backend  # for warm-up and benchmarks
    demo.demo_set = demo_set
    demo.scene_store = scene_store
    return demo


def launch(demo: gr.Blocks, config: AppConfig, host: str, port: int, **kwargs):
    """Start the server (blocking unless ``prevent_thread_lock=True`` is passed)."""
    return demo.launch(server_name=host, server_port=port, max_file_size=MAX_FILE_SIZE,
                       allowed_paths=[str(Path(config.data_dir).resolve())], **kwargs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    AppConfig.add_arguments(parser)
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
                        help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--no-warmup", action="store_true",
                        help="do not load the default model and Whisper in the background at start")
    args = parser.parse_args(argv)
    config = AppConfig.from_args(args)
    demo = build_demo(config)
    if not args.no_warmup:  # load models while the page opens, so the first click is quick
        threading.Thread(target=demo.backend.warm_up, daemon=True).start()
    launch(demo, config, args.host, args.port)


if __name__ == "__main__":
    from svg_core.errors import run_cli

    configure_torch_threads()  # process-wide, so only when run as a program
    sys.exit(run_cli(main))  # a data folder with no usable video: one error line, exit 2
