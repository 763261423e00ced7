"""The "Search all videos" tab: one spoken or typed query, every demo video ranked (AVLnet).

Handlers are plain functions (tested on the fake backend); :func:`build_search_tab` lays the
tab out inside ``app.app``'s ``gr.Tabs`` and wires its events (``api_name="search"``).

The searcher is the first AVLnet checkpoint (config family ``avlnet``) of the checkpoints folder,
indexing the demo set's videos as sliding windows once, on first use; in fake mode, or with no
AVLnet checkpoint, :class:`app.fake.FakeSearcher` ranks by a hash (the tab says so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from app import handlers as H
from app import plots

SEARCH_SOURCES = (H.SOURCE_AUDIO, H.SOURCE_TTS)
TOP_VIDEOS = 10


def find_search_checkpoint(folder: Path) -> Path | None:
    """The first ``folder/*/`` whose config.json has family ``avlnet`` and weights beside it."""
    for config_path in sorted(Path(folder).glob("*/config.json")):
        try:
            family = json.loads(config_path.read_text()).get("family")
        except (OSError, ValueError):
            continue
        if family == "avlnet" and (config_path.parent / "model.safetensors").exists():
            return config_path.parent
    return None


class Searcher:
    """AVLnet windows of the demo set's videos in an exact faiss index (built once).

    Args:
        checkpoint: AVLnet checkpoint folder; demo: the :class:`app.resources.DemoSet`.
    """

    is_fake = False

    def __init__(self, checkpoint: Path, demo):
        from svg_core.search import Embedder, IndexSettings, WindowIndex

        self.embedder = Embedder.from_checkpoint(checkpoint)
        cfg = self.embedder.cfg
        vectors, windows = [], []
        for vid in demo.video_ids:
            emb, rows = self.embedder.embed_video_windows(demo.video_features(vid), demo.duration_sec(vid), vid,
                                                          cfg.window_clips, cfg.stride_clips)
            vectors.append(emb)
            windows += rows
        self.index = WindowIndex.build(np.concatenate(vectors), windows,
                                       IndexSettings("flat", window_clips=cfg.window_clips,
                                                     stride_clips=cfg.stride_clips, checkpoint=str(checkpoint)))

    def search(self, wave: np.ndarray, top: int = TOP_VIDEOS) -> list[dict]:
        """Ranked ``[{"video_id", "score", "start_sec", "end_sec"}]`` (best window), best first."""
        return self.index.search_videos(self.embedder.embed_waves([wave])[0], top_videos=top)


def get_searcher(backend, demo):
    """The backend's searcher, built on first use (real AVLnet, or the fake one)."""
    key = "searcher"
    if key not in backend._grounders:
        with backend.lock(f"build:{key}"):
            if key not in backend._grounders:
                ckpt = None if backend.config.fake else find_search_checkpoint(backend.config.checkpoints_dir)
                if ckpt is None:
                    from app.fake import FakeSearcher

                    backend._grounders[key] = FakeSearcher(demo.video_ids, {v: demo.duration_sec(v) for v in demo.video_ids})
                else:
                    backend._grounders[key] = Searcher(ckpt, demo)
    return backend._grounders[key]


@dataclass
class SearchResult:
    """Ranked videos for one query and the top one grounded.

    Attributes:
        hits: ``[{"video_id", "score", "start_sec", "end_sec"}]`` best first (best window).
        grounding: :class:`app.handlers.GroundingResult` of the top video (end-to-end model only).
        fake: True when the ranking came from the fake searcher.
    """

    hits: list[dict]
    grounding: H.GroundingResult
    fake: bool

    def table(self) -> list[list]:
        """Rows for the results table: rank, video id, score, best window."""
        return [[i, h["video_id"], round(h["score"], 3), f"{h['start_sec']:.1f}-{h['end_sec']:.1f} s"]
                for i, h in enumerate(self.hits, 1)]

    def summary(self) -> dict:
        top = self.grounding.e2e
        return {"ranking": self.hits, "fake_search": self.fake, "top_video": self.hits[0]["video_id"],
                "top_moment_sec": [top["start_sec"], top["end_sec"]], "model": self.grounding.model_name}


def search_query_wave(backend, source: str, audio_path: str | None, typed_text: str | None) -> np.ndarray:
    """The clean 16 kHz query of the search tab (a recording/upload, or the typed sentence spoken)."""
    if source not in SEARCH_SOURCES:
        raise H.UserError(f"Unknown speech source {source!r}; choose one of {list(SEARCH_SOURCES)}.")
    return H.load_free_query(backend, source, audio_path=audio_path, typed_text=typed_text).wave


def search_all(backend, demo, source: str, audio_path: str | None, typed_text: str | None, model_name: str,
               top: int = TOP_VIDEOS) -> SearchResult:
    """Rank every demo video for the query, then ground the query in the top one.

    Raises:
        UserError: no/unusable audio or sentence, unknown model.
    """
    wave = search_query_wave(backend, source, audio_path, typed_text)
    searcher = get_searcher(backend, demo)
    with backend.lock("searcher"):
        hits = searcher.search(wave, top=top)
    if not hits:
        raise H.UserError("The demo set has no video to search.")
    query = H.SpokenQuery(wave, source, reference=(typed_text or "").strip() or None)
    grounding = H.ground_end_to_end(backend, demo, query, hits[0]["video_id"], H.NoiseSettings(), model_name, "whisper")
    grounding.cascade_message = "not run in search"
    return SearchResult(hits, grounding, bool(getattr(searcher, "is_fake", False)))


def build_search_tab(backend, demo_set, models: list[str], fig_dir: Path, tabs, video_dd, query_dd,
                     query_choices) -> None:
    """The tab's layout and events (call inside ``gr.Tabs``; ``video_dd``/``query_dd`` are the main view's)."""
    with gr.Tab("Search all videos", id="search"):
        gr.Markdown("Speak or type once: every demo video is ranked for the query (AVLnet window search), "
                    "and the top one is grounded on its timeline.")
        with gr.Row():
            with gr.Column(scale=1):
                s_source = gr.Radio(list(SEARCH_SOURCES), value=H.SOURCE_AUDIO, label="Speech source",
                                    elem_id="search_source")
                s_audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Spoken query",
                                   elem_id="search_audio")
                s_typed = gr.Textbox(label="Or type a sentence (spoken by the piper voice)", elem_id="search_typed")
                s_model = gr.Dropdown(models, value=models[0], label="Grounder for the top video", elem_id="search_model")
                s_btn = gr.Button("Search all videos", variant="primary", elem_id="search_btn")
            with gr.Column(scale=2):
                s_gallery = gr.Gallery(label="Ranked videos", columns=5, height=200, elem_id="search_gallery")
                s_table = gr.Dataframe(headers=["rank", "video", "score", "best window"], interactive=False,
                                       elem_id="search_table")
                s_timeline = gr.Image(label="Top video: grounded moment", type="filepath", format="png",
                                      elem_id="search_timeline")
                with gr.Row():
                    s_pick = gr.Dropdown([], label="Open a result in the main view", elem_id="search_pick")
                    s_open = gr.Button("Open in main view", elem_id="search_open")
                with gr.Accordion("Details (JSON)", open=False):
                    s_json = gr.JSON(elem_id="search_summary")

    def search(source, audio_path, typed_text, model_name):
        """Rank every demo video for a spoken or typed query and ground it in the top one.

        Args:
            source: "Record or upload" or "Typed sentence (piper voice)".
            audio_path: a wav/flac/mp3/ogg file (up to 30 s), for the audio source.
            typed_text: a sentence to speak with the piper voice, for the typed source.
            model_name: the end-to-end grounder used on the top video.
        """
        try:
            res = search_all(backend, demo_set, source, audio_path, typed_text, model_name)
        except H.UserError as err:
            raise gr.Error(str(err)) from None
        thumbs = [(str(demo_set.thumbnail(h["video_id"], backend.cache_dir / "thumbs")),
                   f"{i}. {h['video_id']} ({h['score']:.2f})") for i, h in enumerate(res.hits, 1)]
        fig = plots.save_png(plots.timeline_figure(res.grounding), fig_dir, "search")
        ids = [h["video_id"] for h in res.hits]
        return thumbs, res.table(), str(fig), gr.Dropdown(choices=ids, value=ids[0]), res.summary()

    def open_result(video_id):
        if not video_id:
            raise gr.Error("Search first, then pick a result.")
        choices = query_choices(video_id)
        return gr.Tabs(selected="main"), video_id, gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)

    s_btn.click(search, [s_source, s_audio, s_typed, s_model], [s_gallery, s_table, s_timeline, s_pick, s_json],
                api_name="search")
    s_open.click(open_result, s_pick, [tabs, video_dd, query_dd], api_visibility="private")
    s_audio.input(lambda a: H.SOURCE_AUDIO if a else gr.skip(), s_audio, s_source, api_visibility="private")
    s_typed.input(lambda t: H.SOURCE_TTS if t.strip() else gr.skip(), s_typed, s_source, api_visibility="private")
