"""Test fixtures shared by the estimator tests: a tiny config and a tiny trained scoring context."""

from __future__ import annotations

from sie.dev.synthetic import make_samples


def tiny_config(**train_overrides):
    """A small SieConfig for unit tests: tiny vocabulary and layers, a few epochs."""
    from sie.config import SieConfig

    train = {
        "vocab_size": 64,
        "embedding_dim": 8,
        "hidden_dim": 16,
        "max_query_tokens": 4,
        "max_item_tokens": 6,
        "epochs": 3,
        "batch_size": 64,
        "device": "cpu",
    }
    train.update(train_overrides)
    return SieConfig.load({"train": train, "importance": {"batch_size": 50}})


def tiny_context(n: int = 300, n_validation: int = 60, seed: int = 0, cfg=None):
    """A ScoringContext for a tiny ranker trained on synthetic samples (seconds on CPU)."""
    from sie.importance.base import ScoringContext
    from sie.model.training import train_ranker

    cfg = cfg or tiny_config()
    train = make_samples(n, cfg.train, seed=seed, flip_rate=0.1)
    validation = make_samples(n_validation, cfg.train, seed=seed + 1000)
    result = train_ranker(train, cfg.train, seed=seed)
    return ScoringContext.from_training(cfg, result, train, validation, seed=seed)
