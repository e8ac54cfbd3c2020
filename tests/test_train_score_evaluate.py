"""The train → score → retrain/evaluate chain on hand-built sample partitions (no Spark)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sie.config import SieConfig
from sie.schemas import DENSE_FEATURES, SAMPLES, sample_id
from sie.store import Warehouse

COLORS = ["red", "blue", "green", "black", "white"]
KINDS = ["shoe", "shirt", "bag", "hat"]


def _items():
    return pd.DataFrame(
        [{"item_id": f"i{c}{k}", "title": f"{COLORS[c]} {KINDS[k]} classic"} for c in range(5) for k in range(4)]
    )


def _samples(ds: str, seed: int, n_requests: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_requests):
        c, k = rng.integers(0, 5), rng.integers(0, 4)
        qid = f"{ds}-q{r}"
        shown = rng.choice(20, size=8, replace=False)
        for pos, item in enumerate(shown, 1):
            ic, ik = divmod(int(item), 4)
            rel = int(ic == c) + int(ik == k)
            click = int(rng.random() < [0.03, 0.3, 0.8][rel] / pos**0.3)
            rows.append(
                {
                    "sample_id": sample_id(qid, f"i{ic}{ik}"),
                    "run_id": "test",
                    "query_id": qid,
                    "client_id": f"c{r % 30}",
                    "session_id": f"s{r % 40}",
                    "request_ts": pd.Timestamp(f"{ds}T12:00:00Z"),
                    "query_text": f"{COLORS[c]} {KINDS[k]}",
                    "item_id": f"i{ic}{ik}",
                    "item_title": f"{COLORS[ic]} {KINDS[ik]} classic",
                    "position": pos,
                    "click": click,
                    "add_to_cart": 0,
                    "purchase": 0,
                    "label": click,
                    "dwell_time": 10.0 * click,
                    **{f: 0.0 for f in DENSE_FEATURES},
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture
def small_warehouse(cfg: SieConfig):
    wh = Warehouse.from_config(cfg)
    for n, ds in enumerate(["2026-11-19", "2026-11-20"]):
        frame = pa.Table.from_pandas(_samples(ds, n), preserve_index=False)
        for field in SAMPLES.schema:  # columns this chain does not read stay null
            if field.name not in frame.column_names:
                frame = frame.append_column(field.name, pa.nulls(frame.num_rows, field.type))
        wh.write_day(ds, {"samples": frame}, run_id=f"fixture-{ds}")
    wh.catalog_path.parent.mkdir(parents=True)
    _items().to_parquet(wh.catalog_path)
    holdout = [
        {
            "query_text": f"{COLORS[c]} {KINDS[k]}",
            "item_id": f"i{ic}{ik}",
            "grade": int((ic == c) + (ik == k)) + int(ic == c and ik == k),
        }
        for c in range(5)
        for k in range(4)
        for ic in range(5)
        for ik in range(4)
    ]
    wh.holdout_path.parent.mkdir(parents=True)
    pd.DataFrame(holdout).to_parquet(wh.holdout_path)
    return wh


def test_train_score_evaluate_chain(cfg, small_warehouse):
    from sie.ds import Ds
    from sie.steps import daily

    cfg = SieConfig.load(
        {
            "warehouse": cfg.warehouse,
            "train": {"epochs": 3, "window_days": 2, "batch_size": 128},
            "importance": {"methods": ["random", "loss", "grad_norm"]},
        }
    )
    ds = Ds("2026-11-20")
    meta = daily.train(cfg, ds)
    assert meta["window"] == ["2026-11-19", "2026-11-20"]
    assert meta["n_train"] + meta["n_validation"] == 2 * 120 * 8
    assert (small_warehouse.model_dir("2026-11-20") / "checkpoints" / "epoch-002.pt").exists()
    for method in cfg.importance.methods:
        cost = daily.score(cfg, ds, method)
        assert cost["n"] == meta["n_train"]
    scores = small_warehouse.read_table("importance_scores").to_pandas()
    assert set(scores["method"]) == {"random", "loss", "grad_norm"}
    assert scores.groupby("method")["sample_id"].nunique().eq(meta["n_train"]).all()
    assert (scores.loc[scores["method"] == "grad_norm", "score"] >= 0).all()
    checked = daily.validate(cfg, ds, "importance_scores")["importance_scores"]  # one method's partition at a time
    assert checked["success"] and checked["rows"] == 3 * meta["n_train"]
    assert {r["part"] for r in checked["results"]} == {"method=random", "method=loss", "method=grad_norm"}

    out = daily.evaluate(cfg, ds)  # the scores are read back from the table
    results = small_warehouse.read_table("benchmark_results").to_pandas()
    assert out["rows"] == len(results)
    ndcg = results[results["metric"] == "ndcg_at_10"].set_index(["method", "keep_ratio"])["value"]
    assert set(ndcg.index) == {("full", 1.0), ("random", 0.5), ("loss", 0.5), ("grad_norm", 0.5)}
    # the ranker learns the colour/kind structure: far better than chance on the holdout
    assert ndcg[("full", 1.0)] > 0.7
    n_train = results.drop_duplicates("method").set_index("method")["n_train"]
    assert n_train["full"] == meta["n_train"] and n_train["loss"] == int(np.ceil(0.5 * meta["n_train"]))
    assert set(results["run_id"]) == {"daily-2026-11-20"}
    # `random` is the seeded baseline, as in the benchmark: no scores needed
    assert results.loc[results["method"] == "random", "score_seconds"].eq(0).all()


def test_scoring_without_a_model_is_a_clear_error(cfg, small_warehouse):
    from sie.steps import daily

    with pytest.raises(FileNotFoundError, match="sie train --ds 2026-11-20"):
        daily.score(cfg, "2026-11-20", "loss")


def test_a_day_that_failed_validation_is_never_read(cfg, small_warehouse):
    """The ingest suites gate use: a failed day leaves the window; a failed ds cannot be trained, scored or evaluated."""
    import json

    from sie.ds import Ds
    from sie.steps import daily
    from sie.validate import failed_suites, forget_results

    cfg = SieConfig.load({"warehouse": cfg.warehouse, "train": {"epochs": 1, "window_days": 2, "batch_size": 256}})
    verdict = small_warehouse.validation_dir("samples", "2026-11-19") / "result.json"
    verdict.parent.mkdir(parents=True)
    verdict.write_text(json.dumps({"success": False}))
    assert failed_suites(cfg, "2026-11-19", ("raw_events", "samples")) == ["samples"]
    meta = daily.train(cfg, Ds("2026-11-20"))
    assert meta["window"] == ["2026-11-20"]  # 2026-11-19 left out
    verdict.write_text(json.dumps({"success": True}))
    assert daily.train(cfg, Ds("2026-11-20"))["window"] == ["2026-11-19", "2026-11-20"]

    failed = small_warehouse.validation_dir("raw_events", "2026-11-20") / "result.json"
    failed.parent.mkdir(parents=True)
    failed.write_text(json.dumps({"success": False}))
    for step in (daily.train, daily.evaluate, lambda c, d: daily.score(c, d, "loss")):
        with pytest.raises(ValueError, match="ds=2026-11-20 failed validation"):
            step(cfg, Ds("2026-11-20"))
    forget_results(cfg, "2026-11-20", ("raw_events", "samples"))  # what a re-ingest does
    assert not failed.exists() and failed_suites(cfg, "2026-11-20", ("raw_events",)) == []


def test_projected_gradients_are_stored_on_disk_while_scoring_and_removed_after(cfg, small_warehouse):
    """`trak` keeps its [N, k] projected gradients in ScoringContext.scratch: the scoring step hands
    out memory-mapped files in the staging folder (removed afterwards); the scores equal in-memory ones."""
    from sie.ds import Ds
    from sie.importance.trak import trak_scores
    from sie.steps import daily
    from sie.steps.models import load_model
    from sie.steps.scoring import score_method, scoring_context
    from sie.steps.window import load_window

    cfg = SieConfig.load({"warehouse": cfg.warehouse, "train": {"epochs": 2, "window_days": 1, "batch_size": 256}})
    ds = Ds("2026-11-20")
    daily.train(cfg, ds)
    seen = []

    import sie.steps.scoring as scoring

    real = scoring.scratch_files

    def watching(wh):  # the real factory, noting the files it creates
        class Watch:
            def __enter__(self):
                self.inner = real(wh)
                factory = self.inner.__enter__()

                def scratch(name, shape, dtype):
                    out = factory(name, shape, dtype)
                    seen.append((out.filename, out.shape))
                    return out

                return scratch

            def __exit__(self, *exc):
                return self.inner.__exit__(*exc)

        return Watch()

    scoring.scratch_files = watching
    try:
        on_disk = score_method(cfg, ds, "trak").scores
    finally:
        scoring.scratch_files = real
    window = load_window(cfg, ds)
    in_memory = trak_scores(scoring_context(cfg, window, load_model(cfg, ds)))
    np.testing.assert_allclose(on_disk, in_memory, rtol=1e-6, atol=1e-12)
    assert seen and all(shape[0] == len(window.train) for _, shape in seen)
    assert all(str(small_warehouse.staging_dir) in str(path) for path, _ in seen)
    assert not any(Path(path).exists() for path, _ in seen)


def test_evaluate_budget_subsamples_the_window_and_stops_at_its_time(cfg, small_warehouse):
    from sie.ds import Ds
    from sie.steps import daily

    base = {
        "warehouse": cfg.warehouse,
        "train": {"epochs": 1, "window_days": 2, "batch_size": 128},
        "importance": {"methods": ["random", "loss"]},
    }
    ds = Ds("2026-11-20")
    n_train = daily.train(SieConfig.load(base), ds)["n_train"]
    daily.score_all(SieConfig.load(base), ds, ["random", "loss"])

    capped = SieConfig.load(base | {"evaluate": {"max_train_samples": 500}})
    out = daily.evaluate(capped, ds)
    results = small_warehouse.read_table("benchmark_results").to_pandas()
    n = results.drop_duplicates("method").set_index("method")["n_train"]
    assert n_train > 500 and out["n_train"] == n["full"] == 500  # every cell selects within one subsample
    assert n["loss"] == n["random"] == 250 and out["cells_skipped"] == 0

    # a spent time budget skips the cells left, and says how many
    timed_out = SieConfig.load(base | {"evaluate": {"max_seconds": 1e-9}})
    out = daily.evaluate(timed_out, ds)
    assert (out["cells"], out["cells_skipped"]) == (1, 2)
    results = small_warehouse.read_table("benchmark_results").to_pandas()
    assert set(results["method"]) == {"full"}
