"""The oracle-free report: what the nightly importance scores show on real logs, without judgments or noise labels.

Real (landed) logs have no simulator oracle (which sample is noise) and no judged holdout, so
noise detection and NDCG cannot be measured there. ``build_no_oracle_report(cfg, ds)`` reports
what needs neither, from the warehouse's tables alone:

* the data: days, samples, queries, items and click rate of the model's window;
* score distributions per method (quantiles, share of tied scores, a histogram per method);
* agreement between methods: Spearman rank correlation of their scores over the same samples;
* stability across nights: per-sample Spearman with the previous model (the samples both scored),
  and per-query / per-item mean importance (the ``importance_stability`` view);
* the nightly evaluation's held-out click metrics, when it ran;

and says plainly what cannot be measured. Written to ``<warehouse>/reports/no-oracle-<ds>/``
(report.md, report.html, summary.json, PNG plots).
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sie.bench.report.tables import md_inline, md_table
from sie.config import SieConfig
from sie.ds import Ds
from sie.files import atomic_path, write_json_atomic, write_text_atomic
from sie.sql import query
from sie.steps.drift import drift_row
from sie.store import Warehouse

log = logging.getLogger(__name__)

NOT_MEASURABLE = (
    "**Noise detection** (AUROC / AP of low importance against noisy samples): which logged clicks are bots, "
    "accidents, clickbait or misattributed purchases is unknown without the simulator's oracle.",
    "**NDCG@10 / MRR on judged relevance**: there is no judged holdout, so whether keeping the top-k% by a "
    "method ranks better than random or full data cannot be measured here.",
    "**Clean-click metrics** (held-out clicks with the noise removed): they need the oracle too.",
    "The held-out click AUC / log loss below *can* be measured, but they reward agreement with the logged "
    "clicks, noise included, so they are no verdict on a method.",
)

_DISTRIBUTION = """
SELECT method, count(*) AS n_samples, avg(score) AS mean, stddev_samp(score) AS std,
       quantile_cont(score, 0.01) AS p01, quantile_cont(score, 0.10) AS p10, quantile_cont(score, 0.50) AS p50,
       quantile_cont(score, 0.90) AS p90, quantile_cont(score, 0.99) AS p99,
       1 - count(DISTINCT score) / count(*) AS tied_share
FROM importance_scores WHERE ds = '{ds}' GROUP BY method ORDER BY method
"""
_DATA = """
SELECT count(DISTINCT s.ds) AS days, count(*) AS samples, count(DISTINCT s.query_id) AS requests,
       count(DISTINCT s.query_text) AS queries, count(DISTINCT s.item_id) AS items, avg(s.click) AS click_rate
FROM samples s JOIN (SELECT DISTINCT sample_id, sample_ds FROM importance_scores WHERE ds = '{ds}') i
  ON s.ds = i.sample_ds AND s.sample_id = i.sample_id
"""
_CLICKS = """
SELECT method, keep_ratio, count(DISTINCT seed) AS seeds, avg(click_auc) AS click_auc,
       avg(click_logloss) AS click_logloss, avg(ndcg_at_10) AS ndcg_at_10
FROM benchmark_wide WHERE run_id = 'daily-{ds}' GROUP BY ALL ORDER BY keep_ratio DESC, method
"""


@dataclass
class OracleFreeSummary:
    ds: str
    models: list[str]  # model days with scores, up to ds
    data: dict  # the scored window: days, samples, requests, queries, items, click_rate
    distribution: pd.DataFrame  # one row per method
    agreement: pd.DataFrame  # method × method Spearman
    sample_stability: pd.DataFrame  # method, ds, previous_ds, n_common, spearman, top_decile_overlap
    group_stability: pd.DataFrame  # the importance_stability view up to ds
    clicks: pd.DataFrame  # the nightly evaluation of ds (empty if it did not run)
    judged_holdout: bool
    oracle_present: bool


def model_days(cfg: SieConfig) -> list[str]:
    wh = Warehouse.from_config(cfg)
    return sorted({p["ds"] for p in wh.partitions("importance_scores")})


def scores_wide(cfg: SieConfig, ds: str) -> pd.DataFrame:
    """(sample_id, sample_ds) × method: model ``ds``'s scores."""
    wh = Warehouse.from_config(cfg)
    frame = wh.read_table("importance_scores", {"ds": [ds]}).to_pandas()
    return frame.pivot_table(index=["sample_id", "sample_ds"], columns="method", values="score", aggfunc="first")


def agreement(wide: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation between every two methods over the samples both scored."""
    return wide.corr(method="spearman", min_periods=2)


def sample_stability(cfg: SieConfig, models: list[str]) -> pd.DataFrame:
    """Per method and model: Spearman and top-decile overlap with the previous scored model on the
    samples both scored (:func:`sie.steps.drift.drift_row`, as the ``score_drift`` table)."""
    wide = {ds: scores_wide(cfg, ds) for ds in models}
    rows = []
    for previous_ds, ds in zip(models, models[1:]):
        for method in wide[ds].columns:
            before = wide[previous_ds][method].dropna() if method in wide[previous_ds] else None
            row = drift_row(wide[ds][method].dropna(), before, previous_ds if before is not None else None)
            keep = ("previous_ds", "n_common", "spearman", "top_decile_overlap")
            rows.append({"method": method, "ds": ds, **{k: row[k] for k in keep}})
    return pd.DataFrame(rows, columns=["method", "ds", "previous_ds", "n_common", "spearman", "top_decile_overlap"])


def summarise_no_oracle(cfg: SieConfig, ds: str | None = None) -> OracleFreeSummary:
    """Everything the oracle-free report shows for model ``ds`` (default: the latest scored model)."""
    every = model_days(cfg)
    if not every:
        raise FileNotFoundError(f"no importance_scores in {Warehouse.from_config(cfg).table_dir('importance_scores')}")
    ds = str(Ds(ds)) if ds else every[-1]
    if ds not in every:
        raise FileNotFoundError(f"no importance_scores for ds={ds}; scored models: {every}")
    models = [d for d in every if d <= ds]
    wh = Warehouse.from_config(cfg)
    data = query(cfg, _DATA.format(ds=ds)).iloc[0].to_dict()
    return OracleFreeSummary(
        ds=ds,
        models=models,
        data={k: (None if pd.isna(v) else float(v)) for k, v in data.items()},
        distribution=query(cfg, _DISTRIBUTION.format(ds=ds)),
        agreement=agreement(scores_wide(cfg, ds)),
        sample_stability=sample_stability(cfg, models[-8:]),  # the last week of nights is enough to read
        group_stability=query(cfg, f"SELECT * FROM importance_stability WHERE ds <= '{ds}' ORDER BY level, method, ds"),
        clicks=query(cfg, _CLICKS.format(ds=ds)),
        judged_holdout=wh.holdout_path.exists(),
        oracle_present=any(wh.root.glob("oracle/*/oracle.parquet")),
    )


# ---- plots -------------------------------------------------------------------------------------


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def plot_distributions(cfg: SieConfig, s: OracleFreeSummary, path: Path) -> Path | None:
    """One histogram per method of model ds's scores (each on its own scale)."""
    import matplotlib.pyplot as plt

    wide = scores_wide(cfg, s.ds)
    if wide.empty:
        return None
    methods = list(wide.columns)
    ncols = min(4, len(methods))
    nrows = int(np.ceil(len(methods) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.6 * nrows), squeeze=False)
    for ax, method in zip(axes.ravel(), methods):
        ax.hist(wide[method].dropna(), bins=40, color="#4c72b0")
        ax.set_title(method, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(methods) :]:
        ax.axis("off")
    fig.suptitle(f"importance score distribution per method, model ds={s.ds} ({len(wide):,} samples)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_agreement(s: OracleFreeSummary, path: Path) -> Path | None:
    """The method × method Spearman matrix as an annotated heat map."""
    import matplotlib.pyplot as plt

    if s.agreement.shape[0] < 2:
        return None
    m = s.agreement
    size = 1.0 + 0.6 * len(m)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(m.to_numpy(dtype=float), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(m)), m.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(m)), m.index, fontsize=8)
    for (i, j), v in np.ndenumerate(m.to_numpy(dtype=float)):
        colour = "white" if abs(v) > 0.6 else "black"  # readable on the dark ends of the colour map
        ax.text(j, i, "—" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, shrink=0.8, label="Spearman")
    ax.set_title(f"agreement between methods (model ds={s.ds})", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_stability(s: OracleFreeSummary, path: Path) -> Path | None:
    """Spearman with the previous model per method: per sample, per query and per item."""
    from sie.steps.report import plot_stability as plot_levels

    return plot_levels(stability_table(s).dropna(subset=["spearman"]), path)


# ---- text --------------------------------------------------------------------------------------


def _fmt_frame(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].map(lambda v: "—" if pd.isna(v) else f"{v:.{digits}g}")
    return out


def sections(s: OracleFreeSummary) -> list[tuple[str, list[str], pd.DataFrame | None, str | None]]:
    """(title, paragraphs, table, image key) per section, shared by the Markdown and the HTML."""

    def count(key: str) -> str:
        return "—" if s.data.get(key) is None else f"{int(s.data[key]):,}"

    rate = s.data.get("click_rate")
    data = (
        f"Model ds={s.ds}: {count('samples')} scored training samples from {count('days')} day(s), "
        f"{count('requests')} query requests, {count('queries')} distinct queries, {count('items')} items, "
        f"click rate {'—' if rate is None else f'{rate:.1%}'}. Scored models up to this day: {', '.join(s.models)}."
    )
    oracle = (
        "This warehouse has a simulator oracle, but this report does not use it."
        if s.oracle_present
        else "No oracle in this warehouse."
    )
    holdout = "A judged holdout exists." if s.judged_holdout else "No judged holdout in this warehouse."
    agreement = s.agreement.rename_axis(index="method", columns=None).reset_index()
    click_note = (
        f"The nightly evaluation (run `daily-{s.ds}`): each cell retrained from scratch on the kept samples; "
        "mean over seeds. NDCG@10 is empty without a judged holdout."
    )
    return [
        ("What was scored", [data, f"{oracle} {holdout}"], None, None),
        ("What cannot be measured here", [f"- {x}" for x in NOT_MEASURABLE], None, None),
        (
            "Score distributions",
            ["Per method, model ds's scores; `tied_share`: share of samples whose score another sample also has."],
            _fmt_frame(s.distribution),
            "dist",
        ),
        (
            "Agreement between methods",
            ["Spearman rank correlation of two methods' scores over the same samples (1: same order, -1: reversed)."],
            _fmt_frame(agreement, 3),
            "agreement",
        ),
        (
            "Stability across nights",
            [
                "Spearman with the previous model: per sample (the samples both models scored; their windows "
                "overlap), and per query / item mean importance (`importance_stability` view)."
            ],
            _fmt_frame(stability_table(s), 3),
            "stability",
        ),
        ("Held-out clicks (nightly evaluation)", [click_note], _fmt_frame(s.clicks), None),
    ]


def stability_table(s: OracleFreeSummary) -> pd.DataFrame:
    """Per-sample rows (level 'sample') above the per-query / per-item rows of the view."""
    sample = s.sample_stability.assign(level="sample")
    frames = [f for f in (sample, s.group_stability) if not f.empty]
    columns = ["level", "method", "ds", "previous_ds", "n_common", "spearman", "top_decile_overlap"]
    return pd.concat(frames, ignore_index=True).reindex(columns=columns) if frames else pd.DataFrame(columns=columns)


def report_markdown(s: OracleFreeSummary, images: dict[str, str]) -> str:
    lines = [f"# Oracle-free report: model ds={s.ds}", ""]
    for title, paragraphs, table, image in sections(s):
        lines += [f"## {title}", "", *[p + ("" if p.startswith("- ") else "\n") for p in paragraphs]]
        if table is not None:
            lines += ["", md_table(table), ""]
        if image in images:
            lines += [f"![{title}]({images[image]})", ""]
        lines.append("")
    return "\n".join(lines)


def report_html(s: OracleFreeSummary, images: dict[str, str]) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>SIE oracle-free report {html.escape(s.ds)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;"
        "text-align:right}td:first-child{text-align:left}img{max-width:100%}</style></head><body>",
        f"<h1>Oracle-free report: model ds={html.escape(s.ds)}</h1>",
    ]
    for title, paragraphs, table, image in sections(s):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        bullets = [p[2:] for p in paragraphs if p.startswith("- ")]
        parts += [f"<p>{md_inline(p)}</p>" for p in paragraphs if not p.startswith("- ")]
        if bullets:
            parts.append("<ul>" + "".join(f"<li>{md_inline(b)}</li>" for b in bullets) + "</ul>")
        if table is not None:
            parts.append(table.to_html(index=False, border=0) if not table.empty else "<p><em>(none)</em></p>")
        if image in images:
            parts.append(f'<p><img src="{html.escape(images[image])}" alt="{html.escape(title)}"></p>')
    parts.append("</body></html>")
    return "\n".join(parts)


def build_no_oracle_report(cfg: SieConfig, ds: str | None = None, out_dir: Path | None = None) -> Path:
    """Write the oracle-free report for model ``ds`` (default: the latest); returns report.md's path."""
    import matplotlib

    matplotlib.use("Agg")
    s = summarise_no_oracle(cfg, ds)
    out = Path(out_dir) if out_dir else Warehouse.from_config(cfg).reports_dir / f"no-oracle-{s.ds}"
    out.mkdir(parents=True, exist_ok=True)
    drawn = {
        "dist": plot_distributions(cfg, s, out / "score_dist.png"),
        "agreement": plot_agreement(s, out / "agreement.png"),
        "stability": plot_stability(s, out / "stability.png"),
    }
    images = {key: path.name for key, path in drawn.items() if path}
    write_text_atomic(out / "report.md", report_markdown(s, images))
    write_text_atomic(out / "report.html", report_html(s, images))
    write_json_atomic(out / "summary.json", summary_json(s))
    log.info("oracle-free report for ds=%s: %s (+ report.html, %d plots)", s.ds, out / "report.md", len(images))
    return out / "report.md"


def summary_json(s: OracleFreeSummary) -> dict:
    def records(frame: pd.DataFrame) -> list[dict]:
        return frame.replace({np.nan: None}).to_dict("records")

    return {
        "ds": s.ds,
        "models": s.models,
        "data": s.data,
        "judged_holdout": s.judged_holdout,
        "oracle_used": False,
        "not_measurable": list(NOT_MEASURABLE),
        "distribution": records(s.distribution),
        "agreement": {k: {m: (None if pd.isna(v) else v) for m, v in row.items()} for k, row in s.agreement.iterrows()},
        "sample_stability": records(s.sample_stability),
        "group_stability": records(s.group_stability),
        "clicks": records(s.clicks),
    }
