import numpy as np
import pandas as pd
import pytest
import torch

from sie.config import TrainConfig
from sie.ds import Ds
from sie.model.features import encode_frame, hash_tokens, tokenize
from sie.model.training import predict, train_ranker


def _frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    colors = ["red", "blue", "green", "black"]
    q = rng.integers(0, 4, n)
    i = rng.integers(0, 4, n)
    click = ((q == i) & (rng.random(n) < 0.9)) | (rng.random(n) < 0.05)
    return pd.DataFrame(
        {
            "sample_id": [f"s{k}" for k in range(n)],
            "query_id": [f"q{k // 10}" for k in range(n)],
            "query_text": [f"{colors[c]} shoes" for c in q],
            "item_title": [f"{colors[c]} running shoe brand" for c in i],
            "click": click.astype(int),
            "label": click.astype(int),
        }
    )


def test_tokenize_and_hash_are_stable():
    assert tokenize("Red-Shoes, size 42!") == ["red", "shoes", "size", "42"]
    a = hash_tokens(["red shoes", ""], max_len=4, vocab_size=100)
    assert a.shape == (2, 4) and (a[1] == 0).all() and (a[0, :2] > 0).all() and (a[0, 2:] == 0).all()
    assert (hash_tokens(["red shoes"], 4, 100) == a[:1]).all()


def test_hashing_each_distinct_text_once_gives_every_row_its_own_tokens():
    texts = ["red shoes", None, "Blue HAT 2", "red shoes", "", "blue hat 2"] * 50
    rows = hash_tokens(texts, max_len=3, vocab_size=64)
    for text, row in zip(texts, rows):
        one = hash_tokens([text], max_len=3, vocab_size=64)[0]
        assert (row == one).all() and (one[: len(tokenize(text or ""))] > 0).all()
    assert hash_tokens([], 3, 64).shape == (0, 3)


def test_training_learns_and_records_dynamics():
    cfg = TrainConfig(epochs=6, batch_size=64, lr=1e-2, vocab_size=256, embedding_dim=8, hidden_dim=16)
    data = encode_frame(_frame(), cfg)
    result = train_ranker(data, cfg, seed=1)
    assert result.epoch_loss[-1] < result.epoch_loss[0]
    assert result.dynamics_loss.shape == (6, len(data)) and result.dynamics_logit.shape == (6, len(data))
    assert len(result.checkpoints) == 6
    logits = predict(result.model, data)
    clicked = data.click.numpy() == 1
    assert logits[clicked].mean() > logits[~clicked].mean() + 1.0


def test_training_is_deterministic():
    cfg = TrainConfig(epochs=2, batch_size=64, vocab_size=256, embedding_dim=8, hidden_dim=16)
    data = encode_frame(_frame(), cfg)
    a = predict(train_ranker(data, cfg, seed=3).model, data)
    b = predict(train_ranker(data, cfg, seed=3).model, data)
    np.testing.assert_array_equal(a, b)


def test_zero_samples_is_a_clear_error():
    cfg = TrainConfig(epochs=1)
    data = encode_frame(_frame(10), cfg).subset(np.array([], dtype=int))
    with pytest.raises(ValueError, match="zero samples"):
        train_ranker(data, cfg)


def test_window_days():
    assert Ds("2026-11-03").window(3) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert torch.get_num_threads() >= 1
