"""The short summary printed after a run, and the daily Markdown report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sie.config import SieConfig
from sie.schemas import TABLES
from sie.sql import query, query_file
from sie.store import Warehouse


def table_counts(cfg: SieConfig) -> pd.DataFrame:
    parts = [
        f"SELECT '{name}' AS table_name, count(*) AS n_rows, count(DISTINCT {t.partition_by[0]}) AS n_partitions FROM {name}"
        for name, t in TABLES.items()
    ]
    return query(cfg, " UNION ALL ".join(parts) + " ORDER BY table_name")


def ndcg_by_method(cfg: SieConfig) -> pd.DataFrame:
    return query(
        cfg,
        """
        SELECT method, keep_ratio, count(DISTINCT ds) AS days,
               round(avg(ndcg_at_10), 4) AS ndcg_at_10, round(avg(mrr), 4) AS mrr,
               round(avg(click_auc), 4) AS click_auc
        FROM benchmark_wide GROUP BY method, keep_ratio ORDER BY keep_ratio DESC, ndcg_at_10 DESC
        """,
    )


def summary_frames(cfg: SieConfig) -> dict[str, pd.DataFrame]:
    return {
        "rows per table": table_counts(cfg),
        "importance per method (latest model)": query_file(cfg, "importance_distribution.sql"),
        "holdout NDCG@10 per method (mean over days)": ndcg_by_method(cfg),
    }


def to_markdown(frames: dict[str, pd.DataFrame]) -> str:
    out = []
    for title, frame in frames.items():
        out.append(f"## {title}\n")
        out.append(
            frame.to_markdown(index=False)
            if hasattr(frame, "to_markdown") and _has_tabulate()
            else frame.to_string(index=False)
        )
        out.append("")
    return "\n".join(out)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def write_daily_report(cfg: SieConfig, ds: str) -> Path:
    wh = Warehouse.from_config(cfg)
    frames = summary_frames(cfg)
    path = wh.reports_dir / f"daily-{ds}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# SIE daily report, ds={ds}\n\nWarehouse: `{wh.root}`\n\n" + to_markdown(frames))
    return path
