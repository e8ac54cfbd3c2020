"""Exact KNN-Shapley against brute-force Shapley values on tiny sets."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from fixtures import tiny_context

from sie.importance import get_estimator
from sie.importance.knn_shapley import embed, knn_shapley_values, validation_subset


def _utility(subset, order_rank, train_y, yv, k):
    """U(S) = (1/K) Σ_{k ≤ min(K,|S|)} 1[y_{α_k(S)} = y_v]."""
    if not subset:
        return 0.0
    nearest = sorted(subset, key=lambda j: order_rank[j])[:k]
    return sum(float(train_y[j] == yv) for j in nearest) / k


def brute_force_shapley(train_x, train_y, val_x, val_y, k):
    n = len(train_x)
    out = np.zeros(n)
    for xv, yv in zip(val_x, val_y):
        dist = np.linalg.norm(train_x - xv, axis=1)
        order_rank = np.argsort(np.argsort(dist, kind="stable"), kind="stable")
        for i in range(n):
            others = [j for j in range(n) if j != i]
            for size in range(n):
                w = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
                for s in itertools.combinations(others, size):
                    gain = _utility(list(s) + [i], order_rank, train_y, yv, k) - _utility(
                        list(s), order_rank, train_y, yv, k
                    )
                    out[i] += w * gain
    return out / len(val_x)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_knn_shapley_equals_brute_force(k):
    rng = np.random.default_rng(k)
    n, m = 7, 5
    train_x = rng.normal(size=(n, 3))
    train_y = rng.integers(0, 2, size=n).astype(np.float32)
    val_x = rng.normal(size=(m, 3))
    val_y = rng.integers(0, 2, size=m).astype(np.float32)
    ref = brute_force_shapley(train_x, train_y, val_x, val_y, k)
    got = knn_shapley_values(
        torch.tensor(train_x), torch.tensor(train_y), torch.tensor(val_x), torch.tensor(val_y), k, batch_elements=2 * n
    ).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    # efficiency: values sum to the mean utility of the full set
    full = np.mean(
        [
            _utility(list(range(n)), np.argsort(np.argsort(np.linalg.norm(train_x - xv, axis=1))), train_y, yv, k)
            for xv, yv in zip(val_x, val_y)
        ]
    )
    assert got.sum() == pytest.approx(full)


def _sequential_recursion(train_x, train_y, val_x, val_y, k):
    n = len(train_x)
    out = np.zeros(n)
    for xv, yv in zip(val_x, val_y):
        order = np.argsort(np.linalg.norm(train_x - xv, axis=1), kind="stable")
        s = np.zeros(n)
        s[order[-1]] = float(train_y[order[-1]] == yv) * min(k, n) / (n * k)
        for i in range(n - 2, -1, -1):
            a, b = order[i], order[i + 1]
            s[a] = s[b] + (float(train_y[a] == yv) - float(train_y[b] == yv)) / k * min(k, i + 1) / (i + 1)
        out += s
    return out / len(val_x)


def test_batched_recursion_equals_sequential_on_medium_set():
    rng = np.random.default_rng(0)
    train_x, val_x = rng.normal(size=(400, 4)), rng.normal(size=(23, 4))
    train_y, val_y = rng.integers(0, 2, 400), rng.integers(0, 2, 23)
    ref = _sequential_recursion(train_x, train_y, val_x, val_y, 5)
    for elements in (400, 3000, 1 << 20):  # 1, 7 and all validation rows per batch
        got = knn_shapley_values(
            torch.tensor(train_x), torch.tensor(train_y), torch.tensor(val_x), torch.tensor(val_y), 5, elements
        ).numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


def test_knn_shapley_estimator_on_trained_model():
    ctx = tiny_context(n=200, n_validation=50)
    scores = get_estimator("knn_shapley", ctx.cfg).score(ctx)
    k = ctx.cfg.importance.knn_k
    ref = _sequential_recursion(
        embed(ctx.model, ctx.train, ctx.device, 64).double().numpy(),
        ctx.train.click.numpy(),
        embed(ctx.model, ctx.validation, ctx.device, 64).double().numpy(),
        ctx.validation.click.numpy(),
        k,
    )
    np.testing.assert_allclose(scores, ref, rtol=1e-6, atol=1e-9)


def test_validation_cap_is_a_seeded_subset():
    ctx = tiny_context(n=100, n_validation=50)
    sub = validation_subset(ctx, 10)
    assert len(sub) == 10 and set(sub.sample_id) <= set(ctx.validation.sample_id)
    assert list(validation_subset(ctx, 10).sample_id) == list(sub.sample_id)
    assert len(validation_subset(ctx, 0)) == 50


def test_nearest_first_is_a_stable_argsort_with_ties():
    from sie.importance.knn_shapley import nearest_first

    d = torch.tensor([[0.5, 0.0, 0.5, -0.0, 2.0, 1e-30], [3.0, 1.0, 1.0, 1.0, 0.0, 3.0]])
    expected = torch.tensor([[1, 3, 5, 0, 2, 4], [4, 1, 2, 3, 0, 5]])
    assert torch.equal(nearest_first(d), expected)
    rng = torch.Generator().manual_seed(0)
    r = torch.rand(7, 500, generator=rng).mul(20).floor()  # many ties
    assert torch.equal(nearest_first(r), r.argsort(dim=1, stable=True))


def _textbook_knn_shapley(train_x, train_y, val_x, val_y, k):
    """Jia et al. 2019, Theorem 1, written plainly: one validation point at a time, float64 throughout."""
    n = len(train_x)
    total = np.zeros(n)
    for xv, yv in zip(val_x, val_y):
        dist = np.sqrt(((train_x - xv) ** 2).sum(axis=1))
        alpha = sorted(range(n), key=lambda j: (dist[j], j))  # nearest first, ties by index
        s = [0.0] * n
        s[alpha[n - 1]] = (1.0 if train_y[alpha[n - 1]] == yv else 0.0) * min(k, n) / (n * k)
        for i in range(n - 1, 0, -1):  # i = 1-based rank of alpha[i - 1]
            now, nxt = alpha[i - 1], alpha[i]
            gap = (1.0 if train_y[now] == yv else 0.0) - (1.0 if train_y[nxt] == yv else 0.0)
            s[now] = s[nxt] + gap / k * min(k, i) / i
        total += np.array(s)
    return total / len(val_x)


def test_float64_near_ties_are_ordered_by_distance_not_index():
    # training points on a sphere around the validation points, radii 1 + (n-1-j)·1e-9:
    # distances differ by 1e-9 (< float32 resolution at 1), farthest first by index, so a
    # float32 sort would see all ties and order them by index, i.e. exactly backwards
    rng = np.random.default_rng(7)
    n, k = 40, 3
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    train_x = direction * (1.0 + (n - 1 - np.arange(n)) * 1e-9)[:, None]
    train_y = rng.integers(0, 2, n).astype(np.float64)
    # one validation point at the centre (two with opposite labels would make the mean
    # order-invariant: their per-point values sum to the same constant for any order)
    val_x = np.zeros((1, 3))
    val_y = np.array([1.0])
    dist = np.linalg.norm(train_x, axis=1)
    assert np.all(np.diff(dist) < 0) and np.all(np.diff(dist.astype(np.float32)) == 0)  # the constructed near-ties
    ref = _textbook_knn_shapley(train_x, train_y, val_x, val_y, k)
    got = knn_shapley_values(
        torch.tensor(train_x), torch.tensor(train_y), torch.tensor(val_x), torch.tensor(val_y), k
    ).numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-15)


def test_textbook_reference_agrees_with_brute_force():
    # the reference above is itself checked against all-subsets Shapley values
    rng = np.random.default_rng(3)
    train_x, val_x = rng.normal(size=(6, 2)), rng.normal(size=(3, 2))
    train_y, val_y = rng.integers(0, 2, 6), rng.integers(0, 2, 3)
    for k in (1, 2, 7):
        np.testing.assert_allclose(
            _textbook_knn_shapley(train_x, train_y, val_x, val_y, k),
            brute_force_shapley(train_x, train_y, val_x, val_y, k),
            rtol=1e-12,
            atol=1e-15,
        )
