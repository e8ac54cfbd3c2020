"""The score step and its in-memory scoring context against a warehouse with hand-written samples (no Spark)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from sie.config import SieConfig
from sie.schemas import DENSE_FEATURES, SAMPLES, sample_id
from sie.store import Warehouse, lean_pandas

WORDS = "red blue shoe shirt phone case cable lamp desk chair mug pen".split()


def _samples_frame(ds: str, n_requests: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_requests):
        qid = f"{ds}-q{r}"
        query = " ".join(rng.choice(WORDS, size=2))
        for pos in range(6):
            item = f"item{rng.integers(0, 80)}"
            title = " ".join(rng.choice(WORDS, size=4))
            overlap = len(set(query.split()) & set(title.split()))
            click = int(rng.random() < 0.05 + 0.3 * overlap)
            row = {
                "sample_id": sample_id(qid, f"{item}-{pos}"),
                "run_id": "test",
                "query_id": qid,
                "client_id": "c",
                "session_id": f"s{r}",
                "request_ts": datetime(2024, 1, 1, tzinfo=UTC),
                "query_text": query,
                "item_id": item,
                "item_title": title,
                "position": pos,
                "click": click,
                "add_to_cart": 0,
                "purchase": 0,
                "label": click,
                "dwell_time": 0.0,
            }
            row.update({f: float(rng.normal()) for f in DENSE_FEATURES})
            rows.append(row)
    return _conform(pd.DataFrame(rows))


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill any other columns of the samples schema with neutral values of their type."""
    for f in SAMPLES.schema:
        if f.name in frame:
            continue
        if pa.types.is_list(f.type):
            source = {"query_tokens": "query_text", "item_tokens": "item_title"}.get(f.name)
            frame[f.name] = [t.split() for t in frame[source]] if source else [[] for _ in range(len(frame))]
        elif pa.types.is_string(f.type):
            frame[f.name] = ""
        elif pa.types.is_integer(f.type):
            frame[f.name] = 0
        elif pa.types.is_floating(f.type):
            frame[f.name] = 0.0
        else:
            frame[f.name] = None
    return frame[SAMPLES.columns]


@pytest.fixture
def small_cfg(tmp_path):
    return SieConfig.load(
        {
            "warehouse": str(tmp_path / "wh"),
            "train": {
                "vocab_size": 128,
                "embedding_dim": 8,
                "hidden_dim": 16,
                "epochs": 3,
                "batch_size": 64,
                "window_days": 2,
                "device": "cpu",
            },
            "importance": {"batch_size": 128, "knn_max_validation": 50},
        }
    )


def test_score_step_publishes_every_default_method(small_cfg):
    from sie.ds import Ds
    from sie.steps import daily
    from sie.steps.models import load_model
    from sie.steps.scoring import read_cost, read_scores, scoring_context
    from sie.steps.window import load_window

    wh = Warehouse.from_config(small_cfg)
    for k, ds in enumerate(["2024-01-01", "2024-01-02"]):
        frame = _samples_frame(ds, 60, seed=k)
        wh.write_day(ds, {"samples": pa.Table.from_pandas(frame, preserve_index=False)}, run_id=f"fixture-{ds}")
    ds = Ds("2024-01-02")
    meta = daily.train(small_cfg, ds)

    window = load_window(small_cfg, ds)
    ctx, train_frame = scoring_context(small_cfg, window, load_model(small_cfg, ds)), window.train_frame
    assert len(ctx.train) == meta["n_train"] and len(ctx.validation) == meta["n_validation"] > 0
    assert ctx.n_checkpoints == 3
    assert not set(ctx.train.sample_id) & set(ctx.validation.sample_id)

    scored = daily.score_all(small_cfg, ds, small_cfg.importance.methods)
    for method, result in scored.items():
        cost = result.cost
        assert cost["n"] == len(ctx.train) and cost["seconds"] >= 0
        assert read_cost(small_cfg, ds, method)["method"] == method
        # what was published is what was computed (read back aligned with the window)
        np.testing.assert_array_equal(read_scores(small_cfg, window, method), result.scores)
    scores = wh.read_table("importance_scores", {"ds": [ds]}).to_pandas()
    assert set(scores["method"]) == set(small_cfg.importance.methods)
    for method, part in scores.groupby("method"):
        assert len(part) == len(train_frame), method
        assert part["sample_id"].is_unique and np.isfinite(part["score"]).all()
        assert (part["model_version"] == meta["model_version"]).all()
    # re-scoring replaces the partition exactly
    daily.score(small_cfg, ds, "random")
    again = wh.read_table("importance_scores", {"ds": [ds]}).to_pandas()
    assert len(again) == len(scores)
    json.loads(json.dumps(cost))  # the cost record is plain JSON


def _two_days_trained(cfg) -> str:
    from sie.ds import Ds
    from sie.steps import daily

    wh = Warehouse.from_config(cfg)
    for k, ds in enumerate(["2024-01-01", "2024-01-02"]):
        frame = _samples_frame(ds, 60, seed=k)
        wh.write_day(ds, {"samples": pa.Table.from_pandas(frame, preserve_index=False)}, run_id=f"fixture-{ds}")
    daily.train(cfg, Ds("2024-01-02"))
    return Ds("2024-01-02")


def _assert_same_window(saved, fresh) -> None:
    assert saved.days == fresh.days and saved.n_validation == fresh.n_validation
    pd.testing.assert_frame_equal(saved.train_frame, fresh.train_frame)
    pd.testing.assert_frame_equal(saved.validation_frame, fresh.validation_frame)
    pd.testing.assert_frame_equal(saved.holdout_features.items, fresh.holdout_features.items)
    pd.testing.assert_frame_equal(saved.holdout_features.queries, fresh.holdout_features.queries)
    for part in ("train", "validation"):
        a, b = getattr(saved, part), getattr(fresh, part)
        for got, want in zip(a.inputs(), b.inputs(), strict=True):
            assert torch.equal(got, want)
        for name in ("click", "label", "group", "client", "session"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name
        if a.sample_id is not None:  # (a saved window's training ids stay on disk: the frame's are compared)
            assert list(a.sample_id) == list(b.sample_id)


def test_score_steps_read_the_window_saved_with_the_model_version(small_cfg):
    """The train step saves its encoded window; scoring reads it, not the samples' Parquet, with
    the same scores as from a window read afresh."""
    from sie.steps.scoring import score_method
    from sie.steps.window import SAVED_WINDOW, load_trained_window, load_window

    ds = _two_days_trained(small_cfg)
    wh = Warehouse.from_config(small_cfg)
    assert (wh.model_dir(ds) / SAVED_WINDOW / "source.json").exists()
    fresh = load_window(small_cfg, ds)
    for f in wh.data_files("samples"):  # the saved window needs none of the window's files
        f.path.unlink()
    with pytest.raises(Exception):
        load_window(small_cfg, ds)
    saved = load_trained_window(small_cfg, ds)
    _assert_same_window(saved, fresh)
    for method in ("loss", "aum", "tracin", "knn_shapley", "loss@client"):
        np.testing.assert_array_equal(
            score_method(small_cfg, ds, method).scores, score_method(small_cfg, ds, method, window=fresh).scores
        )


def test_a_score_step_over_the_saved_window_reads_no_id_and_writes_its_keys_in_batches(small_cfg):
    """Scoring the saved window never reads its training frame: the scores' keys come from the
    model's index in batches (of 7 rows here), in the window's training order; a derived method
    reuses published scores matched batch by batch, and scores published in another row order
    are still matched by key."""
    from sie.steps.models import load_model
    from sie.steps.scoring import publish_scores, read_scores, score_method
    from sie.steps.window import load_trained_window, load_window

    ds = _two_days_trained(small_cfg)
    small_cfg.train.read_batch_rows = 7
    window, loaded = load_trained_window(small_cfg, ds), load_model(small_cfg, ds)
    loss = score_method(small_cfg, ds, "loss", window, loaded)
    publish_scores(small_cfg, loss)
    client = score_method(small_cfg, ds, "loss@client", window, loaded)
    publish_scores(small_cfg, client)
    assert client.cost["reused"] == ["loss"]
    assert window.loaded_train_frame is None and window.train.sample_id is None

    fresh, wh = load_window(small_cfg, ds), Warehouse.from_config(small_cfg)
    assert len(fresh.train) > 3 * small_cfg.train.read_batch_rows
    for method, scored in (("loss", loss), ("loss@client", client)):
        published = wh.read_table("importance_scores", {"ds": [ds], "method": [method]})
        assert published.column("sample_id").to_pylist() == fresh.train_frame["sample_id"].tolist()
        assert published.column("sample_ds").to_pylist() == fresh.train_frame["sample_ds"].tolist()
        np.testing.assert_array_equal(published.column("score").to_numpy(), scored.scores)

    published = wh.read_table("importance_scores", {"ds": [ds], "method": ["loss"]}).drop_columns(["ds", "method"])
    shuffled = published.take(np.random.default_rng(0).permutation(published.num_rows))
    wh.write_partition("importance_scores", {"ds": ds, "method": "loss"}, shuffled)
    np.testing.assert_array_equal(read_scores(small_cfg, fresh, "loss"), loss.scores)
    again = score_method(small_cfg, ds, "loss@client", window, loaded)
    assert again.cost["reused"] == ["loss"] and window.loaded_train_frame is None
    np.testing.assert_array_equal(again.scores, client.scores)


def test_published_scores_are_matched_batch_by_batch_however_the_keys_are_cut(small_cfg, tmp_path):
    """Published scores in the model's order are matched batch by batch, without the whole-table
    match, even where the keys come in batches (5 rows) other than the published ones' (7)."""
    import pyarrow.parquet as pq

    from sie.steps.models import index_batches
    from sie.steps.scoring import _aligned

    small_cfg.train.read_batch_rows = 7
    ids = [sample_id(f"q{i}", "item") for i in range(40)]
    keys = pa.table({"sample_id": ids, "sample_ds": ["2024-01-02"] * 40})
    published = keys.append_column("score", pa.array(np.arange(40, dtype=np.float64)))
    for name, value in (("run_id", "r"), ("model_version", "m"), ("model_id", "mlp")):
        published = published.append_column(name, pa.array([value] * 40))
    wh = Warehouse.from_config(small_cfg)
    wh.write_partition("importance_scores", {"ds": "2024-01-02", "method": "loss"}, published)
    index = tmp_path / "train_index.parquet"
    pq.write_table(keys, index)

    def whole():
        raise AssertionError("matched as a whole table")

    got = _aligned(small_cfg, "2024-01-02", "loss", index_batches(index, ["sample_id", "sample_ds"], 5), whole)
    np.testing.assert_array_equal(got, np.arange(40))


def test_scoring_compares_ids_only_for_a_window_not_saved_with_the_model(small_cfg):
    """The saved window and the model of one train step are one version: no id is read. Another
    version (say, the model republished between the two reads) is compared with the model's
    index row by row, and refused when one id differs or one is missing."""
    import pyarrow.parquet as pq

    from sie.steps.models import load_model
    from sie.steps.scoring import check_trained_on
    from sie.steps.window import load_trained_window

    ds = _two_days_trained(small_cfg)
    small_cfg.train.read_batch_rows = 7
    window, loaded = load_trained_window(small_cfg, ds), load_model(small_cfg, ds)
    check_trained_on(small_cfg, window, loaded)
    assert window.loaded_train_frame is None
    loaded.meta["version_id"] = "another"
    check_trained_on(small_cfg, window, loaded)
    assert window.loaded_train_frame is not None  # compared
    index = pq.read_table(loaded.index_path)
    column = index.column_names.index("sample_id")
    for change in ("one id", "one row fewer", "one row more"):
        ids = index.column("sample_id").to_pylist()
        changed = {
            "one id": index.set_column(column, "sample_id", pa.array([*ids[:-1], "other"])),
            "one row fewer": index.slice(1),
            "one row more": pa.concat_tables([index, index.slice(0, 1)]),
        }[change]
        pq.write_table(changed, loaded.index_path)
        with pytest.raises(RuntimeError, match="changed since the model was trained"):
            check_trained_on(small_cfg, window, loaded)


def test_a_shards_keys_are_read_from_the_models_index_batch_by_batch(small_cfg):
    """index_rows: the index rows at given ascending positions, read in batches of 7 rows, equal
    the whole index's; positions out of range or out of order are refused."""
    import pyarrow.parquet as pq

    from sie.steps.models import index_rows, load_model

    ds = _two_days_trained(small_cfg)
    path = load_model(small_cfg, ds).index_path
    whole = pq.read_table(path, columns=["sample_id", "sample_ds"])
    rng = np.random.default_rng(3)
    for rows in (np.arange(whole.num_rows), np.arange(5, 40), np.sort(rng.choice(whole.num_rows, 30, replace=False))):
        got = index_rows(path, ["sample_id", "sample_ds"], rows, batch_rows=7)
        assert got.equals(whole.take(rows))
    assert index_rows(path, ["sample_id"], np.arange(0), batch_rows=7).num_rows == 0
    for bad in (np.array([0, whole.num_rows]), np.array([3, 2]), np.array([4, 4])):
        with pytest.raises(IndexError, match="not ascending positions"):
            index_rows(path, ["sample_id"], bad, batch_rows=7)


def test_window_read_in_record_batches_is_the_split_of_the_whole_sorted_window(small_cfg):
    """load_window streams the non-key columns in batches of train.read_batch_rows rows, from
    days written in shuffled row order: the same window as splitting the whole sorted frame."""
    from sie.ds import Ds
    from sie.model.window import TrainingWindow
    from sie.steps.window import load_window

    wh = Warehouse.from_config(small_cfg)
    for k, ds in enumerate(["2024-01-01", "2024-01-02"]):
        frame = _samples_frame(ds, 60, seed=k).sample(frac=1.0, random_state=k)
        wh.write_day(ds, {"samples": pa.Table.from_pandas(frame, preserve_index=False)}, run_id=f"fixture-{ds}")
    small_cfg.train.read_batch_rows = 7
    streamed = load_window(small_cfg, Ds("2024-01-02"))
    whole = wh.read_table("samples").sort_by([("ds", "ascending"), ("sample_id", "ascending")])
    assert len(streamed.train) + streamed.n_validation == whole.num_rows > 10 * small_cfg.train.read_batch_rows
    frame = lean_pandas(whole).rename(columns={"ds": "sample_ds"})  # (consumes the table)
    _assert_same_window(streamed, TrainingWindow.split("2024-01-02", frame, small_cfg.train))


@pytest.mark.parametrize("change", ["republished day", "train settings"])
def test_a_saved_window_is_not_used_once_its_source_changed(small_cfg, change):
    """A window day published again (or other train settings) since training: the window is read
    afresh, so scoring refuses the stale model instead of scoring samples that are gone."""
    from sie.steps.scoring import score_method
    from sie.steps.window import load_trained_window, load_window

    ds = _two_days_trained(small_cfg)
    if change == "republished day":
        frame = _samples_frame(ds, 50, seed=7)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        Warehouse.from_config(small_cfg).write_day(ds, {"samples": table}, run_id="again")
        with pytest.raises(RuntimeError, match="changed since the model was trained"):
            score_method(small_cfg, ds, "loss")
    else:
        small_cfg.train.max_item_tokens = 7
    _assert_same_window(load_trained_window(small_cfg, ds), load_window(small_cfg, ds))
