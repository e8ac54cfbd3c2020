"""sie.bench.report: summaries, tables and the written report, from a synthetic benchmark_results frame."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sie.bench import rows
from sie.bench.report import summarise, tables
from sie.selection.grid import Cell
from sie.selection.retrain import cell_rows

RUN_ID = "bench-synthetic-test"
RATIOS = (0.3, 0.6)
SEEDS = (0, 1, 2)
METHODS = ("grad_norm", "loss")


def _cell_value(metric: str, method: str, ratio: float, seed: int) -> float:
    """Cell metrics: `loss` is exactly random + 0.1 NDCG@10 in every seed; the others vary."""
    base = {"ndcg_at_10": 0.5, "mrr": 0.6, "click_auc": 0.7, "click_logloss": 0.45}[metric] + 0.05 * ratio
    jitter = np.random.default_rng([seed, int(ratio * 100), len(metric)]).normal(0, 0.01)
    random_value = base + jitter
    if method == "random":
        return random_value
    if method == "loss":
        return random_value + 0.1 if metric == "ndcg_at_10" else random_value + 0.02
    if method == "full":
        return base + 0.2
    if method == "stratified":
        return random_value - 0.005 * (seed + 1)
    return random_value + np.random.default_rng([seed, 7, len(metric)]).normal(0, 0.02)  # grad_norm


def fake_truth(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    types = rng.choice(["none", "bot", "label_flip", "duplicate", "unknown"], size=n, p=[0.6, 0.15, 0.1, 0.1, 0.05])
    return pd.DataFrame(
        {"noise_type": types, "is_noise": np.isin(types, ["bot", "label_flip"]), "matched": types != "unknown"}
    )


def _cells() -> list[dict]:
    out = []
    for seed in SEEDS:
        grid = [("full", 1.0)] + [(m, r) for r in RATIOS for m in ("random", "stratified", *METHODS)]
        for method, ratio in grid:
            metrics = {m: _cell_value(m, method, ratio, seed) for m in ("ndcg_at_10", "mrr", "click_auc")}
            metrics |= {"click_logloss": _cell_value("click_logloss", method, ratio, seed), "n_queries": 40.0}
            metrics |= {"n_train": int(1000 * ratio), "train_seconds": 2.0 * ratio}
            out += cell_rows(Cell(method, ratio, seed), metrics, score_seconds=0.0)
    return out


def _method_rows(truth: pd.DataFrame) -> list[dict]:
    out = []
    rng = np.random.default_rng(5)
    for k, method in enumerate(METHODS):
        seconds = 0.5 * (k + 1)
        cost = {"samples_per_second": 1000 / seconds, "reference_epoch_seconds": 2.0}
        out += rows.cost_rows(method, score_seconds=seconds, seed=0, n_train=len(truth), **cost)
        scores = rng.random(len(truth)) - (0.2 + 0.2 * k) * truth["is_noise"].to_numpy()
        out += rows.noise_rows(method, scores, truth, roc_points=21, seed=0, n_train=len(truth), score_seconds=seconds)
    scores = np.random.default_rng(11).random(len(truth))  # the chance reference
    out += rows.noise_rows("random", scores, truth, roc_points=21, seed=0, n_train=len(truth), score_seconds=0.0)
    return out


def _run_rows(truth: pd.DataFrame) -> list[dict]:
    settings = {
        f"simulate.{k}": v for k, v in zip(rows.SIM_KEYS, (7, 300, 200, 60, 300, 8, 0.05, 0.02, 0.1, 0.01, 0.03))
    }
    settings |= {f"train.{k}": v for k, v in zip(rows.TRAIN_KEYS, (4, 256, 0.01, 16, 32, 1000, 3))}
    return rows.run_rows(
        days=2,
        n_train=len(truth),
        n_validation=120,
        train_seconds=8.0,
        epochs=4,
        seed=3,
        settings=settings,
        noise_counts=truth["noise_type"].value_counts().to_dict(),
        noise_rate=float(truth["is_noise"].mean()),
        oracle_coverage=float(truth["matched"].mean()),
    )


def results_frame() -> pd.DataFrame:
    """A run's rows as runner.assemble publishes them."""
    truth = fake_truth()
    frame = rows.rows_frame(_run_rows(truth) + _method_rows(truth) + _cells())
    frame["dataset"] = "synthetic"
    frame["ds"] = "2026-11-02"
    frame["created_at"] = datetime(2026, 11, 3, tzinfo=UTC)
    return frame


@pytest.fixture(scope="module")
def summary():
    return summarise(results_frame().assign(run_id=RUN_ID))


def test_summary_grid_and_run_info(summary):
    s = summary
    assert s.baselines == ["full", "random", "stratified"] and s.methods == ["grad_norm", "loss"]
    assert s.ratios == [0.3, 0.6, 1.0] and s.seeds == [0, 1, 2]
    assert (s.run_id, s.dataset, s.ds) == (RUN_ID, "synthetic", "2026-11-02")
    assert s.run["days"] == 2 and s.run["epoch_seconds"] == 2.0 and "setting" not in s.run
    assert s.settings["simulate.requests_per_day"] == 300 and s.settings["train.epochs"] == 4
    assert sum(s.noise_counts.values()) == 500 and set(s.noise_counts) >= {"none", "bot", "unknown"}


def test_curves_and_paired_comparison_by_hand(summary):
    s = summary
    ndcg = s.curves[s.curves["metric"] == "ndcg_at_10"].set_index(["method", "keep_ratio"])
    # every method's curve ends at 1.0 with the full-data model
    for m in ("random", "stratified", *METHODS, "full"):
        assert ndcg.loc[(m, 1.0), "mean"] == pytest.approx(0.5 + 0.05 + 0.2) and ndcg.loc[(m, 1.0), "n"] == 3
    random_03 = [_cell_value("ndcg_at_10", "random", 0.3, seed) for seed in SEEDS]
    assert ndcg.loc[("random", 0.3), "mean"] == pytest.approx(np.mean(random_03))
    from scipy import stats

    half = stats.t.ppf(0.975, 2) * np.std(random_03, ddof=1) / np.sqrt(3)
    assert ndcg.loc[("random", 0.3), "ci"] == pytest.approx(half)

    comp = s.comparisons[s.comparisons["metric"] == "ndcg_at_10"].set_index(["method", "keep_ratio"])
    assert set(comp.index) == {(m, r) for m in ("stratified", *METHODS) for r in RATIOS}
    loss = comp.loc[("loss", 0.3)]
    assert loss["diff"] == pytest.approx(0.1) and loss["diff_ci"] == pytest.approx(0.0, abs=1e-12)
    assert loss["p_value"] == 0.0 and loss["p_holm"] == 0.0 and loss["n"] == 3
    strat = comp.loc[("stratified", 0.6)]
    assert strat["diff"] == pytest.approx(-0.01)  # -0.005 * (1 + 2 + 3) / 3
    # Holm over the three methods at one ratio: never below the raw p-value
    assert (comp["p_holm"] >= comp["p_value"] - 1e-15).all()


def test_headline_and_comparison_tables(summary):
    s = summary
    head = tables.headline_table(s).set_index("method")
    assert list(head.index) == ["full", "random", "stratified", "grad_norm", "loss"]
    assert list(head.columns) == ["0.3", "0.6", "1", "noise AUROC", "noise AP", "cost (epochs)"]
    assert head.loc["full", "0.3"] == "" and head.loc["full", "1"] == "0.7500 ± 0.0000"
    assert head.loc["loss", "0.3"].endswith("▲†")  # better than random in every seed
    assert head.loc["loss", "cost (epochs)"] == "0.50" and head.loc["random", "cost (epochs)"] == "0"
    assert head.loc["grad_norm", "cost (epochs)"] == "0.25"
    assert head.loc["full", "noise AUROC"] == "—"
    comp = tables.comparison_table(s)
    first = comp.iloc[0]
    assert (first["keep ratio"], first["method"]) == ("0.3", "loss")
    assert first["Δ NDCG@10 vs random"] == "+0.1000 ± 0.0000" and first["significant"] == "yes (Holm)"
    sentences = tables.significance_sentences(s)
    assert sentences[0].startswith("keep 0.3: **loss** is better than random by +0.1000 NDCG@10")
    assert tables.best_text(s).startswith("Best mean NDCG@10 per keep ratio: keep 0.3: loss")


def test_noise_cost_and_scale(summary):
    s = summary
    noise = tables.noise_table(s)
    assert list(noise.columns) == ["method", "AUROC", "AP", "AUROC[bot]", "AUROC[duplicate]", "AUROC[label_flip]"]
    assert noise["method"].tolist() == ["loss", "grad_norm", "random"]  # best AUROC first
    assert float(noise.iloc[0]["AUROC"]) > float(noise.iloc[-1]["AUROC"])
    cost = tables.cost_table(s)
    assert cost["method"].tolist() == ["grad_norm", "loss"]
    assert cost["× one training epoch"].tolist() == ["0.250", "0.500"] and cost["samples/s"].tolist() == [
        "2,000",
        "1,000",
    ]
    text = tables.scale_text(s)
    assert "2 day(s); 300 requests/day; 500 training samples (120 held-out clicks)" in text
    assert "ranker: 4 epochs, batch 256, one epoch = 2.00s" in text
    assert "Simulator noise knobs: bot_rate 0.05, accidental_click_rate 0.02" in text
    # the ROC curve and distributions come from the `at` column
    loss = s.roc[s.roc["method"] == "loss"]
    assert loss["fpr"].tolist() == pytest.approx(np.linspace(0, 1, 21).tolist())
    assert set(s.dist["metric"]) == {"score_pct_mean", "score_pct_quantile"}
    q = s.dist[(s.dist["method"] == "loss") & (s.dist["metric"] == "score_pct_quantile")]
    assert sorted(set(q["at"])) == list(rows.SCORE_QUANTILES)


def test_no_oracle_and_no_noise_rows():
    frame = results_frame()
    frame = frame[~frame["metric"].isin(["noise_auroc", "noise_ap", "noise_roc_tpr", "score_pct_mean"])]
    frame = frame[~frame["metric"].isin(["score_pct_quantile", "n_samples", "noise_rate", "oracle_coverage"])]
    s = summarise(frame.assign(run_id=RUN_ID))
    assert s.noise.empty and s.roc.empty and s.dist.empty
    assert tables.noise_table(s).empty and "noise AUROC" not in tables.headline_table(s)
    assert "Label noise" not in tables.scale_text(s)


def test_build_report_writes_the_folder(cfg, caplog):
    import logging

    from sie.bench.report import build_report, latest_run_id, load_results
    from sie.store import Warehouse

    frame = results_frame()
    wh = Warehouse(cfg.warehouse_path)
    wh.write_partition("benchmark_results", {"run_id": RUN_ID}, pa.Table.from_pandas(frame, preserve_index=False))
    assert latest_run_id(cfg) == RUN_ID
    loaded = load_results(cfg, RUN_ID)
    assert len(loaded) == len(frame) and loaded["subset"].notna().any() and loaded["at"].notna().any()
    with pytest.raises(FileNotFoundError, match="published runs"):
        load_results(cfg, "bench-nope")

    with caplog.at_level(logging.INFO, logger="sie"):
        md = build_report(cfg)
    folder = wh.reports_dir / RUN_ID
    assert md == folder / "report.md"
    names = ("ndcg_vs_keep.png", "ndcg_panels.png", "click_vs_keep.png", "noise_roc.png", "cost.png", "score_dist.png")
    for name in ("report.md", "report.html", "summary.json", *names):
        assert (folder / name).stat().st_size > 0, name
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary files left
    text = md.read_text()
    headings = ["## Holdout NDCG@10", "## Paired comparison with random", "### MRR", "### click AUC"]
    headings += ["## Noise detection (oracle)", "## Cost", "## Rebuild"]
    assert all(h in text for h in headings)
    assert "| loss | 0.6128 ± 0.0066▲† |" in text and "AUROC[label_flip]" in text
    assert "![noise ROC](noise_roc.png)" in text
    html = (folder / "report.html").read_text()
    assert "<h2>Noise detection</h2>" in html and 'src="score_dist.png"' in html
    assert any("report for bench-synthetic-test" in r.getMessage() for r in caplog.records)
    import json

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["run"]["settings"]["train.epochs"] == 4
    assert set(summary["noise"][0]["noise_auroc_by_type"]) == {"bot", "duplicate", "label_flip"}
