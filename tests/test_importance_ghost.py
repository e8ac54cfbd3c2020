"""grad_norm (ghost norms) and input_grad_share against torch.func / autograd references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fixtures import tiny_config, tiny_context
from torch import nn
from torch.func import grad, vmap

from sie.importance import get_estimator
from sie.importance.ghost import GhostCapture
from sie.importance.grad_norm import ghost_grad_norms, ghost_sq_norms_batch, vmap_grad_norms
from sie.model.ranker import NeuralRanker


@pytest.fixture(scope="module")
def ctx():
    return tiny_context()


def _edge_batch(vocab: int = 20, lq: int = 5, li: int = 7, n_dense: int = 4, b: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, vocab, (b, lq), generator=g)
    i = torch.randint(0, 5, (b, li), generator=g)  # many repeated ids within a sequence
    q[0] = 0  # all padding
    q[1] = torch.tensor([3, 3, 3, 0, 3])  # repeated id around padding
    i[2] = 0
    i[2, 0] = 4  # a single real token
    d = torch.randn(b, n_dense, generator=g)
    y = (torch.rand(b, generator=g) < 0.4).float()
    return q, i, d, y


def test_ghost_norms_equal_vmap_on_random_init_with_edge_cases():
    torch.manual_seed(0)
    model = NeuralRanker(20, 6, 12, 4)
    q, i, d, y = _edge_batch()
    ref = vmap_grad_norms(model, q, i, d, y)
    ghost = ghost_sq_norms_batch(model, GhostCapture(model), q, i, d, y).sqrt()
    torch.testing.assert_close(ghost, ref, rtol=1e-4, atol=1e-7)


def test_ghost_norms_equal_vmap_on_trained_ranker(ctx):
    ref = []
    for begin in range(0, len(ctx.train), 100):
        sl = slice(begin, begin + 100)
        ref.append(vmap_grad_norms(ctx.model, *ctx.train.inputs("cpu", sl), ctx.train.click[sl]))
    ref = torch.cat(ref).double().numpy()
    scores = get_estimator("grad_norm", ctx.cfg).score(ctx)  # batch size 50: several batches
    assert scores.shape == (len(ctx.train),)
    np.testing.assert_allclose(scores, ref, rtol=1e-4, atol=1e-8)


class _SharedSeq(nn.Module):
    """Weight sharing (one Embedding / Linear called twice) and a Linear on a 3-D input."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 5, padding_idx=0)
        self.seq = nn.Linear(5, 3)  # applied per token: [B, T, 5] -> [B, T, 3]
        self.wide = nn.Linear(2, 40)  # T*T < in*out is false for T=8: materialised branch
        self.out = nn.Linear(3 + 3 + 40, 1, bias=False)

    def forward(self, q, i, d):
        eq, ei = self.emb(q), self.emb(i)
        hq = torch.tanh(self.seq(eq)).sum(1)
        hi = torch.tanh(self.seq(ei)).mean(1)
        hw = torch.relu(self.wide(d.reshape(d.shape[0], -1, 2))).sum(1)
        return self.out(torch.cat([hq, hi, hw], -1)).squeeze(-1)


def test_ghost_norms_general_layers_equal_vmap():
    torch.manual_seed(1)
    model = _SharedSeq()
    q, i, _, y = _edge_batch(vocab=11, b=16)
    d = torch.randn(16, 16)  # -> [B, 8, 2] for the wide Linear
    ref = vmap_grad_norms(model, q, i, d, y)
    ghost = ghost_sq_norms_batch(model, GhostCapture(model), q, i, d, y).sqrt()
    torch.testing.assert_close(ghost, ref, rtol=1e-4, atol=1e-7)


def test_unsupported_layers_are_refused():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))  # samples interact: no per-sample gradient
    with pytest.raises(NotImplementedError, match="BatchNorm1d"):
        GhostCapture(model)


def test_grad_norm_streams_the_same_for_any_batch_size(ctx):
    a = ghost_grad_norms(ctx.model, ctx.train, ctx.device, 7)
    b = ghost_grad_norms(ctx.model, ctx.train, ctx.device, 1000)
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_input_grad_share_matches_autograd_reference(ctx):
    model = ctx.model
    q, i, d = ctx.train.inputs("cpu")
    y = ctx.train.click

    # reference: per-sample ∂ℓ_i/∂(dense, token embeddings) with torch.func
    def loss_one(d1, eq, ei, q1, i1, y1):
        mq = (q1 != 0).unsqueeze(-1).float()
        mi = (i1 != 0).unsqueeze(-1).float()
        qv = (eq * mq).sum(0) / mq.sum(0).clamp(min=1)
        iv = (ei * mi).sum(0) / mi.sum(0).clamp(min=1)
        x = torch.cat([qv, iv, qv * iv, d1])
        logit = model.output(model.act(model.hidden2(model.act(model.hidden1(x))))).squeeze(-1)
        return F.binary_cross_entropy_with_logits(logit, y1)

    with torch.no_grad():
        eq, ei = model.query_embedding(q), model.item_embedding(i)
    gd, gq, gi = vmap(grad(loss_one, argnums=(0, 1, 2)))(d, eq, ei, q, i, y)
    raw = gd.abs().sum(1) + gq.abs().sum((1, 2)) + gi.abs().sum((1, 2))
    ref = (raw / raw.sum()).detach().double().numpy()

    scores = get_estimator("input_grad_share", ctx.cfg).score(ctx)
    np.testing.assert_allclose(scores, ref, rtol=1e-4, atol=1e-10)
    assert scores.sum() == pytest.approx(1.0)
    assert (scores >= 0).all()


def test_vmap_reference_matches_loop_of_single_backward():
    """The reference itself: vmap norms equal plain autograd one sample at a time."""
    torch.manual_seed(2)
    model = NeuralRanker(20, 4, 8, 4)
    q, i, d, y = _edge_batch(b=6)
    ref = vmap_grad_norms(model, q, i, d, y)
    for k in range(6):
        model.zero_grad()
        F.binary_cross_entropy_with_logits(model(q[k : k + 1], i[k : k + 1], d[k : k + 1]), y[k : k + 1]).backward()
        norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
        torch.testing.assert_close(ref[k], norm, rtol=1e-5, atol=1e-7)


def test_cfg_default_methods_are_registered():
    from sie.importance import REGISTRY

    cfg = tiny_config()
    assert set(cfg.importance.methods) <= set(REGISTRY)
