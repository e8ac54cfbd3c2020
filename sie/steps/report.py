"""The warehouse summary printed after a run, and the daily Markdown report (that day's run only,
plus the stability of the importance scores across nights up to that day)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sie.config import SieConfig
from sie.ds import Ds
from sie.files import atomic_path, write_text_atomic
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


_STABILITY_UP_TO = """
SELECT level, method, ds, previous_ds, n_common, round(spearman, 4) AS spearman
FROM importance_stability WHERE ds <= '{ds}' ORDER BY level DESC, method, ds
"""


def stability(cfg: SieConfig, ds: Ds) -> pd.DataFrame:
    """Rank correlation of per-query and per-item mean importance between consecutive models, up to ``ds``
    (the ``importance_stability`` view of sql/views.sql)."""
    return query(cfg, _STABILITY_UP_TO.format(ds=ds))


def daily_frames(cfg: SieConfig, ds: Ds) -> dict[str, pd.DataFrame]:
    """One day's run: its scores and its retrain/evaluate results, nothing from other runs."""
    judged = Warehouse.from_config(cfg).holdout_path.exists()
    results = "holdout NDCG@10" if judged else "held-out click metrics (no judged holdout: no NDCG / MRR)"
    return {
        f"importance per method (model of ds={ds})": query(cfg, _SCORES_OF_DAY.format(ds=ds)),
        f"{results} per method (run daily-{ds})": ndcg_by_method(cfg, ds),
    }


def plot_stability(frame: pd.DataFrame, path: Path) -> Path | None:
    """Spearman vs model day per method, one panel per level (sample, query, item: those present in
    ``frame``'s ``level`` column); None without rows."""
    if frame.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    levels = [lvl for lvl in ("sample", "query", "item") if (frame["level"] == lvl).any()]
    fig, axes = plt.subplots(1, len(levels), figsize=(6.5 * len(levels), 4.2), squeeze=False, sharey=True)
    for ax, level in zip(axes[0], levels):
        part = frame[frame["level"] == level]
        for method, g in part.groupby("method"):
            g = g.sort_values("ds")
            ax.plot(pd.to_datetime(g["ds"]), g["spearman"], marker="o", ms=4, lw=1.3, label=method)
        ax.axhline(0.0, color="k", lw=0.6, ls=":")
        what = "scores" if level == "sample" else f"per-{level} mean importance"
        ax.set_title(f"{what} vs the previous model", fontsize=10)
        ax.set_xlabel("model day")
        ax.grid(alpha=0.3)
        # whole days, at most ~10 ticks, and a day of margin (one model day alone would span years)
        first, last = pd.to_datetime(frame["ds"].min()), pd.to_datetime(frame["ds"].max())
        ax.set_xlim(first - pd.Timedelta(days=1), last + pd.Timedelta(days=1))
        ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, (last - first).days // 10 + 1)))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    axes[0][0].set_ylabel("Spearman rank correlation")
    axes[0][-1].legend(fontsize=7, loc="best", ncol=2)
    fig.suptitle("stability across nights (1 = the same order as the night before)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def to_markdown(frames: dict[str, pd.DataFrame]) -> str:
    out = []
    for title, frame in frames.items():
        out += [f"## {title}\n", frame.to_markdown(index=False), ""]
    return "\n".join(out)


def stability_markdown(cfg: SieConfig, ds: Ds, folder: Path) -> str:
    """The stability section: the plot (written to ``folder``) and the rows of model ``ds``."""
    frame = stability(cfg, ds)
    lines = ["## stability across nights\n"]
    if frame.empty:
        return "\n".join([*lines, "No earlier model with scores of the same method yet: nothing to compare.\n"])
    image = plot_stability(frame, folder / f"daily-{ds}-stability.png")
    lines += [
        "Spearman rank correlation of each query's (and item's) mean importance under this model and the "
        "previous one (`importance_stability` view), over the queries / items both scored.\n",
        f"![stability across nights]({image.name})\n",
        frame[frame["ds"] == ds].to_markdown(index=False),
        "",
    ]
    return "\n".join(lines)


def write_daily_report(cfg: SieConfig, ds: Ds, notes: list[str] | None = None) -> Path:
    """``reports/daily-<ds>.md`` (and its stability plot); ``notes``: lines for the top, e.g. what the
    evaluation could not measure."""
    wh = Warehouse.from_config(cfg)
    path = wh.reports_dir / f"daily-{ds}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# SIE daily report, ds={ds}\n\nWarehouse: `{wh.root}`\n\n"
    header += "".join(f"> {line}\n\n" for line in notes or [])
    body = to_markdown(daily_frames(cfg, ds)) + "\n" + stability_markdown(cfg, ds, path.parent)
    return write_text_atomic(path, header + body)
