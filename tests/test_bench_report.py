"""sie.bench.report: summaries, tables and the written report, from a synthetic benchmark_results frame."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sie.bench import rows
from sie.bench.report import summarise, tables
from sie.selection.grid import Cell
from sie.selection.retrain import cell_rows
from sie.store import Warehouse

RUN_ID = "bench-synthetic-test"
RATIOS = (0.3, 0.6)
SEEDS = (0, 1, 2)
METHODS = ("grad_norm", "loss")


BASE = {"ndcg_at_10": 0.5, "mrr": 0.6, "click_auc": 0.7, "click_logloss": 0.45}
BASE |= {"clean_click_auc": 0.75, "clean_click_logloss": 0.3}
# `loss` (the best noise detector) on held-out clicks: worse than random on raw clicks, better on clean ones
LOSS_CLICK_SHIFT = {"click_auc": -0.25, "click_logloss": 1.5, "clean_click_auc": 0.05, "clean_click_logloss": -0.02}


def _cell_value(metric: str, method: str, ratio: float, seed: int) -> float:
    """Cell metrics: `loss` is exactly random + 0.1 NDCG@10 in every seed; the others vary."""
    base = BASE[metric] + 0.05 * ratio
    jitter = np.random.default_rng([seed, int(ratio * 100), len(metric)]).normal(0, 0.01)
    random_value = base + jitter
    if method == "random":
        return random_value
    if method == "loss":
        return random_value + 0.1 if metric == "ndcg_at_10" else random_value + LOSS_CLICK_SHIFT.get(metric, 0.02)
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
            metrics = {m: _cell_value(m, method, ratio, seed) for m in BASE}
            metrics["n_queries"] = 40.0
            metrics |= {"n_train": int(1000 * ratio), "train_seconds": 2.0 * ratio}
            out += cell_rows(Cell(method, ratio, seed), metrics, score_seconds=0.0)
    return out


def _noise_rows(method: str, scores: np.ndarray, truth: pd.DataFrame, seconds: float) -> list[dict]:
    """rows.noise_rows, plus the ROC curve of each noise type against clean samples when it does not write them."""
    from sie.bench.metrics import noise_detection

    out = rows.noise_rows(method, scores, truth, roc_points=21, seed=0, n_train=len(truth), score_seconds=seconds)
    if any(r["metric"] == "noise_roc_tpr" and r["subset"] is not None for r in out):
        return out
    types = truth["noise_type"].to_numpy()
    for noise_type in sorted(set(types) - {"none", "unknown"}):
        pick = np.isin(types, [noise_type, "none"])
        det = noise_detection(scores[pick], types[pick] == noise_type, 21)
        for fpr, tpr in zip(det["fpr"], det["tpr"]):
            out.append(rows.row(method, "noise_roc_tpr", tpr, subset=noise_type, at=round(float(fpr), 6), seed=0))
    return out


def _method_rows(truth: pd.DataFrame, epochs: tuple[float, ...] = (2.0, 2.0)) -> list[dict]:
    """Cost and noise rows of each method; ``epochs``: each method's reference epoch seconds."""
    out = []
    rng = np.random.default_rng(5)
    for k, method in enumerate(METHODS):
        seconds = 0.5 * (k + 1)
        cost = {"samples_per_second": 1000 / seconds, "reference_epoch_seconds": epochs[k]}
        out += rows.cost_rows(method, score_seconds=seconds, seed=0, n_train=len(truth), **cost)
        scores = rng.random(len(truth)) - (0.2 + 0.2 * k) * truth["is_noise"].to_numpy()
        out += _noise_rows(method, scores, truth, seconds)
    scores = np.random.default_rng(11).random(len(truth))  # the chance reference
    out += _noise_rows("random", scores, truth, 0.0)
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


def results_frame(epochs: tuple[float, ...] = (2.0, 2.0), extra: tuple[dict, ...] = ()) -> pd.DataFrame:
    """A run's rows as runner.assemble publishes them (the scoring model's epoch: 8 s / 4 epochs = 2 s)."""
    truth = fake_truth()
    frame = rows.rows_frame(_run_rows(truth) + _method_rows(truth, epochs) + _cells() + list(extra))
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
    # label-noise types first, duplicates (clean after ingest) apart at the end
    assert list(noise.columns) == ["method", "AUROC", "AP", "AUROC[bot]", "AUROC[label_flip]", "AUROC[duplicate]"]
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
    assert "ranker: 4 epochs, batch 256, one training epoch ≈ 2.00 s (mean of the plain epochs timed" in text
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
    headings = ["## Holdout NDCG@10", "## Paired comparison with random", "### MRR", "### click AUC / clean-click AUC"]
    headings += ["## Noise detection (oracle)", "## Cost", "## Rebuild"]
    assert all(h in text for h in headings)
    assert "| loss | 0.6128 ± 0.0066▲† |" in text and "AUROC[label_flip]" in text
    assert "![noise ROC per noise type](noise_roc.png)" in text
    html = (folder / "report.html").read_text()
    assert '<h2 id="noise">Noise detection</h2>' in html and 'src="score_dist.png"' in html
    assert any("report for bench-synthetic-test" in r.getMessage() for r in caplog.records)
    import json

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["run"]["settings"]["train.epochs"] == 4
    assert set(summary["noise"][0]["noise_auroc_by_type"]) == {"bot", "duplicate", "label_flip"}


def _replicated_frame() -> pd.DataFrame:
    """results_frame() as a 3-world replicated run publishes it: the replicate rows and per-query power rows
    (`loss` is 0.02 above random on every one of 30 queries but one, at both keep ratios)."""
    queries = [
        {"world_seed": w, "model_seed": 0, "fold": -1, "keep_ratio": r, "seed": 0, "subset": f"q{q}"}
        | {"method": m, "value": 0.5 + 0.01 * (q % 7) + (0.02 * (q != 3) if m == "loss" else 0.0)}
        for w in (7, 8, 9)
        for r in RATIOS
        for q in range(30)
        for m in ("random", "loss")
    ]
    extra = rows.replicate_rows([(7, 0), (8, 0), (9, 0)], folds=0) + rows.power_rows(pd.DataFrame(queries), 0.05, 0.8)
    return results_frame(extra=tuple(extra)).assign(run_id=RUN_ID)


def test_report_says_what_the_cis_run_over_and_shows_the_mde():
    from sie.bench.report.render import report_html, report_markdown

    plain = summarise(results_frame().assign(run_id=RUN_ID))
    assert plain.ci_unit == "seeds" and plain.power.empty and plain.replicates == []
    text = report_markdown(plain, {})
    assert "CI over seeds" in text and "MDE" not in text and "Replicated run" not in text

    s = summarise(_replicated_frame())
    assert s.replicates == [(7, 0), (8, 0), (9, 0)] and s.ci_unit == "worlds"
    power = s.power.set_index(["method", "keep_ratio"])
    assert sorted(power.index) == [("loss", 0.3), ("loss", 0.6)]
    diffs = np.full(30, 0.02)
    diffs[3] = 0.0
    mde = 2.8 * diffs.std(ddof=1) / np.sqrt(30)  # (z_0.975 + z_0.8) · sd / √n, the normal approximation
    assert power.loc[("loss", 0.3), "diff"] == pytest.approx(diffs.mean())
    assert power.loc[("loss", 0.3), "mde"] == pytest.approx(mde, rel=0.05)
    for page in (report_markdown(s, {}), report_html(s, {})):
        assert "CI over worlds" in page and "CI over seeds" not in page
        assert "world seed 8, scoring-model seed 0" in page and "30 distinct held-out queries" in page
        assert "MDE" in page and f"{power.loc[('loss', 0.6), 'mde']:.4f}" in page


# ---- the HTML page in a real browser ---------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# after the load event, every <img> records whether it loaded and decoded (naturalWidth > 0)
IMAGE_PROBE = (
    "<script>addEventListener('load', () => { for (const img of document.images) "
    "img.setAttribute('data-state', img.complete && img.naturalWidth > 0 ? 'ok' : 'broken'); "
    "document.body.setAttribute('data-probed', 'yes'); });</script>"
)


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    flags += ["--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


def _image_states(folder: Path, html: str, profile: Path) -> list[str]:
    """Each <img>'s state ('ok' / 'broken') as Chromium saw it, in page order."""
    probe = folder / "probe.html"
    probe.write_text(html.replace("</body>", IMAGE_PROBE + "</body>"))
    dom = _chromium(profile, "--dump-dom", probe.as_uri()).stdout
    probe.unlink()
    assert 'data-probed="yes"' in dom, dom[-2000:]
    return re.findall(r'<img[^>]*data-state="(\w+)"', dom)


@pytest.fixture
def report_folder(cfg, tmp_path):
    from sie.bench.report import build_report

    frame = results_frame(epochs=(1.0, 1.5))  # the methods' reference epochs differ from the run's 2 s
    Warehouse(cfg.warehouse_path).write_partition(
        "benchmark_results", {"run_id": RUN_ID}, pa.Table.from_pandas(frame, preserve_index=False)
    )
    return build_report(cfg, RUN_ID, tmp_path / "report").parent


def test_report_quotes_one_epoch_time_and_explains_the_click_collapse(report_folder):
    s = summarise(results_frame(epochs=(1.0, 1.5)).assign(run_id=RUN_ID))
    assert tables.epoch_seconds(s) == (1.25, 1.0, 1.5, 2) and s.run["epoch_seconds"] == 2.0
    text = (report_folder / "report.md").read_text()
    assert (
        text.lower().count("one training epoch ≈ 1.25 s (mean of the plain epochs timed beside each of 2 methods'") == 2
    )
    assert "2.00 s" not in text and "2.00s" not in text  # the scoring model's own timing is not quoted
    # duplicates are listed apart from the label-noise types that add up to the total
    total = sum(s.noise_counts.values())
    label = sum(v for k, v in s.noise_counts.items() if k in ("bot", "label_flip"))
    assert s.run["noise_rate"] == pytest.approx(label / total)
    assert f"Shown apart, not in the total: duplicate {s.noise_counts['duplicate'] / total:.1%}" in text
    # the collapse: `loss` (best detector) is below random on raw clicks and above it on clean ones
    collapse = tables.click_collapse_text(s)
    assert tables.best_detectors(s) == ["loss", "grad_norm"]
    assert "On raw clicks `loss` look(s) *worse than random* at every keep ratio below 1" in collapse[0]
    assert "clean-click AUC of" in collapse[2]
    assert all(p in text for p in collapse)
    clicks = tables.click_table(s).set_index("method")
    raw, clean = (float(v) for v in clicks.loc["loss", "0.3"].split(" / "))
    assert raw == pytest.approx(np.mean([_cell_value("click_auc", "loss", 0.3, k) for k in SEEDS]), abs=5e-4)
    assert clean == pytest.approx(np.mean([_cell_value("clean_click_auc", "loss", 0.3, k) for k in SEEDS]), abs=5e-4)
    # per-type ROC curves end at (1, 1) for every method and type
    ends = s.roc_by_type.groupby(["method", "noise_type"]).last()
    assert len(ends) == 3 * 3 and (ends["fpr"] == 1).all() and (ends["tpr"] == 1).all()


def test_html_report_renders_in_headless_chromium(report_folder, tmp_path):
    """The page loads in a real browser: every image loads and decodes, and the screenshot is not blank."""
    if CHROMIUM is None:
        if os.environ.get("SIE_REQUIRE_CHROMIUM"):
            pytest.fail("SIE_REQUIRE_CHROMIUM is set but chromium is not installed")
        pytest.skip("chromium not installed (Debian: apt-get install chromium; .ci/run installs it)")
    from PIL import Image

    html = (report_folder / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == 6
    for src in sources:
        with Image.open(report_folder / src) as img:
            img.verify()
    profile = tmp_path / "chromium-profile"
    assert _image_states(report_folder, html, profile) == ["ok"] * len(sources)
    # the probe does catch a missing image
    broken = html.replace(f'src="{sources[0]}"', 'src="no-such-plot.png"')
    assert _image_states(report_folder, broken, profile) == ["broken"] + ["ok"] * (len(sources) - 1)

    shot = tmp_path / "page.png"
    args = ("--window-size=1280,2400", "--hide-scrollbars", f"--screenshot={shot}")
    _chromium(profile, *args, (report_folder / "report.html").as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape == (2400, 1280, 3)
    assert (pixels < 230).any(axis=2).mean() > 0.05  # text, tables and plots, not a white page
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500  # anti-aliased text and coloured plots
