"""Graded, multi-signal training (listwise / pairwise objectives) and the importance methods on it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fixtures import tiny_config

from sie.config import SieConfig
from sie.dev.synthetic import make_samples
from sie.importance import REGISTRY, get_estimator
from sie.importance.base import ScoringContext, checked_scores
from sie.importance.dynamics import graded_margins, pairwise_margins
from sie.importance.grad_norm import ghost_grad_norms
from sie.importance.tracin import checkpoint_epochs, tracin_scores
from sie.model.objective import Objective, graded_relevance, logit_gradients, request_pairs, sample_losses
from sie.model.training import request_batches, train_ranker

GROUP_OBJECTIVES = ("listwise", "pairwise")


def graded_samples(n: int, cfg, seed: int):
    """make_samples with graded labels: some clicks become add to cart / purchase, some
    unclicked impressions get a purchase (a misattributed one, as the simulator's label flips)."""
    data = make_samples(n, cfg.train, seed=seed, flip_rate=0.1)
    rng = np.random.default_rng(seed + 99)
    click = data.click.numpy() > 0.5
    label = click.astype(np.int64) + (click & (rng.random(n) < 0.5)) + (click & (rng.random(n) < 0.3))
    label[~click & (rng.random(n) < 0.03)] = 3
    client, session = data.group // 4, data.group // 2  # a client's sessions, a session's requests
    return dataclasses.replace(data, label=torch.from_numpy(label), client=client, session=session)


def graded_context(objective: str, n: int = 300, n_validation: int = 60, seed: int = 0, epochs: int = 3):
    cfg = tiny_config(objective=objective, epochs=epochs)
    train = graded_samples(n, cfg, seed)
    validation = graded_samples(n_validation, cfg, seed + 1000)
    result = train_ranker(train, cfg.train, seed=seed)
    return ScoringContext.from_training(cfg, result, train, validation, seed=seed)


def _random_requests(seed: int = 0, n_groups: int = 12):
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 9, (n_groups,), generator=g)
    group = torch.arange(n_groups).repeat_interleave(sizes) * 7 + 3  # ids need not be 0..G-1
    perm = torch.randperm(len(group), generator=g)  # a request's samples need not be adjacent
    group = group[perm]
    relevance = torch.randint(0, 4, (len(group),), generator=g).double()
    relevance[group == group[0]] = 0.0  # one request without any relevant sample
    logits = torch.randn(len(group), generator=g, dtype=torch.float64)
    return logits, relevance, group


# ---- the objectives ------------------------------------------------------------------


def test_listwise_terms_sum_to_each_requests_weighted_softmax_cross_entropy():
    logits, relevance, group = _random_requests()
    terms = sample_losses("listwise", logits, torch.zeros_like(logits), relevance, group)
    total = 0.0
    for g in torch.unique(group):
        at = group == g
        r = relevance[at]
        if r.sum() > 0:
            request = r.sum() * F.cross_entropy(logits[at][None], (r / r.sum())[None])
            torch.testing.assert_close(terms[at].sum(), request)
            total = total + request
        else:
            assert (terms[at] == 0).all()
    torch.testing.assert_close(terms.sum(), total)


def test_listwise_logit_gradient_is_weighted_softmax_minus_relevance():
    logits, relevance, group = _random_requests(seed=1)
    lam = logit_gradients("listwise", logits, torch.zeros_like(logits), relevance, group)
    for g in torch.unique(group):
        at = group == g
        r = relevance[at]
        expected = r.sum() * torch.softmax(logits[at], 0) - r
        torch.testing.assert_close(lam[at], expected.double())


def test_pairwise_terms_split_every_pair_loss():
    logits, relevance, group = _random_requests(seed=2)
    terms = sample_losses("pairwise", logits, torch.zeros_like(logits), relevance, group)
    expected = torch.zeros_like(logits)
    for a in range(len(group)):
        for b in range(len(group)):
            if group[a] == group[b] and relevance[a] > relevance[b]:
                pair = (relevance[a] - relevance[b]) * torch.log1p(torch.exp(-(logits[a] - logits[b])))
                expected[a] += pair / 2
                expected[b] += pair / 2
    torch.testing.assert_close(terms, expected)
    i, j = request_pairs(group)
    sizes = torch.unique(group, return_counts=True)[1]
    assert len(i) == int((sizes * (sizes - 1)).sum()) and bool((group[i] == group[j]).all()) and bool((i != j).all())


def test_pointwise_is_click_bce_and_grades_come_from_config():
    logits, _, group = _random_requests(seed=3)
    click = (torch.rand(len(logits), generator=torch.Generator().manual_seed(3)) < 0.3).double()
    torch.testing.assert_close(
        sample_losses("pointwise", logits, click, click, group),
        F.binary_cross_entropy_with_logits(logits, click, reduction="none"),
    )
    cfg = SieConfig.load({"train": {"grades": {"click": 0.5, "add_to_cart": 1, "purchase": 4}}})
    assert graded_relevance(torch.tensor([0, 1, 2, 3]), cfg.train.grades).tolist() == [0.0, 0.5, 1.0, 4.0]


def test_objective_settings_are_checked():
    assert SieConfig.load({"train": {"objective": "listwise"}}).train.objective == "listwise"
    with pytest.raises(ValueError, match="train.objective"):
        SieConfig.load({"train": {"objective": "lambdamart"}})
    with pytest.raises(ValueError, match="train.grades.purchase"):
        SieConfig.load({"train": {"grades": {"purchase": -1}}})
    with pytest.raises(ValueError, match="train.grades"):
        SieConfig.load({"train": {"grades": {"click": 0, "add_to_cart": 0, "purchase": 0}}})


# ---- training ------------------------------------------------------------------------


def test_request_batches_keep_every_request_whole():
    group = torch.randint(0, 300, (2000,), generator=torch.Generator().manual_seed(0))
    parts = request_batches(group, 128, torch.Generator().manual_seed(1))
    seen = torch.cat(parts)
    assert sorted(seen.tolist()) == list(range(2000))
    owner = {}
    for b, idx in enumerate(parts):
        for g in group[idx].unique().tolist():
            assert owner.setdefault(g, b) == b  # a request lies in one batch only
    largest = int(torch.bincount(group).max())
    assert all(len(idx) < 128 + largest for idx in parts)
    assert np.mean([len(idx) for idx in parts[:-1]]) >= 100


@pytest.mark.parametrize("objective", ["pointwise", *GROUP_OBJECTIVES])
def test_training_decreases_each_objectives_loss(objective):
    cfg = tiny_config(objective=objective, epochs=6, lr=1e-2)
    data = graded_samples(400, cfg, seed=5)
    result = train_ranker(data, cfg.train, seed=0)
    assert result.epoch_loss[-1] < 0.9 * result.epoch_loss[0]
    # the recorded per-sample terms are the objective's: their mean is the epoch loss
    np.testing.assert_allclose(result.dynamics_loss.mean(1), result.epoch_loss, rtol=1e-5)


def test_listwise_batch_loss_is_the_sum_of_recorded_terms():
    """Recomputed at the final model, the per-sample terms sum to the loss of the whole set."""
    ctx = graded_context("listwise", n=200, n_validation=20)
    z = torch.cat([ctx.model(*ctx.train.inputs("cpu", slice(b, b + 64))) for b in range(0, 200, 64)]).detach()
    objective = Objective.of(ctx.cfg.train, ctx.train)
    terms = objective.losses(z)
    total = 0.0
    for g in torch.unique(ctx.train.group):
        at = ctx.train.group == g
        r = objective.relevance[at]
        if r.sum() > 0:
            total = total + r.sum() * F.cross_entropy(z[at][None], (r / r.sum())[None])
    torch.testing.assert_close(terms.sum(), torch.as_tensor(total, dtype=terms.dtype))


# ---- importance methods with the graded objectives -----------------------------------


@pytest.fixture(scope="module", params=GROUP_OBJECTIVES)
def ctx(request):
    return graded_context(request.param)


def test_every_registered_method_is_finite_with_a_graded_objective(ctx):
    failures = {}
    for method in sorted(REGISTRY):
        try:
            scores = checked_scores(get_estimator(method, ctx.cfg), ctx)
        except Exception as exc:  # noqa: BLE001 - collected and reported together below
            failures[method] = repr(exc)
            continue
        if method != "random" and np.unique(scores).size < 2:
            failures[method] = "constant scores"
    assert not failures, failures


def reference_per_sample_grads(model, data, cfg) -> torch.Tensor:
    """[N, P] autograd reference: the gradient of the whole set's loss through sample i's logit only."""
    objective = Objective.of(cfg.train, data)
    params = [p for p in model.parameters() if p.requires_grad]
    out = []
    for k in range(len(data)):
        z = model(*data.inputs("cpu"))
        only_k = torch.zeros(len(data), dtype=torch.bool)
        only_k[k] = True
        total = objective.losses(torch.where(only_k, z, z.detach())).sum()
        grads = torch.autograd.grad(total, params, allow_unused=True)
        out.append(torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads)]))
    return torch.stack(out).double()


def test_per_sample_gradients_sum_to_the_loss_gradient_and_match_ghost_norms(ctx):
    model = ctx.model.eval()
    sub = ctx.at_model(model, ctx.train.subset(np.arange(60)))  # whole requests (groups of 10)
    ref = reference_per_sample_grads(model, sub, ctx.cfg)
    loss = Objective.of(ctx.cfg.train, sub).losses(model(*sub.inputs("cpu"))).sum()
    full = torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(model.parameters()))]).double()
    # (a shift-invariant loss has a zero output-bias gradient: compare at the gradient's scale)
    torch.testing.assert_close(ref.sum(0), full, rtol=1e-4, atol=1e-5 * float(full.abs().max()))
    norms = ghost_grad_norms(model, sub, torch.device("cpu"), 25)
    np.testing.assert_allclose(norms, ref.norm(dim=1).numpy(), rtol=1e-4, atol=1e-7)
    assert (norms > 0).any()
    # the registered method on the whole context takes the same path
    scores = get_estimator("grad_norm", ctx.cfg).score(ctx)[:60]
    whole = ctx.at_model(model, ctx.train).logit_grad[:60]
    np.testing.assert_allclose(whole.numpy(), sub.logit_grad.numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(scores, norms, rtol=1e-5, atol=1e-9)


def test_input_grad_share_is_the_input_gradient_of_the_whole_loss(ctx):
    """X_i reaches a group loss only through z_i, so ∂L/∂X_i of the whole loss is the sample's own."""
    model = ctx.model.eval()
    q, i, d = ctx.train.inputs("cpu")
    d = d.clone().requires_grad_(True)
    outputs = []

    def keep(module, args, out):
        out.retain_grad()
        outputs.append(out)

    hooks = [m.register_forward_hook(keep) for m in (model.query_embedding, model.item_embedding)]
    z = model(q, i, d)
    for hook in hooks:
        hook.remove()
    Objective.of(ctx.cfg.train, ctx.train).losses(z).sum().backward()
    model.zero_grad(set_to_none=True)  # the context's model is shared with the other tests
    ref = d.grad.abs().sum(1) + sum(o.grad.abs().flatten(1).sum(1) for o in outputs)
    ref = (ref / ref.sum()).double().numpy()
    scores = get_estimator("input_grad_share", ctx.cfg).score(ctx)
    np.testing.assert_allclose(scores, ref, rtol=1e-4, atol=1e-6 * ref.max())


def test_tracin_matches_the_autograd_reference(ctx):
    n = 30  # whole requests (groups of 10) of the training and the validation samples
    small = dataclasses.replace(
        ctx,
        train=ctx.train.subset(np.arange(n)),
        validation=ctx.validation.subset(np.arange(20)),
        dynamics_loss=ctx.dynamics_loss[:, :n],
        dynamics_logit=ctx.dynamics_logit[:, :n],
    )
    epochs = checkpoint_epochs(small.n_checkpoints, small.cfg.importance.tracin_checkpoints)
    ref_self = np.zeros(n)
    ref_val = np.zeros(n)
    for epoch in epochs:
        model = small.load_epoch(epoch).eval()
        g_train = reference_per_sample_grads(model, small.train, small.cfg)
        g_val = reference_per_sample_grads(model, small.validation, small.cfg).sum(0) / len(small.validation)
        ref_self += small.learning_rate(epoch) * g_train.pow(2).sum(1).numpy()
        ref_val += small.learning_rate(epoch) * (g_train @ g_val).numpy()
    self_inf, val_inf = tracin_scores(small, validation=True, projection_dim=0)
    np.testing.assert_allclose(self_inf, ref_self, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(val_inf, ref_val, rtol=1e-4, atol=1e-5 * np.abs(ref_val).max())


def test_graded_margins_by_hand():
    logits = np.array([[2.0, 1.0, 0.5, 3.0, 0.0, 1.0]])
    relevance = np.array([3.0, 1.0, 0.0, 0.0, 2.0, 2.0])
    group = np.array([0, 0, 0, 0, 1, 1])  # request 1 has one grade only
    m = graded_margins(logits, relevance, group)[0]
    # sample 0 (grade 3): above everything below it by min(2-1, 2-0.5, 2-3) = -1
    # sample 1 (grade 1): min(1 - max(0.5, 3), 2 - 1) = -2; samples 2, 3 (grade 0): 1 - z
    np.testing.assert_allclose(m[:4], [-1.0, -2.0, 0.5, -2.0])
    assert np.isnan(m[4:]).all()
    click = (relevance > 0).astype(float)
    two = graded_margins(logits[:, :4], click[:4], group[:4])
    np.testing.assert_allclose(two, pairwise_margins(logits[:, :4], click[:4], group[:4]))


@pytest.mark.parametrize("objective", GROUP_OBJECTIVES)
def test_loss_finds_misattributed_purchases_only_with_graded_training(objective):
    """Unclicked impressions with a purchase are invisible to a click-only ranker; a graded one sees them."""
    from sklearn.metrics import roc_auc_score

    def flip_auroc(name: str) -> float:
        cfg = tiny_config(objective=name, epochs=4)
        data = graded_samples(800, cfg, seed=11)
        flipped = (data.label.numpy() == 3) & (data.click.numpy() < 0.5)
        assert flipped.sum() >= 10
        loss = train_ranker(data, cfg.train, seed=0).dynamics_loss[-1]
        return roc_auc_score(flipped, loss)  # the `loss` method's detector: high loss

    assert flip_auroc(objective) > 0.8
    assert flip_auroc("pointwise") < 0.6
