"""Spoken search across a video collection: AVLnet window embeddings in a faiss index.

Layer: above ``svg_core.engine`` (it loads checkpoints and the grounder for VCMR); nothing below
imports it. ``python -m svg_core.search`` is the command line (evaluate, index, query, bench).
"""

from svg_core.search.encode import Embedder, embed_collection
from svg_core.search.index import IndexSettings, WindowIndex, make_faiss_index, rank_videos, recall_at_k, window_spans

__all__ = ["Embedder", "IndexSettings", "WindowIndex", "embed_collection", "make_faiss_index", "rank_videos",
           "recall_at_k", "window_spans"]
