"""A tiny cross-encoder ranker (the CrossEncoderRanker class over a 2-layer random BERT) for CPU tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from fixtures import tiny_config
from torch import nn
from torch.func import functional_call, grad

from sie.dev.synthetic import make_samples
from sie.importance.base import ScoringContext
from sie.model.cross_encoder import CrossEncoderRanker
from sie.model.features import SampleTensors


def tiny_cross_encoder(seed: int = 0, vocab: int = 64, n_dense: int = 4, hidden: int = 16) -> CrossEncoderRanker:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=32,
        type_vocab_size=2,
        attn_implementation="eager",
    )
    return CrossEncoderRanker(BertModel(config, add_pooling_layer=False), n_dense).eval()


def as_pairs(data: SampleTensors) -> SampleTensors:
    """The MLP's hashed (query, title) tokens as one right-padded pair: (ids, segment ids)."""
    ids = torch.cat([data.query_tokens, data.item_tokens], 1)
    segments = torch.cat([torch.zeros_like(data.query_tokens), torch.ones_like(data.item_tokens)], 1)
    order = torch.sort((ids == 0).to(torch.int8), dim=1, stable=True).indices  # real tokens first
    ids, segments = ids.gather(1, order), segments.gather(1, order)
    return dataclasses.replace(data, query_tokens=ids, item_tokens=segments * (ids != 0))


def func_per_sample_grads(model: nn.Module, q, i, d, y) -> dict[str, torch.Tensor]:
    """Reference per-sample gradients, one torch.func.grad call per sample (the ranker cuts
    each batch to its longest pair, a data-dependent shape that vmap cannot trace)."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_one(p, q1, i1, d1, y1):
        return F.binary_cross_entropy_with_logits(functional_call(model, p, (q1, i1, d1)), y1)

    per_sample = grad(loss_one)
    rows = [per_sample(params, q[b : b + 1], i[b : b + 1], d[b : b + 1], y[b : b + 1]) for b in range(len(y))]
    return {k: torch.stack([r[k] for r in rows]) for k in params}


@dataclasses.dataclass
class TinyTransformerContext(ScoringContext):
    """A scoring context whose checkpoints are of the tiny cross-encoder (not the configured MiniLM)."""

    build: Callable[[], nn.Module] | None = None

    def load_epoch(self, epoch: int) -> nn.Module:
        model = self.build()
        model.load_state_dict(self.checkpoint_states[epoch])
        return model.to(self.device)


def tiny_transformer_context(n: int = 120, n_validation: int = 30, epochs: int = 3, seed: int = 0, hidden: int = 16):
    """The tiny cross-encoder trained briefly (Adam, BCE on clicks) on synthetic pairs, with checkpoints."""
    cfg = tiny_config(epochs=epochs)
    train = as_pairs(make_samples(n, cfg.train, seed=seed, flip_rate=0.1))
    validation = as_pairs(make_samples(n_validation, cfg.train, seed=seed + 1000))
    model = tiny_cross_encoder(seed, hidden=hidden)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    states = []
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(n, generator=gen).split(32):
            loss = F.binary_cross_entropy_with_logits(model(*train.inputs("cpu", idx)), train.click[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    model.eval()
    zeros = np.zeros((epochs, n), dtype=np.float32)
    return TinyTransformerContext(
        cfg=cfg,
        ds="test",
        model=model,
        train=train,
        validation=validation,
        dynamics_loss=zeros,
        dynamics_logit=zeros,
        checkpoint_states=states,
        learning_rates=[3e-3] * epochs,
        seed=seed,
        build=lambda: tiny_cross_encoder(seed, hidden=hidden),
    )
