"""Stability across nights: the `importance_stability` view (sql/views.sql) on a real DuckDB over
Delta tables, against Spearman correlations computed independently with scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.stats import spearmanr

from sie.schemas import SAMPLES, sample_id
from sie.sql import query
from sie.store import Warehouse

DAYS = ("2026-11-19", "2026-11-20", "2026-11-21")
N_QUERIES, PER_QUERY = 12, 3
OFFSETS = np.array([-0.1, 0.0, 0.1])  # a query's samples sit symmetrically around its mean score


def _samples(ds: str) -> pd.DataFrame:
    """PER_QUERY impressions per query; items are shared between queries, so per-item means mix queries."""
    rows = []
    for q in range(N_QUERIES):
        for k in range(PER_QUERY):
            item = f"item{(q + 2 * k) % 7}"
            rows.append({"sample_id": sample_id(f"{ds}-r{q}", item), "query_text": f"q{q}", "item_id": item})
    return pd.DataFrame(rows)


def _publish_samples(wh: Warehouse, ds: str, frame: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for field in SAMPLES.schema:  # columns the views do not read stay null
        if field.name not in table.column_names:
            table = table.append_column(field.name, pa.nulls(table.num_rows, field.type))
    wh.write_day(ds, {"samples": table.select([f.name for f in SAMPLES.schema])}, run_id=f"fixture-{ds}")


def _publish_scores(wh: Warehouse, model_ds: str, method: str, samples: pd.DataFrame, query_means) -> pd.DataFrame:
    """Scores whose per-query mean is ``query_means[q]``; returns them joined to their samples."""
    means = np.repeat(np.asarray(query_means, dtype=float), PER_QUERY)
    frame = samples.assign(score=means + np.tile(OFFSETS, N_QUERIES))
    table = pa.table(
        {
            "sample_id": frame["sample_id"],
            "sample_ds": frame["sample_ds"],
            "run_id": ["fixture"] * len(frame),
            "model_version": [model_ds] * len(frame),
            "score": frame["score"],
            "model_id": ["mlp"] * len(frame),
        }
    )
    wh.write_partition("importance_scores", {"ds": model_ds, "method": method}, table)
    return frame


def _spearman(a: pd.Series, b: pd.Series) -> float:
    common = a.index.intersection(b.index)
    return float(spearmanr(a.loc[common], b.loc[common]).statistic)


@pytest.fixture
def scored(cfg):
    """Three nights of one sample day scored by `loss` (random per-query means with ties), `el2n` (the same
    ranking every night, on a different scale) and `aum` (nights 1 and 3 only, reversed)."""
    wh = Warehouse.from_config(cfg)
    samples = _samples(DAYS[0]).assign(sample_ds=DAYS[0])
    _publish_samples(wh, DAYS[0], samples.drop(columns="sample_ds"))
    rng = np.random.default_rng(3)
    base = rng.permutation(N_QUERIES).astype(float)
    frames = {}
    for n, ds in enumerate(DAYS):
        loss = rng.integers(0, 6, N_QUERIES).astype(float)  # few values: tied per-query means
        frames[ds, "loss"] = _publish_scores(wh, ds, "loss", samples, loss)
        frames[ds, "el2n"] = _publish_scores(wh, ds, "el2n", samples, 10.0 * (n + 1) * base + 1.0)
    frames[DAYS[0], "aum"] = _publish_scores(wh, DAYS[0], "aum", samples, base)
    frames[DAYS[2], "aum"] = _publish_scores(wh, DAYS[2], "aum", samples, -base)
    return frames


def test_stability_view_matches_scipy(cfg, scored):
    got = query(cfg, "SELECT * FROM importance_stability ORDER BY level, method, ds")
    got = got.set_index(["level", "method", "ds"])
    # one row per (level, method, model) that has a previous model; aum's previous of night 3 is night 1
    expected_keys = {(lvl, m, d) for lvl in ("query", "item") for m in ("loss", "el2n") for d in DAYS[1:]}
    expected_keys |= {("query", "aum", DAYS[2]), ("item", "aum", DAYS[2])}
    assert set(got.index) == expected_keys
    assert (got.xs("aum", level="method")["previous_ds"] == DAYS[0]).all()
    assert got.loc[("query", "loss", DAYS[2]), "previous_ds"] == DAYS[1]
    for (level, method, ds), row in got.iterrows():
        key = "query_text" if level == "query" else "item_id"
        now = scored[ds, method].groupby(key)["score"].mean()
        before = scored[row["previous_ds"], method].groupby(key)["score"].mean()
        assert row["n_common"] == len(now) == (N_QUERIES if level == "query" else 7)
        assert row["spearman"] == pytest.approx(_spearman(now, before), abs=1e-12), (level, method, ds)
    # the known cases: the same ranking on another scale, and the reversed ranking
    assert got.loc[("query", "el2n", DAYS[1]), "spearman"] == pytest.approx(1.0)
    assert got.loc[("query", "aum", DAYS[2]), "spearman"] == pytest.approx(-1.0)
    loss = got.xs("loss", level="method")["spearman"]
    assert loss.abs().max() < 0.99  # random nights: neither 1 nor -1, so ties and ranks were really used


def test_stability_view_per_query_means(cfg, scored):
    means = query(cfg, f"SELECT * FROM importance_by_query WHERE method = 'aum' AND ds = '{DAYS[2]}'")
    expected = scored[DAYS[2], "aum"].groupby("query_text")["score"].mean()
    got = means.set_index("query_text")["mean_score"].sort_index()
    assert got.to_dict() == pytest.approx(expected.sort_index().to_dict())
    assert (means["n_samples"] == PER_QUERY).all()


def test_daily_report_shows_stability(cfg, scored):
    from PIL import Image

    from sie.ds import Ds
    from sie.steps.report import write_daily_report

    path = write_daily_report(cfg, Ds(DAYS[2]), notes=["a note for the top"])
    text = path.read_text()
    assert "> a note for the top" in text and "## stability across nights" in text
    plot = path.parent / f"daily-{DAYS[2]}-stability.png"
    assert f"]({plot.name})" in text
    with Image.open(plot) as img:
        assert img.size[0] > 600 and len(img.getcolors(1 << 20)) > 50  # drawn, not blank
    lines = text[text.index("| level") :].strip().splitlines()
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    assert {r[2] for r in rows} == {DAYS[2]}  # only the report day's model in the table
    assert ["query", "aum", DAYS[2], DAYS[0], "12", "-1"] in rows and len(rows) == 6


def test_oracle_free_report_on_known_scores(cfg, scored, tmp_path):
    import json

    from sie.bench.report.no_oracle import build_no_oracle_report

    md = build_no_oracle_report(cfg, out_dir=tmp_path / "report")  # the latest model: night 3
    summary = json.loads((md.parent / "summary.json").read_text())
    assert summary["ds"] == DAYS[2] and summary["models"] == list(DAYS) and summary["oracle_used"] is False
    # agreement between methods over the same samples, against scipy
    el2n, aum = scored[DAYS[2], "el2n"]["score"], scored[DAYS[2], "aum"]["score"]
    assert summary["agreement"]["el2n"]["aum"] == pytest.approx(spearmanr(el2n, aum).statistic)
    # per-sample stability: el2n keeps its order every night; aum of night 3 is compared with night 2,
    # where it has no scores, so it has no per-sample row
    stable = pd.DataFrame(summary["sample_stability"]).set_index(["method", "ds"])
    assert stable.loc[("el2n", DAYS[2]), "spearman"] == pytest.approx(1.0)
    assert stable.loc[("el2n", DAYS[2]), "top_decile_overlap"] == pytest.approx(1.0)
    loss = scored[DAYS[2], "loss"]["score"].to_numpy(), scored[DAYS[1], "loss"]["score"].to_numpy()
    assert stable.loc[("loss", DAYS[2]), "spearman"] == pytest.approx(spearmanr(*loss).statistic)
    assert pd.isna(stable.loc[("aum", DAYS[2]), "spearman"])
    text = md.read_text()
    assert "## What cannot be measured here" in text and "**Noise detection**" in text
    assert f"Scored models up to this day: {', '.join(DAYS)}" in text
    for image in ("score_dist.png", "agreement.png", "stability.png"):
        assert (md.parent / image).stat().st_size > 0 and f"]({image})" in text
