"""`trak`: projected-gradient attribution against exact TracIn and an explicit kernel computation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from fixtures import tiny_config, tiny_context
from scipy.stats import spearmanr
from transformer_fixtures import tiny_transformer_context

from sie.importance import get_estimator
from sie.importance.ghost import GhostCapture
from sie.importance.tracin import checkpoint_epochs, tracin_scores
from sie.importance.trak import layer_projections, trak_scores


@pytest.fixture(scope="module")
def mlp():
    return tiny_context(n=150, n_validation=30, cfg=tiny_config(epochs=3))


@pytest.fixture(scope="module")
def transformer():
    return tiny_transformer_context(n=80, n_validation=20, epochs=3, hidden=32)


def _with_importance(ctx, **changes):
    cfg = dataclasses.replace(ctx.cfg, importance=dataclasses.replace(ctx.cfg.importance, **changes))
    return dataclasses.replace(ctx, cfg=cfg)


def _close_to(got, expected):
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_identity_kernel_with_unprojected_weights_is_exact_tracin(mlp):
    """k above every weight's size: nothing is projected, so φ is the exact gradient."""
    _, exact = tracin_scores(mlp, validation=True, projection_dim=0)
    _close_to(trak_scores(mlp, projection_dim=4096, kernel="identity"), exact)
    registered = get_estimator("trak", mlp.cfg).score(
        _with_importance(mlp, trak_projection_dim=4096, trak_kernel="identity")
    )
    _close_to(registered, exact)


def test_identity_kernel_is_exact_tracin_for_a_group_objective():
    ctx = tiny_context(n=100, n_validation=20, cfg=tiny_config(epochs=3, objective="listwise"))
    _, exact = tracin_scores(ctx, validation=True, projection_dim=0)
    _close_to(trak_scores(ctx, projection_dim=4096, kernel="identity"), exact)


def test_transformer_projected_attribution_ranks_like_exact_tracin(transformer):
    _, exact = tracin_scores(transformer, validation=True, projection_dim=0)
    _close_to(trak_scores(transformer, projection_dim=1 << 20, kernel="identity"), exact)
    # k = 1024: the feed-forward and word-embedding weights (2,048 entries each) are projected
    model = transformer.load_epoch(0)
    capture = GhostCapture(model)
    projections = layer_projections(capture, 1024, 0, "cpu", torch.float32)
    widths = {layer.name: projections[layer.name].width(layer) for layer in capture.layers}
    sizes = {layer.name: sum(p.numel() for p in layer.module.parameters()) for layer in capture.layers}
    assert sum(widths[n] < sizes[n] for n in widths) >= 5
    projected = trak_scores(transformer, projection_dim=1024, kernel="identity")
    assert spearmanr(projected, exact)[0] >= 0.95


def test_trak_kernel_equals_explicit_per_layer_solve(mlp):
    """τ from the stored Φ: per layer, (Φ_lᵀΦ_l + λ_l I)⁻¹ φ̄_V,l, checked with numpy."""
    stored: dict[str, np.ndarray] = {}

    def scratch(name, shape, dtype):
        stored[name] = np.zeros(shape, dtype)
        return stored[name]

    ctx = dataclasses.replace(mlp, scratch=scratch)
    scores = trak_scores(ctx, projection_dim=64, kernel="trak", damping=0.05)
    epochs = checkpoint_epochs(ctx.n_checkpoints, ctx.cfg.importance.tracin_checkpoints)
    assert sorted(stored) == sorted(f"trak_phi_epoch{e}" for e in epochs)
    # φ̄_V from the same projections, applied to the validation samples as training rows
    val_stored: dict[str, np.ndarray] = {}

    def val_scratch(name, shape, dtype):
        val_stored[name] = np.zeros(shape, dtype)
        return val_stored[name]

    as_train = dataclasses.replace(ctx, train=ctx.validation, scratch=val_scratch)
    trak_scores(as_train, projection_dim=64, kernel="identity")
    model = ctx.load_epoch(0)
    capture = GhostCapture(model)
    projections = layer_projections(capture, 64, ctx.seed, "cpu", torch.float32)
    widths = [projections[layer.name].width(layer) for layer in capture.layers]
    expected = np.zeros(len(ctx.train))
    for epoch in epochs:
        phi = stored[f"trak_phi_epoch{epoch}"].astype(np.float64)
        phi_val = val_stored[f"trak_phi_epoch{epoch}"].astype(np.float64).mean(0)
        k_val = []
        for cols in np.split(np.arange(phi.shape[1]), np.cumsum(widths)[:-1]):
            gram = phi[:, cols].T @ phi[:, cols]
            ridge = 0.05 * np.mean(np.diag(gram)) * np.eye(len(cols))
            k_val.append(np.linalg.solve(gram + ridge, phi_val[cols]))
        expected += ctx.learning_rate(epoch) * phi @ np.concatenate(k_val)
    _close_to(scores, expected)


def test_block_size_does_not_change_scores(mlp):
    small = trak_scores(_with_importance(mlp, batch_size=23), projection_dim=64, kernel="trak")
    large = trak_scores(_with_importance(mlp, batch_size=1000), projection_dim=64, kernel="trak")
    np.testing.assert_allclose(small, large, rtol=1e-6, atol=1e-6 * np.abs(large).max())
    assert np.all(np.isfinite(small)) and np.std(small) > 0


def test_trak_needs_validation(mlp):
    empty = dataclasses.replace(mlp, validation=mlp.validation.subset(np.array([], dtype=np.int64)))
    with pytest.raises(ValueError, match="validation"):
        get_estimator("trak", mlp.cfg).score(empty)
