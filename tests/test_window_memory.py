"""The compact window (token rows per distinct text, int32 indices, Arrow sample ids, each split
encoded from the frame's rows) gives the trainer and every estimator exactly the values of the
dense encoding it replaced: the reference below is that encoding, kept here as it was."""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch
from fixtures import tiny_config

from sie.importance.base import ScoringContext, checked_scores, get_estimator
from sie.model.features import SampleTensors, TokenRows, encode_frame, group_index, token_inputs, tokenize
from sie.model.training import predict, train_ranker
from sie.model.window import (
    ITEM_FEATURES,
    QUERY_FEATURES,
    TRAIN_FRAME_COLUMNS,
    WINDOW_BATCH_COLUMNS,
    WINDOW_KEY_COLUMNS,
    LatestFeatures,
    TrainingWindow,
    WindowEncoder,
    WindowFeatures,
    is_validation,
    window_order,
)
from sie.schemas import DENSE_FEATURES
from sie.selection.holdout import holdout_tensors
from sie.steps.window import sorted_columns
from sie.store import lean_pandas

# ---- the dense encoding as it was (the reference) ---------------------------------------------


def reference_hash_tokens(texts: pd.Series, max_len: int, vocab_size: int) -> np.ndarray:
    out = np.zeros((len(texts), max_len), dtype=np.int64)
    for row, text in enumerate(texts.fillna("")):
        for col, tok in enumerate(tokenize(text)[:max_len]):
            out[row, col] = 1 + zlib.crc32(tok.encode()) % (vocab_size - 1)
    return out


def reference_group_index(df: pd.DataFrame, columns: list[str]) -> torch.Tensor | None:
    if not all(c in df for c in columns):
        return None
    codes, uniques = pd.MultiIndex.from_frame(df[columns]).factorize()
    codes = codes.astype(np.int64)
    unknown = df[columns].isna().any(axis=1).to_numpy()
    codes[unknown] = len(uniques) + np.arange(int(unknown.sum()))
    return torch.from_numpy(codes)


def reference_encode(df: pd.DataFrame, cfg, group_col: str = "query_id") -> SampleTensors:
    n = len(df)
    dense = np.zeros((n, len(DENSE_FEATURES)), dtype=np.float32)
    for j, name in enumerate(DENSE_FEATURES):
        if name in df:
            dense[:, j] = df[name].fillna(0.0).to_numpy(dtype=np.float32)
    click = df["click"].to_numpy(dtype=np.float32) if "click" in df else np.zeros(n, np.float32)
    label = df["label"].to_numpy(dtype=np.int64) if "label" in df else np.zeros(n, np.int64)
    group = pd.factorize(df[group_col])[0].astype(np.int64) if group_col in df else np.zeros(n, np.int64)
    sid = df["sample_id"].to_numpy(dtype=object) if "sample_id" in df else np.arange(n).astype(str).astype(object)
    return SampleTensors(
        torch.from_numpy(reference_hash_tokens(df["query_text"], cfg.max_query_tokens, cfg.vocab_size)),
        torch.from_numpy(reference_hash_tokens(df["item_title"], cfg.max_item_tokens, cfg.vocab_size)),
        torch.from_numpy(dense),
        torch.from_numpy(click),
        torch.from_numpy(label),
        torch.from_numpy(group),
        sid,
        reference_group_index(df, ["client_id"]),
        reference_group_index(df, ["client_id", "session_id"]),
    )


def reference_split(frame: pd.DataFrame, cfg) -> tuple[SampleTensors, SampleTensors, pd.DataFrame]:
    mask = is_validation(frame["query_id"])
    train_frame = frame[~mask].reset_index(drop=True)
    return reference_encode(train_frame, cfg), reference_encode(frame[mask].reset_index(drop=True), cfg), train_frame


# ---- a samples-like window frame: repeated texts, nulls in every id / text / feature ------------


def window_frame(n_requests: int = 90, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    queries = ["red shoe", "Blue-Bag 2", "", None, "green hat classic wide brim summer", "hat"]
    titles = ["red shoe classic", "blue bag", None, "green hat", "a b c d e f g h i j", "hat hat hat"]
    rows = []
    for r in range(n_requests):
        ds = f"2026-11-{18 + r % 3}"
        client = None if r % 11 == 0 else f"c{r % 7}"
        session = None if r % 13 == 0 else f"s{r % 5}"
        query = queries[rng.integers(len(queries))]
        for k in range(int(rng.integers(1, 8))):
            rows.append(
                {
                    "sample_id": f"{r:03d}{k}x",
                    "sample_ds": ds,
                    "query_id": f"q{r}",
                    "client_id": client,
                    "session_id": session,
                    # ties within a day, and some missing
                    "request_ts": None if r % 17 == 3 else pd.Timestamp(f"{ds}T{r % 5:02d}:00:00Z"),
                    "query_text": query,
                    "item_id": f"i{rng.integers(12)}",
                    "item_title": titles[rng.integers(len(titles))],
                    "click": int(rng.random() < 0.3),
                    "label": int(rng.integers(0, 4)),
                    **{f: (None if rng.random() < 0.1 else float(rng.normal())) for f in DENSE_FEATURES},
                }
            )
    frame = pa.Table.from_pylist(rows).sort_by([("sample_ds", "ascending"), ("sample_id", "ascending")])
    return lean_pandas(frame)  # Arrow-backed strings, as load_window reads them


def assert_same_values(new: SampleTensors, ref: SampleTensors) -> None:
    """What every reader sees: the model inputs (dense int64 rows), labels, groups and ids."""
    assert len(new) == len(ref)
    for got, want in zip(new.inputs(), ref.inputs(), strict=True):
        assert got.dtype == want.dtype and torch.equal(got, want)
    index = torch.arange(len(ref)).flip(0)[::2]
    for got, want in zip(new.inputs("cpu", index), ref.inputs("cpu", index), strict=True):
        assert torch.equal(got, want)
    for name in ("dense", "click", "label", "group", "client", "session"):
        got, want = getattr(new, name), getattr(ref, name)
        assert (got is None) == (want is None), name
        if want is not None:
            assert torch.equal(got.to(want.dtype), want), name
    assert list(new.sample_id) == list(ref.sample_id)


# ---- the tests ------------------------------------------------------------------------------------


def test_encoding_matches_the_dense_reference_whole_and_by_rows():
    cfg = tiny_config().train
    frame = window_frame()
    new = encode_frame(frame, cfg)
    assert isinstance(new.query_tokens, TokenRows) and new.query_tokens.codes.dtype == torch.int32
    assert_same_values(new, reference_encode(frame, cfg))
    rows = np.flatnonzero(np.arange(len(frame)) % 3 != 1)
    assert_same_values(
        encode_frame(frame, cfg, rows=rows), reference_encode(frame.iloc[rows].reset_index(drop=True), cfg)
    )
    # a subset keeps the compact form, with the same values as the reference's subset
    pick = np.array([5, 0, 7, 7, 2])
    assert isinstance(new.subset(pick).item_tokens, TokenRows)
    assert_same_values(new.subset(pick), reference_encode(frame, cfg).subset(pick))


def test_group_index_matches_multiindex_factorize_with_null_ids():
    frame = window_frame(seed=3)
    for columns in (["client_id"], ["client_id", "session_id"]):
        assert torch.equal(group_index(frame, columns).long(), reference_group_index(frame, columns))
        as_objects = frame.astype({c: object for c in columns})
        assert torch.equal(group_index(as_objects, columns).long(), reference_group_index(as_objects, columns))
    assert group_index(frame[["session_id"]], ["client_id"]) is None


def test_window_split_matches_encoding_each_part_of_the_frame():
    cfg = tiny_config().train
    frame = window_frame(seed=1)
    ref_train, ref_validation, ref_train_frame = reference_split(frame, cfg)
    consumed = frame.copy()
    window = TrainingWindow.split("2026-11-20", consumed, cfg)
    assert window.days == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert set(consumed.columns) <= set(TRAIN_FRAME_COLUMNS)  # the frame's other columns freed as read
    assert_same_values(window.train, ref_train)
    assert_same_values(window.validation, ref_validation)
    for column in window.train_frame:
        pd.testing.assert_series_equal(window.train_frame[column], ref_train_frame[column])
    assert list(window.validation_frame["sample_id"]) == list(ref_validation.sample_id)
    # the holdout's features from the window's lookup, as from the whole frame
    holdout = pd.DataFrame(
        {
            "query_text": ["red shoe", "hat", "unseen query"],
            "item_id": ["i1", "i5", "i99"],
            "item_title": ["red shoe classic", "hat hat hat", "x"],
            "grade": [3, 0, 1],
        }
    )
    got = holdout_tensors(holdout, window.holdout_features, cfg)
    want = holdout_tensors(holdout, reference_latest_features(frame), cfg)
    assert torch.equal(got.dense, want.dense) and torch.equal(got.label, want.label)


def test_sorted_columns_is_arrows_sort():
    table = pa.table({"ds": ["b", "a", "b", "a"] * 3, "sample_id": [str(k % 5) for k in range(12)], "x": range(12)})
    keys = [("ds", "ascending"), ("sample_id", "ascending")]
    assert sorted_columns(table, pc.sort_indices(table, sort_keys=keys)).equals(table.sort_by(keys))


def reference_latest_features(frame: pd.DataFrame) -> WindowFeatures:
    """The holdout's lookup as pandas computed it on the whole frame (before it was streamed)."""
    latest = frame[["sample_ds", "request_ts", "item_id", "query_text", *ITEM_FEATURES, *QUERY_FEATURES]]
    latest = latest.sort_values(["sample_ds", "request_ts"])
    return WindowFeatures(
        items=latest.groupby("item_id")[list(ITEM_FEATURES)].last(),
        queries=latest.groupby("query_text")[list(QUERY_FEATURES)].last(),
    )


@pytest.mark.parametrize("seed", [0, 4])
def test_latest_features_by_batches_match_pandas_on_the_whole_frame(seed):
    frame = window_frame(n_requests=150, seed=seed)
    want = reference_latest_features(frame)
    latest = LatestFeatures()
    order = np.random.default_rng(seed).permutation(len(frame))  # batches in any order
    for rows in np.array_split(order, 9):
        latest.add(frame.iloc[rows].reset_index(drop=True))
    got = latest.result()
    for name in ("items", "queries"):
        # keys whose every value is null are left out (the holdout joins them as 0 either way)
        expected = getattr(want, name).dropna(how="all")
        actual = getattr(got, name).loc[expected.index]
        assert len(getattr(got, name)) == len(expected), name
        pd.testing.assert_frame_equal(actual, expected, check_index_type=False, check_names=False)


def ordered_keys(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The frame's keys in window order (as load_window reads them), and each frame row's place there."""
    table = pa.Table.from_pandas(frame[["sample_ds", *WINDOW_KEY_COLUMNS]], preserve_index=False)
    order = window_order(table).to_numpy()
    places = np.empty(len(order), dtype=np.int64)
    places[order] = np.arange(len(order))
    return lean_pandas(table.take(order)), places


@pytest.mark.parametrize("model", ["mlp", "minilm_cross"])
def test_window_encoded_by_batches_in_any_order_is_the_split_of_the_whole_frame(model):
    """What load_window does: keys whole, in window order; the other columns in batches of shuffled rows."""
    cfg = dataclasses.replace(tiny_config().train, model=model)
    frame = window_frame(n_requests=100, seed=5)
    keys, places = ordered_keys(frame)
    encoder = WindowEncoder("2026-11-20", keys, cfg)
    for rows in np.array_split(np.random.default_rng(1).permutation(len(frame)), 7):
        encoder.add(frame[["sample_ds", *WINDOW_BATCH_COLUMNS]].iloc[rows].reset_index(drop=True), places[rows])
    streamed = encoder.finish()
    whole = TrainingWindow.split("2026-11-20", frame.copy(), cfg)
    assert streamed.days == whole.days
    for part in ("train", "validation"):
        assert_same_values(getattr(streamed, part), getattr(whole, part))
    pd.testing.assert_frame_equal(streamed.train_frame, whole.train_frame)
    pd.testing.assert_frame_equal(streamed.validation_frame, whole.validation_frame)
    pd.testing.assert_frame_equal(streamed.holdout_features.items, whole.holdout_features.items)
    pd.testing.assert_frame_equal(streamed.holdout_features.queries, whole.holdout_features.queries)


def test_a_window_missing_rows_or_out_of_order_is_refused():
    frame = window_frame(n_requests=60)
    keys, places = ordered_keys(frame)
    encoder = WindowEncoder("2026-11-20", keys, tiny_config().train)
    encoder.add(frame.iloc[:-1], places[:-1])
    with pytest.raises(ValueError, match="rows encoded for"):
        encoder.finish()
    with pytest.raises(ValueError, match="not in window order"):
        WindowEncoder("2026-11-20", frame[["sample_ds", *WINDOW_KEY_COLUMNS]], tiny_config().train)


@pytest.mark.parametrize("objective", ["pointwise", "listwise"])
def test_training_and_scores_are_bit_identical_to_the_dense_encoding(objective):
    cfg = tiny_config(objective=objective, epochs=2, batch_size=32)
    frame = window_frame(n_requests=120, seed=2)
    window = TrainingWindow.split("2026-11-20", frame.copy(), cfg.train)
    ref_train, ref_validation, _ = reference_split(frame, cfg.train)
    runs = {}
    for name, (train, validation) in {
        "compact": (window.train, window.validation),
        "dense": (ref_train, ref_validation),
    }.items():
        result = train_ranker(train, cfg.train, seed=0)
        ctx = ScoringContext.from_training(cfg, result, train, validation)
        methods = ["loss", "aum", "grad_norm", "tracin", "knn_shapley", "loss@client"]
        runs[name] = (result, {m: checked_scores(get_estimator(m, cfg), ctx) for m in methods})
        runs[name] += (predict(result.model, validation),)
    (compact, compact_scores, compact_pred), (dense, dense_scores, dense_pred) = runs["compact"], runs["dense"]
    assert np.array_equal(compact.dynamics_loss, dense.dynamics_loss)
    assert np.array_equal(compact.dynamics_logit, dense.dynamics_logit)
    assert np.array_equal(compact_pred, dense_pred)
    for method, scores in compact_scores.items():
        assert np.array_equal(scores, dense_scores[method]), method


def test_cross_encoder_pairs_encoded_once_per_distinct_pair():
    from sie.model.cross_encoder import encode_pairs

    cfg = dataclasses.replace(tiny_config().train, model="minilm_cross")
    queries = pd.Series(["red shoe", "hat", "red shoe", "", "hat"])
    titles = pd.Series(["red shoe classic", "green hat", "red shoe classic", "bag", "blue bag"])
    ids, segments = token_inputs(queries, titles, cfg)
    assert len(ids.table) == 4  # one row per distinct (query, title) pair
    want_ids, want_segments = encode_pairs(list(queries), list(titles), cfg.transformer.max_tokens)
    assert torch.equal(ids.dense(), torch.from_numpy(want_ids))
    assert torch.equal(segments.dense(), torch.from_numpy(want_segments))
