"""A benchmark run on hand-built sample partitions (no Spark, no Airflow): the grid, resumable
cells, the published benchmark_results partition and the report rebuilt from the table alone."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sie.config import SieConfig
from sie.schemas import DENSE_FEATURES, SAMPLES, sample_id
from sie.store import Warehouse

COLORS = ["red", "blue", "green", "black", "white"]
KINDS = ["shoe", "shirt", "bag", "hat"]
DAYS = ["2026-11-19", "2026-11-20"]


def _day(ds: str, seed: int, n_requests: int = 60, bot_rate: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(samples, oracle): clicks follow colour/kind relevance; ``bot_rate`` of requests are bots clicking at random."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for r in range(n_requests):
        c, k = rng.integers(0, 5), rng.integers(0, 4)
        qid = f"{ds}-q{r}"
        bot = rng.random() < bot_rate
        for pos, item in enumerate(rng.choice(20, size=8, replace=False), 1):
            ic, ik = divmod(int(item), 4)
            rel = int(ic == c) + int(ik == k)
            p = 0.5 if bot else [0.02, 0.3, 0.9][rel]
            click = int(rng.random() < p)
            sid = sample_id(qid, f"i{ic}{ik}")
            rows.append(
                {
                    "sample_id": sid,
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
            truth.append({"sample_id": sid, "noise_type": "bot" if bot else "none", "is_noise": bool(bot)})
    return pd.DataFrame(rows), pd.DataFrame(truth)


def _land(run, bot_rate: float = 0.2) -> None:
    """What prepare() would produce: samples, catalog, holdout, oracle, and the day markers.

    The data depend on the world seed; with ``simulate.holdout_folds`` = k the holdout is the
    judgments of fold ``holdout_fold`` of the 20 queries (every k-th query).
    """
    wh = Warehouse.from_config(run.data_cfg)
    sim = run.data_cfg.simulate
    for n, ds in enumerate(run.days):
        samples, oracle = _day(ds, n + 100 * (sim.seed - 7), bot_rate=bot_rate)
        frame = pa.Table.from_pandas(samples, preserve_index=False)
        for field in SAMPLES.schema:
            if field.name not in frame.column_names:
                frame = frame.append_column(field.name, pa.nulls(frame.num_rows, field.type))
        wh.write_day(ds, {"samples": frame}, run_id=f"fixture-{ds}")
        wh.oracle_path(ds).parent.mkdir(parents=True, exist_ok=True)
        oracle.to_parquet(wh.oracle_path(ds))
        run.state(f"day-{ds}.json").parent.mkdir(parents=True, exist_ok=True)
        run.state(f"day-{ds}.json").write_text("{}")
    wh.catalog_path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        [{"item_id": f"i{c}{k}", "title": f"{COLORS[c]} {KINDS[k]} classic"} for c in range(5) for k in range(4)]
    ).to_parquet(wh.catalog_path)
    holdout = [
        {
            "query_text": f"{COLORS[c]} {KINDS[k]}",
            "item_id": f"i{ic}{ik}",
            "grade": int(ic == c) + int(ik == k) + int(ic == c and ik == k),
        }
        for c in range(5)
        for k in range(4)
        for ic in range(5)
        for ik in range(4)
        if not sim.holdout_folds or (4 * c + k) % sim.holdout_folds == sim.holdout_fold
    ]
    wh.holdout_path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(holdout).to_parquet(wh.holdout_path)


@pytest.fixture
def bench_cfg(tmp_path):
    return SieConfig.load(
        {
            "warehouse": str(tmp_path / "warehouse"),
            "train": {
                "epochs": 2,
                "batch_size": 128,
                "vocab_size": 256,
                "embedding_dim": 8,
                "hidden_dim": 16,
                "device": "cpu",
            },
            "bench": {
                "dataset": "synthetic",
                "start": DAYS[0],
                "days": 2,
                "grid": {"methods": ["loss", "grad_norm"], "keep_ratios": [0.5, 1.0], "seeds": [0, 1]},
                "validate": False,
                "roc_points": 11,
            },
        }
    )


def test_resolve_grid_and_run_id(bench_cfg):
    from sie.bench import params_config
    from sie.bench.run import resolve

    run = resolve(bench_cfg)
    assert run.days == DAYS and run.grid.methods == ("loss", "grad_norm")
    assert run.grid.baselines == ("random", "stratified", "full") and run.grid.keep_ratios == (0.5,)
    assert run.run_id.startswith("bench-synthetic-")
    assert run.data_cfg.train.window_days == 2 and run.data_cfg.simulate.world == "synthetic"
    assert run.data_cfg.warehouse_path == bench_cfg.warehouse_path / "bench" / run.run_id / "warehouse"
    assert len(run.cells()) == 2 * (1 + 4)
    # the grid is not part of the run id (extending it reuses the run), the data settings are
    more = SieConfig.load(
        {"bench": {"grid": {"seeds": [0, 1, 2, 3], "methods": ["loss"]}}, "warehouse": bench_cfg.warehouse}
    )
    assert resolve(more).run_id == resolve(SieConfig.load({"warehouse": bench_cfg.warehouse})).run_id
    other = SieConfig.load({"simulate": {"bot_rate": 0.2}, "warehouse": bench_cfg.warehouse})
    assert resolve(other).run_id != resolve(more).run_id
    # DAG params map onto the bench section
    cfg = params_config(
        {
            "dataset": "esci",
            "days": 3,
            "methods": "loss, el2n",
            "keep_ratios": [0.2, 0.4],
            "seeds": "1,2",
            "config": {"train": {"epochs": 1}},
            "model": {"hidden_dim": 8},
        }
    )
    assert (cfg.bench.dataset, cfg.bench.days, cfg.bench.grid.methods) == ("esci", 3, ["loss", "el2n"])
    assert cfg.bench.grid.keep_ratios == [0.2, 0.4] and cfg.bench.grid.seeds == [1, 2]
    assert (cfg.train.epochs, cfg.train.hidden_dim) == (1, 8)
    with pytest.raises(ValueError, match="unknown importance methods"):
        resolve(SieConfig.load({"bench": {"grid": {"methods": ["nope"]}}}))
    with pytest.raises(ValueError, match="keep_ratios=0.0 is out of range"):
        resolve(SieConfig.load({"bench": {"grid": {"keep_ratios": [0.0]}}}))


def test_benchmark_run_resume_and_report(bench_cfg, monkeypatch):
    import sie.selection.retrain as retrain
    from sie.bench.report import build_report, load_results
    from sie.bench.run import resolve
    from sie.bench.runner import run_benchmark
    from sie.selection.grid import Cell

    run = resolve(bench_cfg)
    _land(run)
    out = run_benchmark(bench_cfg, report=False)
    assert out["cells"] == 10

    results = load_results(bench_cfg, run.run_id)
    ndcg = results[results["metric"] == "ndcg_at_10"]
    assert len(ndcg) == 10 and ndcg["value"].between(0, 1).all()
    assert set(ndcg["method"]) == {"full", "random", "stratified", "loss", "grad_norm"}
    n_train = ndcg.groupby("method")["n_train"].first()
    assert n_train["loss"] == n_train["random"] == n_train["stratified"] == int(np.ceil(0.5 * n_train["full"]))
    # per-method rows: cost and noise detection against the oracle (bots click at random: the
    # loss method should find them better than chance)
    scalars = results[results["keep_ratio"].isna() & results["subset"].isna() & results["at"].isna()]
    per_method = scalars.set_index(["method", "metric"])["value"]
    curves = results[results["keep_ratio"].isna()].set_index(["method", "metric", "subset", "at"])["value"]
    for m in ("loss", "grad_norm"):
        assert per_method[(m, "score_seconds")] >= 0 and per_method[(m, "cost_vs_epoch")] >= 0
        assert 0.0 <= per_method[(m, "noise_auroc")] <= 1.0
        # metric structure lives in columns: the ROC point at FPR 0.5, the median score percentile of bots
        roc = results[(results["method"] == m) & (results["metric"] == "noise_roc_tpr")]
        assert len(roc[roc["subset"].isna()]) == 11 and 0.5 in set(roc["at"])
        assert set(roc["subset"].dropna()) == {"bot"} and (roc["subset"] == "bot").sum() == 11  # bots vs clean
        assert (m, "score_pct_quantile", "bot", 0.5) in curves.index
    assert per_method[("loss", "noise_auroc")] > 0.55
    assert per_method[("_run", "noise_rate")] == pytest.approx(0.2, abs=0.1)
    assert ("random", "noise_auroc") in per_method.index

    # a rerun computes nothing; a lost cell is recomputed alone
    calls = []
    real = retrain.evaluate_cell
    monkeypatch.setattr(retrain, "evaluate_cell", lambda *a, **k: calls.append(1) or real(*a, **k))
    run_benchmark(bench_cfg, report=False)
    assert calls == []
    run.cell_path(Cell("loss", 0.5, 1)).unlink()
    run_benchmark(bench_cfg, report=False)
    assert len(calls) == 1
    # lost cells recomputed by parallel worker processes give the same rows
    before = pd.read_parquet(run.cell_path(Cell("random", 0.5, 0))).set_index("metric")["value"]
    for c in (Cell("random", 0.5, 0), Cell("stratified", 0.5, 1)):
        run.cell_path(c).unlink()
    run_benchmark(bench_cfg, workers=2, report=False)
    after = pd.read_parquet(run.cell_path(Cell("random", 0.5, 0))).set_index("metric")["value"]
    pd.testing.assert_series_equal(before, after)
    assert run.cell_path(Cell("stratified", 0.5, 1)).exists()

    # the report, then rebuilt from the table alone (the run's files gone)
    md = build_report(bench_cfg, run.run_id)
    folder = md.parent
    for name in (
        "report.md",
        "report.html",
        "summary.json",
        "ndcg_vs_keep.png",
        "noise_roc.png",
        "cost.png",
        "score_dist.png",
        "click_vs_keep.png",
    ):
        assert (folder / name).exists(), name
    text = md.read_text()
    assert "| method | 0.5 | 1 | noise AUROC | noise AP | cost (epochs) |" in text
    assert "stratified" in text and "Significant differences" in text
    shutil.rmtree(run.root)
    (folder / "report.md").unlink()
    assert build_report(bench_cfg).read_text() == text  # latest run by default


def _replicated_cfg(bench_cfg, **bench) -> SieConfig:
    """A small grid (4 cells per sub-run), one training epoch, one torch thread."""
    grid = {"methods": ["loss"], "keep_ratios": [0.5], "seeds": [0, 1], "baselines": ["random"]}
    tree = bench_cfg.to_dict()
    tree["train"]["epochs"] = 1
    return SieConfig.load(tree | {"bench": tree["bench"] | {"grid": grid, "torch_threads": 1, **bench}})


def test_query_k_fold_pools_every_held_out_query(bench_cfg):
    """bench.folds = 2: two sub-runs hold out complementary halves of the 20 judged queries; the
    published cells pool them (NDCG weighted by queries), with per-query power rows; without
    noise in the held-out clicks the clean-click metrics equal the raw ones."""
    from sie.bench.report import load_results
    from sie.bench.run import resolve, resolve_replicated
    from sie.bench.runner import run_benchmark

    cfg = _replicated_cfg(bench_cfg, folds=2)
    rep = resolve_replicated(cfg)
    assert [(r.world_seed, r.fold) for r, _ in rep.runs] == [(7, 0), (7, 1)]
    with pytest.raises(ValueError, match="describe several runs"):
        resolve(cfg)
    for _, run in rep.runs:
        _land(run, bot_rate=0.0)
    out = run_benchmark(cfg, report=False)
    assert out["run_id"] == rep.run_id and len(out["sub_run_ids"]) == 2

    pooled = load_results(cfg, rep.run_id)
    folds = [load_results(cfg, run.run_id) for _, run in rep.runs]
    queries = [set(f.loc[f["metric"] == "query_ndcg_at_10", "subset"]) for f in folds]
    assert len(queries[0]) == len(queries[1]) == 10 and not queries[0] & queries[1]

    def cell(frame, metric, method="loss", seed=1):
        hit = frame[(frame["metric"] == metric) & (frame["method"] == method) & (frame["seed"] == seed)]
        return hit.loc[hit["keep_ratio"] == 0.5, "value"].item()

    assert cell(pooled, "n_queries") == 20
    weighted = sum(cell(f, "ndcg_at_10") * cell(f, "n_queries") for f in folds) / 20
    assert cell(pooled, "ndcg_at_10") == pytest.approx(weighted)
    assert cell(pooled, "clean_click_auc") == pytest.approx(cell(pooled, "click_auc"))
    assert cell(pooled, "clean_click_logloss") == pytest.approx(cell(pooled, "click_logloss"))
    power = pooled[pooled["metric"] == "ndcg_mde"].set_index(["method", "at"])["value"]
    assert power[("loss", 0.5)] > 0
    run_scalars = pooled[pooled["method"] == "_run"].set_index("metric")["value"]
    assert run_scalars["n_holdout_queries"] == 20 and run_scalars["folds"] == 2


def test_replication_over_world_seeds(bench_cfg):
    """Three world seeds: one published cell per (method, keep ratio, world), the mean over cell
    seeds, so the report's CIs and paired tests run over worlds; clean clicks differ from raw."""
    from sie.bench.metrics import mean_ci
    from sie.bench.report import load_results
    from sie.bench.report.summary import summarise
    from sie.bench.run import resolve_replicated
    from sie.bench.runner import run_benchmark

    cfg = _replicated_cfg(bench_cfg, world_seeds=[7, 8, 9])
    rep = resolve_replicated(cfg)
    assert [r.world_seed for r, _ in rep.runs] == [7, 8, 9] and len({run.run_id for _, run in rep.runs}) == 3
    for _, run in rep.runs:
        _land(run)
    run_benchmark(cfg, report=False)

    pooled = load_results(cfg, rep.run_id)
    ndcg = pooled[(pooled["metric"] == "ndcg_at_10") & (pooled["keep_ratio"] == 0.5)]
    assert len(ndcg[ndcg["method"] == "loss"]) == 3 and set(ndcg["seed"]) == {0, 1, 2}
    worlds = pooled[pooled["metric"] == "replicate_world_seed"].set_index("subset")["value"]
    assert worlds.to_dict() == {"0": 7, "1": 8, "2": 9}
    for i, (_, run) in enumerate(rep.runs):  # a world's cell = the mean over its cell seeds
        own = load_results(cfg, run.run_id)
        own = own[(own["metric"] == "ndcg_at_10") & (own["method"] == "loss") & (own["keep_ratio"] == 0.5)]
        assert ndcg.loc[(ndcg["method"] == "loss") & (ndcg["seed"] == i), "value"].item() == pytest.approx(
            own["value"].mean()
        )
    summary = summarise(pooled)
    curve = summary.curves.set_index(["metric", "method", "keep_ratio"]).loc[("ndcg_at_10", "loss", 0.5)]
    mean, ci, n = mean_ci(ndcg.loc[ndcg["method"] == "loss", "value"])
    assert (curve["mean"], curve["ci"], curve["n"]) == (pytest.approx(mean), pytest.approx(ci), 3)
    comparison = summary.comparisons.set_index(["metric", "method", "keep_ratio"]).loc[("ndcg_at_10", "loss", 0.5)]
    assert comparison["n"] == 3
    clicks = pooled[pooled["keep_ratio"] == 0.5].pivot_table(index=["method", "seed"], columns="metric", values="value")
    assert (clicks["clean_click_auc"] != clicks["click_auc"]).all()


def test_dag_params_with_world_seeds_run_every_sub_run_and_publish_the_pooled_run(bench_cfg):
    """What the sie_benchmark DAG's tasks call (sie.bench.params_*): replication params are passed
    through; plan / prepare / train / score / cell work through every sub-run, publish pools them."""
    from sie.bench import params_plan, params_publish, params_runs, runner
    from sie.bench.report import load_results
    from sie.bench.run import resolve_replicated
    from sie.selection.grid import Cell

    params = {"world_seeds": [7, 8], "config": _replicated_cfg(bench_cfg).to_dict()}
    rep = resolve_replicated(_replicated_cfg(bench_cfg, world_seeds=[7, 8]))
    runs = params_runs(params)
    assert [run.run_id for run in runs] == [run.run_id for _, run in rep.runs]
    plan = params_plan(params)
    assert plan["run_id"] == rep.run_id and plan["sub_runs"] == [run.run_id for run in runs]
    for run in runs:
        _land(run)
        runner.prepare(run)
        runner.train(run)
    for method in plan["methods"]:  # one mapped task each, each working through the sub-runs
        [runner.score(run, method) for run in params_runs(params)]
    for cell in plan["cells"]:
        [runner.run_cell(run, Cell(**cell)) for run in params_runs(params)]
    out = params_publish(params)
    assert out["run_id"] == rep.run_id and out["sub_run_ids"] == plan["sub_runs"]
    pooled = load_results(bench_cfg, rep.run_id)
    worlds = pooled[pooled["metric"] == "replicate_world_seed"].set_index("subset")["value"]
    assert worlds.to_dict() == {"0": 7, "1": 8}
    for run in runs:  # every sub-run published on its own too
        assert len(load_results(bench_cfg, run.run_id)) > 0


def test_proxy_selection_retrains_the_transformer_on_the_small_rankers_choice(bench_cfg):
    """bench.retrain_model: the MLP is trained and scores; every cell retrains the cross-encoder
    on the data those scores keep. Rows name both models; the run id differs from the MLP-only run."""
    from sie.bench.report import load_results
    from sie.bench.run import resolve
    from sie.bench.runner import run_benchmark

    cfg = SieConfig.load(
        bench_cfg.to_dict()
        | {
            "bench": bench_cfg.to_dict()["bench"]
            | {
                "retrain_model": "minilm_cross",
                "grid": {"methods": ["loss"], "keep_ratios": [0.5], "seeds": [0], "baselines": ["full"]},
            }
        }
    )
    cfg.train.transformer.layers, cfg.train.transformer.epochs, cfg.train.transformer.max_tokens = 1, 1, 16
    run = resolve(cfg)
    assert run.run_id != resolve(bench_cfg).run_id
    assert (run.score_model, run.retrain_model) == ("mlp", "minilm_cross")
    _land(run)
    run_benchmark(cfg, report=False)

    rows = load_results(cfg, run.run_id)
    ndcg = rows[rows["metric"] == "ndcg_at_10"].set_index("method")
    assert set(ndcg.index) == {"full", "loss"}
    assert (ndcg["model_id"] == "minilm_cross").all()
    assert ndcg.loc["loss", "score_model_id"] == "mlp" and pd.isna(ndcg.loc["full", "score_model_id"])
    assert ndcg.loc["loss", "n_train"] == int(np.ceil(0.5 * ndcg.loc["full", "n_train"]))
    scored = rows[(rows["method"] == "loss") & (rows["metric"] == "score_seconds")]
    assert set(scored["model_id"]) == {"mlp"}
