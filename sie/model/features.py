"""Turn `samples` rows (or holdout pairs) into the tensors the ranker reads.

Text is tokenised by lower-casing and splitting on non-alphanumerics; tokens are
hashed (crc32) into ``vocab_size - 1`` buckets, id 0 being padding. Hashing keeps the
vocabulary fixed across days, so a model and its scores never depend on which day
first saw a token.

Memory per sample is what bounds a window (10M samples a day): a day repeats a few
thousand queries and titles across millions of impressions, so token rows are kept once
per distinct text (:class:`TokenRows`, 4 bytes a sample) and gathered per batch; indices
are int32 (converted per batch where torch needs int64) and sample ids stay Arrow strings.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from sie.config import TrainConfig
from sie.schemas import DENSE_FEATURES

_TOKEN = re.compile(r"[a-z0-9]+")

Rows = np.ndarray | slice | None  # a frame's rows: positions, a run of rows (no copy), or all


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall((text or "").lower())


@dataclass
class TokenRows:
    """[N, L] int64 token rows as the distinct rows (``table``) and each sample's row in it (``codes``).

    ``rows[index]`` gathers the dense rows (what a model reads, per batch); ``subset`` keeps the table.
    """

    table: torch.Tensor  # [D, L] int64 token ids of the distinct texts (or text pairs)
    codes: torch.Tensor  # [N] int32 row of ``table`` of each sample

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), int(self.table.shape[1]))

    def __getitem__(self, index: slice | torch.Tensor | np.ndarray) -> torch.Tensor:
        return self.table[self.codes[index].long()]

    def subset(self, index: torch.Tensor) -> TokenRows:
        return TokenRows(self.table, self.codes[index])

    def dense(self) -> torch.Tensor:
        """All N rows, materialised (small sets only: N × L int64)."""
        return self[:]


def token_rows(codes: np.ndarray, table: np.ndarray) -> TokenRows:
    return TokenRows(torch.from_numpy(table), torch.from_numpy(codes.astype(np.int32)))


def hash_token_rows(texts: pd.Series | list[str], max_len: int, vocab_size: int) -> TokenRows:
    """The hashed token ids of ``texts`` (0 = padding), each distinct text tokenised once."""
    texts = texts if isinstance(texts, pd.Series) else pd.Series(list(texts), dtype=object)
    codes, distinct = pd.factorize(texts.fillna(""), sort=False)
    return token_rows(codes, hash_table(distinct, max_len, vocab_size))


def hash_table(distinct: Sequence[str], max_len: int, vocab_size: int) -> np.ndarray:
    """[D, max_len] int64 hashed token ids of each of the ``distinct`` texts (0 = padding)."""
    table = np.zeros((len(distinct), max_len), dtype=np.int64)
    cache: dict[str, int] = {}
    buckets = vocab_size - 1
    for row, text in enumerate(distinct):
        for col, tok in enumerate(tokenize(text)[:max_len]):
            tid = cache.get(tok)
            if tid is None:
                tid = cache[tok] = 1 + zlib.crc32(tok.encode()) % buckets
            table[row, col] = tid
    return table


def hash_tokens(texts: pd.Series | list[str], max_len: int, vocab_size: int) -> np.ndarray:
    """Padded [N, max_len] int64 array of hashed token ids (0 = padding)."""
    return hash_token_rows(texts, max_len, vocab_size).dense().numpy()


Tokens = torch.Tensor | TokenRows  # dense [N, L] int64 rows, or the same rows as a table + codes


def take_rows(tokens: Tokens, index: torch.Tensor) -> Tokens:
    """The rows ``index`` of ``tokens``, in the same representation."""
    return tokens.subset(index) if isinstance(tokens, TokenRows) else tokens[index]


@dataclass
class SampleTensors:
    """Model inputs for N samples, in a fixed order (``sample_id[i]`` is row i)."""

    # the ranker's two token inputs (:func:`token_inputs`): hashed query / title tokens for the
    # MLP; the (query, title) pair's word-piece ids / segment ids for the cross-encoder. Either
    # dense [N, L] int64 tensors or :class:`TokenRows`: read them through ``inputs``, which gathers
    # int64 rows per batch
    query_tokens: Tokens  # [N, Lq]
    item_tokens: Tokens  # [N, Li]
    dense: torch.Tensor  # [N, n_dense] float32
    click: torch.Tensor  # [N] float32 in {0, 1}
    label: torch.Tensor  # [N] int32 graded 0..3 (int64 where built by hand)
    group: torch.Tensor  # [N] int32: query request index (for per-query metrics / pairwise losses)
    # [N] str: any array indexable by positions (an Arrow string array from a frame); None where the
    # ids stayed on disk (a saved window's training part, sie.steps.window: scoring never reads them)
    sample_id: np.ndarray | None
    # [N] int32 client / session indices (group-aware importance); None where the frame has no ids
    client: torch.Tensor | None = None
    session: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.click.shape[0])

    def subset(self, index: np.ndarray | torch.Tensor) -> SampleTensors:
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return SampleTensors(
            take_rows(self.query_tokens, idx),
            take_rows(self.item_tokens, idx),
            self.dense[idx],
            self.click[idx],
            self.label[idx],
            self.group[idx],
            None if self.sample_id is None else self.sample_id[idx.numpy()],
            None if self.client is None else self.client[idx],
            None if self.session is None else self.session[idx],
        )

    def inputs(self, device: torch.device | str = "cpu", index: slice | torch.Tensor | None = None):
        """(query_tokens, item_tokens, dense) for ``index`` on ``device``: dense int64 token rows."""
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
    rows: Rows = None,
    query_col: str = "query_text",
    item_col: str = "item_title",
    group_col: str = "query_id",
) -> SampleTensors:
    """Encode a samples-like frame (its ``rows`` positions only, when given: the same as encoding
    ``df.iloc[rows]``, without copying the frame). Missing dense features / labels become 0."""
    column = _column_reader(df, rows)
    return SampleTensors(
        *token_inputs(column(query_col).fillna(""), column(item_col).fillna(""), cfg),
        torch.from_numpy(dense_features(df, rows)),
        **key_tensors(df, rows, group_col),
    )


def dense_features(df: pd.DataFrame, rows: Rows = None) -> np.ndarray:
    """[N, n_dense] float32 of the frame's dense features (at ``rows``); missing values and columns are 0."""
    column = _column_reader(df, rows)
    dense = np.zeros((_n_rows(df, rows), len(DENSE_FEATURES)), dtype=np.float32)
    for j, name in enumerate(DENSE_FEATURES):
        if name in df:
            dense[:, j] = column(name).fillna(0.0).to_numpy(dtype=np.float32)
    return dense


def key_tensors(df: pd.DataFrame, rows: Rows = None, group_col: str = "query_id") -> dict:
    """The :class:`SampleTensors` fields read from the frame's key columns (at ``rows``): click,
    label, group, sample_id, client, session; missing clicks / labels become 0."""
    column, n = _column_reader(df, rows), _n_rows(df, rows)
    return {
        "click": torch.from_numpy(
            column("click").to_numpy(dtype=np.float32) if "click" in df else np.zeros(n, np.float32)
        ),
        "label": torch.from_numpy(column("label").to_numpy(dtype=np.int32) if "label" in df else np.zeros(n, np.int32)),
        "group": torch.from_numpy(
            pd.factorize(column(group_col))[0].astype(np.int32) if group_col in df else np.zeros(n, np.int32)
        ),
        "sample_id": sample_ids(column("sample_id")) if "sample_id" in df else np.arange(n).astype(str).astype(object),
        "client": group_index(df, ["client_id"], rows),
        "session": group_index(df, ["client_id", "session_id"], rows),  # session ids are only unique within a client
    }


def _n_rows(df: pd.DataFrame, rows: Rows) -> int:
    return len(df) if rows is None else len(range(len(df))[rows]) if isinstance(rows, slice) else len(rows)


def _column_reader(df: pd.DataFrame, rows: Rows):
    """``name`` → the column's values at ``rows`` (one column copied at a time; a slice of Arrow
    strings is not copied)."""
    if rows is None:
        return lambda name: df[name]
    return lambda name: df[name].iloc[rows].reset_index(drop=True)


def sample_ids(ids: pd.Series) -> np.ndarray:
    """The ids as an array indexable by positions: Arrow strings stay Arrow (about 20 bytes a
    16-character id, where a Python str object is over 70)."""
    if isinstance(ids.dtype, pd.StringDtype) and ids.dtype.storage == "pyarrow":
        return ids.array
    return ids.to_numpy(dtype=object)


def token_inputs(queries: pd.Series, titles: pd.Series, cfg: TrainConfig) -> tuple[TokenRows, TokenRows]:
    """The ranker's two token inputs: hashed query and title tokens (mlp), or the pair's
    word-piece and segment ids (minilm_cross, sie.model.cross_encoder), each distinct text
    (pair) encoded once."""
    q_codes, q_distinct = pd.factorize(queries, sort=False)
    t_codes, t_distinct = pd.factorize(titles, sort=False)
    return coded_token_inputs(q_codes, np.asarray(q_distinct), t_codes, np.asarray(t_distinct), cfg)


def coded_token_inputs(
    q_codes: np.ndarray, q_distinct: np.ndarray, t_codes: np.ndarray, t_distinct: np.ndarray, cfg: TrainConfig
) -> tuple[TokenRows, TokenRows]:
    """:func:`token_inputs` of the queries ``q_distinct[q_codes]`` and titles ``t_distinct[t_codes]``
    (the texts given once each, as a streamed window collects them); texts are not null."""
    if cfg.model == "mlp":
        return (
            token_rows(q_codes, hash_table(q_distinct, cfg.max_query_tokens, cfg.vocab_size)),
            token_rows(t_codes, hash_table(t_distinct, cfg.max_item_tokens, cfg.vocab_size)),
        )
    from sie.model.cross_encoder import encode_pairs

    n_titles = max(len(t_distinct), 1)
    codes, pairs = pd.factorize(q_codes.astype(np.int64) * n_titles + t_codes, sort=False)
    q_of, t_of = np.divmod(pairs, n_titles)
    ids, segments = encode_pairs(list(q_distinct[q_of]), list(t_distinct[t_of]), cfg.transformer.max_tokens)
    return token_rows(codes, ids), token_rows(codes, segments)


def group_index(df: pd.DataFrame, columns: list[str], rows: Rows = None) -> torch.Tensor | None:
    """[N] int32 index of each row's group by ``columns`` (at ``rows``, when given); a row with a
    null id is a group of its own.

    None when the frame lacks a column (e.g. the judged holdout, which has no clients).
    Codes follow first appearance, null ids taking part as values, as ``MultiIndex.factorize``.
    """
    if not all(c in df for c in columns):
        return None
    column = _column_reader(df, rows)
    key = np.zeros(_n_rows(df, rows), dtype=np.int64)
    unknown = np.zeros(len(key), dtype=bool)
    for name in columns:  # one integer key per row: the columns' codes (null as a value) combined
        values = column(name)
        codes, distinct = pd.factorize(values, use_na_sentinel=False)
        key = key * (len(distinct) + 1) + codes
        unknown |= values.isna().to_numpy()
    codes, uniques = pd.factorize(key)
    codes = codes.astype(np.int32)
    codes[unknown] = len(uniques) + np.arange(int(unknown.sum()))
    return torch.from_numpy(codes)
