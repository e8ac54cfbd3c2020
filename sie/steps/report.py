"""The warehouse summary printed after a run, and the daily Markdown report (that day's run only)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sie.config import SieConfig
from sie.ds import Ds
from sie.files import write_text_atomic
from sie.schemas import TABLES
from sie.sql import query, query_file
from sie.store import Warehouse

_NDCG_BY_METHOD = """
SELECT method, keep_ratio, count(DISTINCT ds) AS days,
       round(avg(ndcg_at_10), 4) AS ndcg_at_10, round(avg(mrr), 4) AS mrr,
       round(avg(click_auc), 4) AS click_auc
FROM benchmark_wide WHERE {where} GROUP BY method, keep_ratio ORDER BY keep_ratio DESC, ndcg_at_10 DESC
"""

_SCORES_OF_DAY = """
SELECT method, count(*) AS n_samples, round(avg(score), 5) AS mean, round(stddev_samp(score), 5) AS std,
       round(quantile_cont(score, 0.10), 5) AS p10, round(quantile_cont(score, 0.50), 5) AS p50,
       round(quantile_cont(score, 0.90), 5) AS p90
FROM importance_scores WHERE ds = '{ds}' GROUP BY method ORDER BY method
"""


def table_counts(cfg: SieConfig) -> pd.DataFrame:
    parts = [
        f"SELECT '{name}' AS table_name, count(*) AS n_rows, count(DISTINCT {t.partition_by[0]}) AS n_partitions "
        f"FROM {name}"
        for name, t in TABLES.items()
    ]
    return query(cfg, " UNION ALL ".join(parts) + " ORDER BY table_name")


def ndcg_by_method(cfg: SieConfig, ds: Ds | None = None) -> pd.DataFrame:
    """Holdout metrics per method and keep ratio: of ``ds``'s nightly run, or the mean over every nightly run."""
    where = f"run_id = 'daily-{ds}'" if ds else "run_id LIKE 'daily-%'"
    return query(cfg, _NDCG_BY_METHOD.format(where=where))


def summary_frames(cfg: SieConfig) -> dict[str, pd.DataFrame]:
    """The warehouse at a glance (printed by `sie run`, `sie summary` and the demo)."""
    return {
        "rows per table": table_counts(cfg),
        "importance per method (latest model)": query_file(cfg, "importance_distribution.sql"),
        "holdout NDCG@10 per method (mean over nightly runs)": ndcg_by_method(cfg),
    }


def daily_frames(cfg: SieConfig, ds: Ds) -> dict[str, pd.DataFrame]:
    """One day's run: its scores and its retrain/evaluate results, nothing from other runs."""
    return {
        f"importance per method (model of ds={ds})": query(cfg, _SCORES_OF_DAY.format(ds=ds)),
        f"holdout NDCG@10 per method (run daily-{ds})": ndcg_by_method(cfg, ds),
    }


def to_markdown(frames: dict[str, pd.DataFrame]) -> str:
    out = []
    for title, frame in frames.items():
        out += [f"## {title}\n", frame.to_markdown(index=False), ""]
    return "\n".join(out)


def write_daily_report(cfg: SieConfig, ds: Ds) -> Path:
    wh = Warehouse.from_config(cfg)
    path = wh.reports_dir / f"daily-{ds}.md"
    header = f"# SIE daily report, ds={ds}\n\nWarehouse: `{wh.root}`\n\n"
    return write_text_atomic(path, header + to_markdown(daily_frames(cfg, ds)))
