"""sie.bench.rows: the benchmark_results row vocabulary (subset / at columns instead of bracketed names)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sie.bench import rows
from sie.schemas import BENCHMARK_RESULTS
from sie.selection.grid import Cell
from sie.selection.retrain import cell_rows


def fake_truth(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Oracle truth as the runner builds it: noise_type, is_noise, matched (unmatched = 'unknown')."""
    rng = np.random.default_rng(seed)
    types = rng.choice(["none", "bot", "label_flip", "duplicate", "unknown"], size=n, p=[0.6, 0.15, 0.1, 0.1, 0.05])
    return pd.DataFrame(
        {"noise_type": types, "is_noise": np.isin(types, ["bot", "label_flip"]), "matched": types != "unknown"}
    )


def test_rows_frame_has_the_schema_columns_and_dtypes():
    frame = rows.rows_frame(
        [
            rows.row("loss", "noise_roc_tpr", 0.5, at=0.02, seed=1, n_train=10),
            rows.row("loss", "noise_auroc", 0.7, subset="bot", seed=1, n_train=10),
            {"method": "random", "keep_ratio": 0.5, "seed": 2, "metric": "ndcg_at_10", "value": 0.3},
        ]
    )
    assert list(frame.columns) == BENCHMARK_RESULTS.columns
    expected = {
        "keep_ratio": "float64",
        "at": "float64",
        "value": "float64",
        "train_seconds": "float64",
        "score_seconds": "float64",
        "seed": "Int64",
        "n_train": "Int64",
        "subset": "string",
    }
    assert {c: str(frame[c].dtype) for c in expected} == expected
    assert frame["subset"].isna().tolist() == [True, False, True]
    assert frame["at"].tolist()[0] == 0.02 and frame["at"].isna().tolist() == [False, True, True]
    # it converts to the table's arrow schema once dataset/ds/created_at are set (as assemble does)
    frame = frame.assign(dataset="synthetic", ds="2026-11-01", created_at=pd.Timestamp("2026-11-02", tz="UTC"))
    table = pa.Table.from_pandas(frame, preserve_index=False).cast(BENCHMARK_RESULTS.schema)
    assert table.schema.names == BENCHMARK_RESULTS.columns
    # an empty row list still gives every column
    assert list(rows.rows_frame([]).columns) == BENCHMARK_RESULTS.columns


def test_rows_frame_round_trips_through_parquet(tmp_path):
    frame = rows.rows_frame([rows.row("loss", "noise_auroc", 0.7, subset="bot"), rows.row("loss", "noise_ap", 0.4)])
    frame.to_parquet(tmp_path / "r.parquet", index=False)
    again = rows.rows_frame(pd.read_parquet(tmp_path / "r.parquet").to_dict("records"))
    pd.testing.assert_frame_equal(frame, again)


def test_noise_rows_put_structure_in_subset_and_at():
    truth = fake_truth()
    scores = np.random.default_rng(1).random(len(truth)) - 0.5 * truth["is_noise"].to_numpy()
    out = rows.rows_frame(
        rows.noise_rows("loss", scores, truth, roc_points=11, seed=3, n_train=len(truth), score_seconds=1.5)
    )
    assert set(out["method"]) == {"loss"}
    assert not out["metric"].str.contains(r"\[").any()
    assert (out["seed"] == 3).all() and (out["n_train"] == len(truth)).all() and (out["score_seconds"] == 1.5).all()

    roc = out[(out["metric"] == "noise_roc_tpr") & out["subset"].isna()]
    assert len(roc) == 11
    assert roc["at"].tolist() == pytest.approx(np.linspace(0, 1, 11).tolist())
    assert roc["value"].is_monotonic_increasing and roc["value"].iloc[-1] == 1.0
    # and one ROC curve per noise type against clean samples
    by_type = out[(out["metric"] == "noise_roc_tpr") & out["subset"].notna()]
    assert sorted(set(by_type["subset"])) == ["bot", "duplicate", "label_flip"] and len(by_type) == 3 * 11
    for _, g in by_type.groupby("subset"):
        assert g["value"].is_monotonic_increasing and g["value"].iloc[-1] == 1.0

    auroc = out[out["metric"] == "noise_auroc"]
    overall = auroc[auroc["subset"].isna()]
    assert len(overall) == 1 and overall["at"].isna().all()
    assert overall["value"].iloc[0] > 0.6  # low scores flag the noise
    # one AUROC per noise type against clean samples; none of 'none' or 'unknown'
    assert sorted(auroc["subset"].dropna()) == ["bot", "duplicate", "label_flip"]
    assert len(out[out["metric"] == "noise_ap"]) == 1

    mean = out[out["metric"] == "score_pct_mean"]
    quant = out[out["metric"] == "score_pct_quantile"]
    matched_types = sorted(set(truth.loc[truth["matched"], "noise_type"]))
    assert sorted(mean["subset"]) == matched_types and mean["at"].isna().all()
    assert len(quant) == len(matched_types) * len(rows.SCORE_QUANTILES)
    for _, g in quant.groupby("subset"):
        assert g["at"].tolist() == list(rows.SCORE_QUANTILES)
        assert g["value"].is_monotonic_increasing and g["value"].between(0, 1).all()


def test_noise_rows_match_the_metrics_directly():
    from sie.bench.metrics import noise_detection, rank_percentile

    truth = fake_truth(seed=2)
    scores = np.random.default_rng(2).random(len(truth))
    out = pd.DataFrame(rows.noise_rows("random", scores, truth, roc_points=5, seed=0, n_train=1, score_seconds=0.0))
    m = truth["matched"].to_numpy()
    det = noise_detection(scores[m], truth["is_noise"].to_numpy()[m], 5)
    assert out[(out["metric"] == "noise_auroc") & out["subset"].isna()]["value"].iloc[0] == det["auroc"]
    assert out[out["metric"] == "noise_ap"]["value"].iloc[0] == det["ap"]
    pct = rank_percentile(scores)[m & (truth["noise_type"] == "bot").to_numpy()]
    bot = out[out["subset"] == "bot"]
    assert bot[bot["metric"] == "score_pct_mean"]["value"].iloc[0] == pytest.approx(pct.mean())
    median = bot[(bot["metric"] == "score_pct_quantile") & (bot["at"] == 0.5)]
    assert median["value"].iloc[0] == pytest.approx(np.median(pct))


def test_run_rows_and_settings():
    class Sim:
        seed, n_items, n_users, n_intents, requests_per_day, impressions_per_request = 7, 10, 20, 5, 300, 8
        bot_rate, accidental_click_rate, clickbait_item_rate, duplicate_event_rate, label_flip_rate = (
            0.05,
            0.02,
            0.1,
            0.01,
            0.03,
        )

    class Train:
        epochs, batch_size, lr, embedding_dim, hidden_dim, vocab_size, seed = 4, 256, 0.01, 16, 32, 1000, 3

    settings = rows.run_settings(Sim, Train)
    assert settings["simulate.requests_per_day"] == 300 and settings["train.epochs"] == 4
    assert len(settings) == len(rows.SIM_KEYS) + len(rows.TRAIN_KEYS)
    out = rows.rows_frame(
        rows.run_rows(
            days=2,
            n_train=1000,
            n_validation=100,
            train_seconds=8.0,
            epochs=4,
            seed=3,
            settings=settings,
            noise_counts={"none": 800, "bot": 150, "unknown": 50},
            noise_rate=0.15,
            oracle_coverage=0.95,
        )
    )
    assert (out["method"] == rows.RUN_METHOD).all() and out["keep_ratio"].isna().all() and out["at"].isna().all()
    assert (out["seed"] == 3).all() and (out["n_train"] == 1000).all() and (out["train_seconds"] == 8.0).all()
    scalar = out[out["subset"].isna()].set_index("metric")["value"]
    assert scalar.to_dict() == {
        "days": 2,
        "n_train": 1000,
        "n_validation": 100,
        "epoch_seconds": 2.0,
        "train_seconds": 8.0,
        "noise_rate": 0.15,
        "oracle_coverage": 0.95,
    }
    setting = out[out["metric"] == "setting"].set_index("subset")["value"]
    assert setting["simulate.bot_rate"] == 0.05 and setting["train.batch_size"] == 256
    counts = out[out["metric"] == "n_samples"].set_index("subset")["value"]
    assert counts.to_dict() == {"none": 800, "bot": 150, "unknown": 50}
    # without an oracle: no noise rows
    plain = rows.run_rows(
        days=1, n_train=5, n_validation=1, train_seconds=1.0, epochs=1, seed=0, settings={"train.epochs": 1}
    )
    assert [r["metric"] for r in plain] == [
        "days",
        "n_train",
        "n_validation",
        "epoch_seconds",
        "train_seconds",
        "setting",
    ]
    assert rows.setting_rows({"train.lr": 0.1})[0] == {
        "method": "_run",
        "metric": "setting",
        "subset": "train.lr",
        "at": None,
        "value": 0.1,
    }


def test_cost_and_cell_rows():
    cost = rows.rows_frame(
        rows.cost_rows(
            "loss", score_seconds=3.0, samples_per_second=100.0, reference_epoch_seconds=1.5, seed=1, n_train=300
        )
    )
    assert cost.set_index("metric")["value"].to_dict() == {
        "score_seconds": 3.0,
        "samples_per_second": 100.0,
        "reference_epoch_seconds": 1.5,
        "cost_vs_epoch": 2.0,
    }
    assert (cost["score_seconds"] == 3.0).all() and cost["subset"].isna().all()
    metrics = {"ndcg_at_10": 0.4, "mrr": 0.5, "n_queries": 30.0, "n_train": 150, "train_seconds": 2.5}
    cell = rows.rows_frame(cell_rows(Cell("loss", 0.5, 2), metrics, score_seconds=3.0))
    assert cell["metric"].tolist() == ["ndcg_at_10", "mrr", "n_queries"]
    assert (cell["keep_ratio"] == 0.5).all() and (cell["n_train"] == 150).all() and (cell["train_seconds"] == 2.5).all()


def test_per_query_cell_rows_and_power_rows_pair_with_random():
    """A mapping metric gives one row per query (subset); power rows pair each query with random."""
    from scipy import stats

    rng = np.random.default_rng(4)
    queries = [f"q{i}" for i in range(40)]
    base = dict(zip(queries, rng.random(40)))
    gain = dict(zip(queries, rng.normal(0.05, 0.1, 40)))
    frames = []
    for seed in (0, 1):
        for method, shift in (("random", {}), ("loss", gain)):
            per_query = {q: v + shift.get(q, 0.0) for q, v in base.items()}
            metrics = {"ndcg_at_10": 0.5, "query_ndcg_at_10": per_query, "n_train": 10, "train_seconds": 1.0}
            frames.append(rows.rows_frame(cell_rows(Cell(method, 0.3, seed), metrics)))
    cells = pd.concat(frames, ignore_index=True).assign(world_seed=7, model_seed=0, fold=rows.NO_FOLD)
    per_query = cells[cells["metric"] == "query_ndcg_at_10"]
    assert len(per_query) == 2 * 2 * 40 and set(per_query["subset"]) == set(queries)
    power = rows.rows_frame(rows.power_rows(per_query, alpha=0.05, power=0.8))
    got = power[power["method"] == "loss"].set_index("metric")["value"]
    diffs = np.array([gain[q] for q in queries])
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert got["ndcg_query_diff"] == pytest.approx(diffs.mean())
    assert got["ndcg_mde"] == pytest.approx(z * diffs.std(ddof=1) / np.sqrt(40))
    assert got["ndcg_query_p_value"] == pytest.approx(stats.ttest_1samp(diffs, 0).pvalue)
    assert (power.loc[power["method"] == "loss", "at"] == 0.3).all()
    assert power.set_index(["method", "metric"])["value"][("_run", "n_holdout_queries")] == 40


def test_pool_folds_weights_ranking_metrics_by_held_out_queries():
    frames = []
    for fold, (ndcg, n_queries, auc) in enumerate([(0.4, 10.0, 0.6), (0.7, 30.0, 0.8)]):
        metrics = {"ndcg_at_10": ndcg, "n_queries": n_queries, "click_auc": auc, "n_train": 100, "train_seconds": 1.0}
        frame = rows.rows_frame(cell_rows(Cell("loss", 0.5, 0), metrics))
        frames.append(frame.assign(world_seed=7, model_seed=0, fold=fold))
    pooled = rows.pool_folds(pd.concat(frames, ignore_index=True)).set_index("metric")["value"]
    assert pooled.to_dict() == pytest.approx({"ndcg_at_10": 0.625, "n_queries": 40.0, "click_auc": 0.7})
