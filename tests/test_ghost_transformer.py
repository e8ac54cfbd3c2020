"""Ghost per-sample gradients (Linear, Embedding incl. positions, LayerNorm) of a transformer
ranker against per-sample gradients from torch.func."""

from __future__ import annotations

import pytest
import torch
from transformer_fixtures import as_pairs, func_per_sample_grads, tiny_cross_encoder

from sie.dev.synthetic import make_samples
from sie.importance.base import per_sample_loss
from sie.importance.ghost import GhostCapture, LayerProjection
from sie.importance.grad_norm import ghost_sq_norms_batch


@pytest.fixture(scope="module")
def case():
    """(model in float64, batch, reference per-sample gradients) with padding and repeated tokens."""
    from fixtures import tiny_config

    data = as_pairs(make_samples(12, tiny_config().train, seed=3))
    q, i, d = data.inputs("cpu")
    q[0, 2:] = 0  # a short pair: padding positions must get no gradient
    i[0, 2:] = 0
    q[1, :6] = torch.tensor([5, 5, 7, 5, 2, 2])  # a token repeated within one pair
    y = data.click.double()
    model = tiny_cross_encoder(seed=1).double()
    torch.nn.init.normal_(model.head.weight, std=1.0)  # non-trivial gradients through the encoder
    for name, p in model.named_parameters():  # LayerNorm affine away from its (1, 0) init
        if "LayerNorm" in name:
            p.data += 0.1 * torch.randn_like(p)
    d = d.double()
    return model, (q, i, d, y), func_per_sample_grads(model, q, i, d, y)


def _captured(model, q, i, d, y) -> GhostCapture:
    cap = GhostCapture(model)
    with cap:
        logits = model(q, i, d)
    cap.backward(per_sample_loss(logits, y).sum())
    return cap


def test_every_parameter_is_covered_including_layer_norm_and_positions(case):
    model, batch, _ = case
    cap = _captured(model, *batch)
    covered = {
        layer.key(p) for layer in cap.layers for p in ("weight", "bias") if getattr(layer.module, p, None) is not None
    }
    assert covered == {n for n, _ in model.named_parameters()}
    assert sum(layer.is_layer_norm for layer in cap.layers) == 5  # embeddings + 2 per encoder layer
    assert any(layer.name.endswith("position_embeddings") for layer in cap.layers)


def test_sq_norms_equal_torch_func(case):
    model, batch, ref = case
    expected = sum(g.reshape(g.shape[0], -1).pow(2).sum(1) for g in ref.values())
    torch.testing.assert_close(ghost_sq_norms_batch(model, GhostCapture(model), *batch), expected, rtol=1e-4, atol=0)
    torch.testing.assert_close(_captured(model, *batch).sq_norms(), expected, rtol=1e-4, atol=0)


def test_per_layer_sq_norms_equal_torch_func(case):
    """Each layer on its own (LayerNorm, word / position / segment embeddings, attention Linears)."""
    model, batch, ref = case
    for layer in _captured(model, *batch).layers:
        names = [layer.key(p) for p in ("weight", "bias") if layer.key(p) in ref]
        expected = sum(ref[n].reshape(ref[n].shape[0], -1).pow(2).sum(1) for n in names)
        torch.testing.assert_close(layer.sq_norms(), expected, rtol=1e-4, atol=1e-12, msg=layer.name)


def test_dots_equal_torch_func(case):
    model, batch, ref = case
    gen = torch.Generator().manual_seed(0)
    direction = {n: torch.randn(g.shape[1:], generator=gen, dtype=g.dtype) for n, g in ref.items()}
    expected = sum((g.reshape(g.shape[0], -1) @ direction[n].reshape(-1)) for n, g in ref.items())
    torch.testing.assert_close(_captured(model, *batch).dots(direction), expected, rtol=1e-4, atol=1e-10)


def test_projection_equals_projecting_torch_func_gradients(case):
    model, batch, ref = case
    gen = torch.Generator().manual_seed(0)
    for layer in _captured(model, *batch).layers:
        proj = LayerProjection(tuple(layer.module.weight.shape), 16, gen, "cpu", torch.float64)
        if layer.is_layer_norm:  # kept exact: (∇w, ∇b)
            expected = torch.cat([ref[layer.key("weight")], ref[layer.key("bias")]], 1)
        else:
            parts = [(proj.rows @ ref[layer.key("weight")] @ proj.cols.t()).flatten(1)]
            if not layer.is_embedding:
                parts.append(ref[layer.key("bias")])
            expected = torch.cat(parts, 1)
        torch.testing.assert_close(layer.project(proj), expected, rtol=1e-4, atol=1e-10, msg=layer.name)
        mean = {n: g.mean(0) for n, g in ref.items()}
        torch.testing.assert_close(proj.project_grad(layer, mean), expected.mean(0), rtol=1e-4, atol=1e-10)
