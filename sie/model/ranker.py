"""The neural ranker: query and item token embeddings + an MLP.

Only ``nn.Embedding`` and ``nn.Linear`` layers carry parameters, so exact per-sample
gradient norms can be computed layer by layer without materialising per-sample
gradients (see ``sie.importance.grad_norm``).
"""

from __future__ import annotations

import torch
from torch import nn

from sie.config import TrainConfig


class NeuralRanker(nn.Module):
    model_id = "mlp"

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_dim: int, n_dense: int):
        super().__init__()
        self.query_embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.item_embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.hidden1 = nn.Linear(3 * embedding_dim + n_dense, hidden_dim)
        self.hidden2 = nn.Linear(hidden_dim, hidden_dim)
        self.output = nn.Linear(hidden_dim, 1)
        self.act = nn.ReLU()

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> NeuralRanker:
        return cls(cfg.vocab_size, cfg.embedding_dim, cfg.hidden_dim, cfg.n_dense)

    @staticmethod
    def _pool(emb: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Masked mean over the token axis (padding id 0 is ignored)."""
        mask = (tokens != 0).unsqueeze(-1).to(emb.dtype)
        return (emb * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def features(self, query_tokens, item_tokens, dense) -> torch.Tensor:
        """The MLP input: [q, i, q*i, dense]."""
        q = self._pool(self.query_embedding(query_tokens), query_tokens)
        i = self._pool(self.item_embedding(item_tokens), item_tokens)
        return torch.cat([q, i, q * i, dense], dim=-1)

    def embed(self, query_tokens, item_tokens, dense) -> torch.Tensor:
        """Penultimate representation (used by embedding-space methods such as KNN-Shapley)."""
        h = self.act(self.hidden1(self.features(query_tokens, item_tokens, dense)))
        return self.act(self.hidden2(h))

    def forward(self, query_tokens, item_tokens, dense) -> torch.Tensor:
        return self.output(self.embed(query_tokens, item_tokens, dense)).squeeze(-1)


def build_ranker(cfg: TrainConfig, pretrained: bool = True) -> nn.Module:
    """The ranker ``cfg.model`` names, untrained (``pretrained=False``: without reading any
    pre-trained weights, for a state dict to be loaded into)."""
    if cfg.model == "mlp":
        return NeuralRanker.from_config(cfg)
    if cfg.model == "minilm_cross":
        from sie.model.cross_encoder import CrossEncoderRanker

        return CrossEncoderRanker.from_config(cfg, pretrained=pretrained)
    raise ValueError(f"unknown train.model {cfg.model!r}; known: mlp, minilm_cross")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but torch.cuda.is_available() is False")
    return torch.device(name)
