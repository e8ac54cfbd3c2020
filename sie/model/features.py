"""Turn `samples` rows (or holdout pairs) into the tensors the ranker reads.

Text is tokenised by lower-casing and splitting on non-alphanumerics; tokens are
hashed (crc32) into ``vocab_size - 1`` buckets, id 0 being padding. Hashing keeps the
vocabulary fixed across days, so a model and its scores never depend on which day
first saw a token.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from sie.config import TrainConfig
from sie.schemas import DENSE_FEATURES

_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall((text or "").lower())


def hash_tokens(texts: pd.Series | list[str], max_len: int, vocab_size: int) -> np.ndarray:
    """Padded [N, max_len] int64 array of hashed token ids (0 = padding).

    Each distinct text is tokenised once (a day's millions of impressions repeat a few thousand
    queries and titles): the rows are gathered from the distinct texts' rows.
    """
    texts = texts if isinstance(texts, pd.Series) else pd.Series(list(texts), dtype=object)
    codes, distinct = pd.factorize(texts.fillna(""), sort=False)
    table = np.zeros((len(distinct), max_len), dtype=np.int64)
    cache: dict[str, int] = {}
    buckets = vocab_size - 1
    for row, text in enumerate(distinct):
        for col, tok in enumerate(tokenize(text)[:max_len]):
            tid = cache.get(tok)
            if tid is None:
                tid = cache[tok] = 1 + zlib.crc32(tok.encode()) % buckets
            table[row, col] = tid
    return table[codes] if len(codes) else np.zeros((0, max_len), dtype=np.int64)


@dataclass
class SampleTensors:
    """Model inputs for N samples, in a fixed order (``sample_id[i]`` is row i)."""

    # the ranker's two token inputs (:func:`token_inputs`): hashed query / title tokens for the
    # MLP; the (query, title) pair's word-piece ids / segment ids for the cross-encoder
    query_tokens: torch.Tensor  # [N, Lq] int64
    item_tokens: torch.Tensor  # [N, Li] int64
    dense: torch.Tensor  # [N, n_dense] float32
    click: torch.Tensor  # [N] float32 in {0, 1}
    label: torch.Tensor  # [N] int64 graded 0..3
    group: torch.Tensor  # [N] int64: query request index (for per-query metrics / pairwise losses)
    sample_id: np.ndarray  # [N] str
    # [N] int64 client / session indices (group-aware importance); None where the frame has no ids
    client: torch.Tensor | None = None
    session: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.click.shape[0])

    def subset(self, index: np.ndarray | torch.Tensor) -> SampleTensors:
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return SampleTensors(
            self.query_tokens[idx],
            self.item_tokens[idx],
            self.dense[idx],
            self.click[idx],
            self.label[idx],
            self.group[idx],
            self.sample_id[idx.numpy()],
            None if self.client is None else self.client[idx],
            None if self.session is None else self.session[idx],
        )

    def inputs(self, device: torch.device | str = "cpu", index: slice | torch.Tensor | None = None):
        """(query_tokens, item_tokens, dense) for ``index`` on ``device``."""
        sel = slice(None) if index is None else index
        return (
            self.query_tokens[sel].to(device, non_blocking=True),
            self.item_tokens[sel].to(device, non_blocking=True),
            self.dense[sel].to(device, non_blocking=True),
        )


def encode_frame(
    df: pd.DataFrame,
    cfg: TrainConfig,
    *,
    query_col: str = "query_text",
    item_col: str = "item_title",
    group_col: str = "query_id",
) -> SampleTensors:
    """Encode a samples-like frame. Missing dense features / labels become 0."""
    n = len(df)
    dense = np.zeros((n, len(DENSE_FEATURES)), dtype=np.float32)
    for j, name in enumerate(DENSE_FEATURES):
        if name in df:
            dense[:, j] = df[name].fillna(0.0).to_numpy(dtype=np.float32)
    click = df["click"].to_numpy(dtype=np.float32) if "click" in df else np.zeros(n, np.float32)
    label = df["label"].to_numpy(dtype=np.int64) if "label" in df else np.zeros(n, np.int64)
    group = pd.factorize(df[group_col])[0].astype(np.int64) if group_col in df else np.zeros(n, np.int64)
    sid = df["sample_id"].to_numpy(dtype=object) if "sample_id" in df else np.arange(n).astype(str).astype(object)
    first, second = token_inputs(df[query_col].fillna(""), df[item_col].fillna(""), cfg)
    return SampleTensors(
        torch.from_numpy(first),
        torch.from_numpy(second),
        torch.from_numpy(dense),
        torch.from_numpy(click),
        torch.from_numpy(label),
        torch.from_numpy(group),
        sid,
        group_index(df, ["client_id"]),
        group_index(df, ["client_id", "session_id"]),  # session ids are only unique within a client
    )


def token_inputs(queries: pd.Series, titles: pd.Series, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """The ranker's two token inputs: hashed query and title tokens (mlp), or the pair's
    word-piece and segment ids (minilm_cross, sie.model.cross_encoder)."""
    if cfg.model == "mlp":
        return (
            hash_tokens(queries, cfg.max_query_tokens, cfg.vocab_size),
            hash_tokens(titles, cfg.max_item_tokens, cfg.vocab_size),
        )
    from sie.model.cross_encoder import encode_pairs

    return encode_pairs(list(queries), list(titles), cfg.transformer.max_tokens)


def group_index(df: pd.DataFrame, columns: list[str]) -> torch.Tensor | None:
    """[N] int64 index of each row's group by ``columns``; a row with a null id is a group of its own.

    None when the frame lacks a column (e.g. the judged holdout, which has no clients).
    """
    if not all(c in df for c in columns):
        return None
    codes, uniques = pd.MultiIndex.from_frame(df[columns]).factorize()
    codes = codes.astype(np.int64)
    unknown = df[columns].isna().any(axis=1).to_numpy()
    codes[unknown] = len(uniques) + np.arange(int(unknown.sum()))
    return torch.from_numpy(codes)
