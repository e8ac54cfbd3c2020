"""Synthetic `SampleTensors` for estimator tests and the importance throughput benchmark.

Query requests of ``group_size`` impressions; query and item token ids are head-heavy
over the hashed vocabulary with padding; an item shares tokens with its query with some
probability, and clicks follow a logistic model of that overlap plus a dense feature,
with a fraction of labels flipped (noise) so that noise-detection methods have
something to find. No Spark, no warehouse: built directly as tensors.
"""

from __future__ import annotations

import numpy as np
import torch

from sie.config import TrainConfig
from sie.model.features import SampleTensors


def make_samples(
    n: int,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    group_size: int = 10,
    flip_rate: float = 0.05,
    return_noise: bool = False,
):
    rng = np.random.default_rng(seed)
    v = cfg.vocab_size
    lq, li = cfg.max_query_tokens, cfg.max_item_tokens
    n_groups = (n + group_size - 1) // group_size
    group = np.repeat(np.arange(n_groups), group_size)[:n]

    def zipf_ids(shape):
        # head-heavy over the hashed vocabulary (id 1 most frequent), with few repeats of
        # a token within one text, as in real queries and titles
        return (1 + np.floor((v - 1) * rng.random(shape) ** 2)).astype(np.int64).clip(1, v - 1)

    q_len = rng.integers(1, min(4, lq) + 1, size=n_groups)
    query_g = zipf_ids((n_groups, lq))
    query_g[np.arange(lq)[None, :] >= q_len[:, None]] = 0
    query = query_g[group]

    i_len = rng.integers(2, li + 1, size=n)
    item = zipf_ids((n, li))
    item[np.arange(li)[None, :] >= i_len[:, None]] = 0
    relevant = rng.random(n) < 0.3
    item[relevant, :lq] = np.where(query[relevant] > 0, query[relevant], item[relevant, :lq])

    dense = rng.normal(size=(n, cfg.n_dense)).astype(np.float32)
    logit = -2.5 + 2.5 * relevant + 0.8 * dense[:, 0]
    click = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    noise = rng.random(n) < flip_rate
    click[noise] = 1.0 - click[noise]
    data = SampleTensors(
        query_tokens=torch.from_numpy(query),
        item_tokens=torch.from_numpy(item),
        dense=torch.from_numpy(dense),
        click=torch.from_numpy(click),
        label=torch.from_numpy(click.astype(np.int64)),
        group=torch.from_numpy(group.astype(np.int64)),
        sample_id=np.array([f"s{k:09d}" for k in range(n)], dtype=object),
    )
    return (data, noise) if return_noise else data
