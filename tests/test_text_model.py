"""Text-query grounder: vocabulary, tokenisation, batch consistency, overfitting, checkpoints."""

from __future__ import annotations

import pytest
import torch

from svg_core.engine.checkpoint import load_checkpoint, save_checkpoint
from svg_core.models import TextConfig, build_model, build_vocab
from svg_core.models.text import tokenize
from tests.model_batches import make_batch, overfit, select

CAPTIONS = ["A man throws a ball.", "The dog runs, then the dog sleeps.", "A woman's bike", "the end"]


def tiny_text(**overrides) -> TextConfig:
    return TextConfig.small(model_dim=64, chunk_num=2, attn_layers=1, embed_dim=16,
                            vocab=build_vocab(CAPTIONS), **overrides)  # fmt: skip


def test_tokenize_and_vocab():
    assert tokenize("  A woman's BIKE, rides!") == ["a", "woman's", "bike", "rides"]
    vocab = build_vocab(CAPTIONS)
    assert vocab[:4] == ["<pad>", "<unk>", "a", "the"]  # by count (3 each), then alphabetical
    assert len(vocab) == len(set(vocab))
    frequent = build_vocab(CAPTIONS, min_count=2)
    assert frequent == ["<pad>", "<unk>", "a", "the", "dog"]
    with pytest.raises(ValueError, match="min_count"):
        build_vocab(CAPTIONS, min_count=0)


def test_unknown_words_empty_sentences_and_truncation():
    model = build_model(tiny_text(max_words=3))
    ids, lengths = model.tokenize(["the zebra dog runs fast", "", "!!!"])
    vocab = model.cfg.vocab
    assert ids[0].tolist() == [vocab.index("the"), 1, vocab.index("dog")]
    assert lengths.tolist() == [3, 1, 1] and ids[1, 0] == 1
    with pytest.raises(ValueError, match="sentence"):
        model({"video": torch.zeros(1, 64, 500), "sentence": "not a list"})
    with pytest.raises(ValueError, match="vocab"):
        build_model(TextConfig.small(model_dim=64, chunk_num=2, attn_layers=1))


def test_padded_batch_equals_single_items():
    model = build_model(tiny_text()).eval()
    batch = make_batch([5, 5, 5], seed=0, sentences=["a man throws a ball to the dog", "the end", ""])
    with torch.no_grad():
        out = model(batch)
        for i in range(3):
            single = model(select(batch, i))
            torch.testing.assert_close(out["start_prob"][i], single["start_prob"][0], atol=2e-5, rtol=1e-4)
            torch.testing.assert_close(out["inside_prob"][i], single["inside_prob"][0], atol=2e-5, rtol=1e-4)
            n_q = int(single["query_mask"][0].sum())
            torch.testing.assert_close(out["cq_attention"][i, :, :n_q], single["cq_attention"][0], atol=2e-5, rtol=1e-4)
    assert out["query_mask"].sum(1).tolist() == [8, 2, 1]


def test_tiny_batch_overfits():
    torch.manual_seed(0)
    model = build_model(tiny_text()).train()
    batch = make_batch([5, 5], n_video=32, seed=1, spans=[(3.0, 9.0), (20.0, 28.0)],
                       sentences=["a man throws a ball", "the dog sleeps"])  # fmt: skip
    first, out, final = overfit(model, batch)
    assert final < 0.25 * first
    assert out["start_prob"].argmax(1).tolist() == [3, 20]


def test_checkpoint_round_trip_keeps_the_vocabulary(tmp_path):
    model = build_model(tiny_text()).eval()
    save_checkpoint(tmp_path, model, model.cfg)
    loaded, cfg, _ = load_checkpoint(tmp_path)
    assert cfg.vocab == model.cfg.vocab
    batch = make_batch([5], seed=2, sentences=["the dog runs"])
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch)["end_prob"], model(batch)["end_prob"])


def test_paper_preset():
    cfg = TextConfig.paper(vocab=build_vocab(CAPTIONS))
    assert (cfg.model_dim, cfg.chunk_num, cfg.embed_dim) == (1024, 8, 300)
    assert TextConfig.small().chunk_num == 1


def test_video_dropout_acts_in_training_only_and_rejects_bad_rates():
    torch.manual_seed(0)
    batch = make_batch([5, 5], seed=2, sentences=["a man throws a ball", "the dog sleeps"])
    plain = build_model(tiny_text(dropout=0.0))
    dropped = build_model(tiny_text(dropout=0.0, video_dropout=0.5))
    dropped.load_state_dict(plain.state_dict())  # dropout adds no weights: the same model
    with torch.no_grad():
        plain.eval(), dropped.eval()
        torch.testing.assert_close(dropped(batch)["start_prob"], plain(batch)["start_prob"])
        plain.train(), dropped.train()
        torch.testing.assert_close(plain(batch)["start_prob"], plain(batch)["start_prob"])  # no other noise
        assert not torch.allclose(dropped(batch)["start_prob"], dropped(batch)["start_prob"])  # a fresh mask
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="video_dropout"):
            tiny_text(video_dropout=bad)
