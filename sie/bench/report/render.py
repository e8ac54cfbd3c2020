"""Assembling the report: Markdown and HTML from a :class:`BenchSummary`, and writing the report folder."""

from __future__ import annotations

import html
import json
import logging
import re
from pathlib import Path

import pandas as pd

from sie.bench.report import plots
from sie.bench.report.summary import BenchSummary, latest_run_id, load_results, summarise
from sie.bench.report.tables import (
    METRIC_LABEL,
    best_text,
    comparison_table,
    cost_table,
    headline_table,
    md_table,
    noise_table,
    scale_text,
    significance_sentences,
)
from sie.config import SieConfig
from sie.files import write_json_atomic, write_text_atomic
from sie.store import Warehouse

log = logging.getLogger(__name__)

OTHER_METRICS = ("mrr", "click_auc", "click_logloss")
# (image key, plot, file name), in the order they are drawn
PLOTS = (
    ("ndcg", plots.plot_keep_curves, "ndcg_vs_keep.png"),
    ("panels", plots.plot_keep_panels, "ndcg_panels.png"),
    ("click", plots.plot_click_curves, "click_vs_keep.png"),
    ("roc", plots.plot_roc, "noise_roc.png"),
    ("cost", plots.plot_cost, "cost.png"),
    ("dist", plots.plot_score_distributions, "score_dist.png"),
)
NOISE_NOTE = (
    "AUROC / AP of *low* importance against the oracle's `is_noise`; AUROC[type] compares that noise "
    "type with clean (`none`) samples only (`duplicate` samples are clean after ingest, so ≈ 0.5 is "
    "expected there)."
)
COST_NOTE = (
    "Scoring wall time of each method (the estimator's `score` call, after the model is trained) and "
    "that time divided by one plain training epoch over the same samples, timed in the same process just "
    "before and after the scoring. Methods that read the training dynamics (loss, el2n, forgetting, aum, "
    "tce, rce) cost ~0 here: their inputs are recorded during training at no extra forward pass."
)


def _other_metrics(s: BenchSummary) -> list[tuple[str, pd.DataFrame]]:
    """(label, mean ± CI table without noise/cost columns) for each other cell metric that has curves."""
    return [
        (METRIC_LABEL[metric], headline_table(s, metric).iloc[:, : 1 + len(s.ratios)])
        for metric in OTHER_METRICS
        if not s.curves[s.curves["metric"] == metric].empty
    ]


# ---- Markdown ------------------------------------------------------------------------


def report_markdown(s: BenchSummary, images: dict[str, str]) -> str:
    """The report as Markdown; ``images`` maps image keys (see :data:`PLOTS`) to file names."""

    def image(key: str, alt: str) -> list[str]:
        return [f"![{alt}]({images[key]})", ""] if key in images else []

    lines = _md_headline(s)
    lines += image("ndcg", "NDCG@10 vs keep ratio")
    lines += image("panels", "NDCG@10 vs keep ratio, one panel per method")
    lines += ["## Paired comparison with random (NDCG@10)", "", md_table(comparison_table(s)), ""]
    lines += ["## Other metrics (mean over seeds)", ""]
    for label, table in _other_metrics(s):
        lines += [f"### {label}", "", md_table(table), ""]
    lines += image("click", "click metrics vs keep ratio")
    lines += ["## Noise detection (oracle)", ""]
    if s.noise.empty:
        lines += ["No oracle for this dataset: noise detection not measured.", ""]
    else:
        lines += [NOISE_NOTE, "", md_table(noise_table(s)), ""]
        lines += image("roc", "noise ROC")
        lines += image("dist", "score distributions by noise type")
    lines += ["## Cost", "", COST_NOTE, "", md_table(cost_table(s)), ""]
    lines += image("cost", "cost")
    lines += [
        "## Rebuild",
        "",
        f"`sie report --run-id {s.run_id}` rebuilds this report from the `benchmark_results` "
        f"partition `run_id={s.run_id}` alone.",
        "",
    ]
    return "\n".join(lines)


def _md_headline(s: BenchSummary) -> list[str]:
    """Title, scale, grid, the headline NDCG@10 table, the significant differences and the best per ratio."""
    lines = [f"# Benchmark report: `{s.run_id}`", "", scale_text(s), ""]
    lines += [
        f"Grid: methods {', '.join(s.methods) or '—'}; baselines {', '.join(s.baselines)}; keep ratios "
        f"{', '.join(f'{r:g}' for r in s.ratios)}; seeds {', '.join(map(str, s.seeds))}. Every cell retrains the "
        "ranker from scratch on the kept samples (seed = cell seed) and evaluates on the judged holdout.",
        "",
        f"## Holdout NDCG@10 (mean ± {s.confidence:.0%} CI over seeds)",
        "",
        f"▲/▼: significantly better/worse than random at the same keep ratio (paired t-test over seeds, p < {s.alpha:g}); "
        "† also after Holm correction over the methods at that ratio. Keep ratio 1 is the full-data model. "
        "Noise AUROC / AP: low importance as a detector of injected label noise (0.5 = chance). "
        "Cost: scoring wall time in training epochs.",
        "",
        md_table(headline_table(s)),
        "",
    ]
    sig = significance_sentences(s)
    lines += ["### Significant differences from random (NDCG@10)", ""]
    lines += [f"- {x}" for x in sig] if sig else [f"- none at p < {s.alpha:g}"]
    return [*lines, "", best_text(s), ""]


# ---- HTML ------------------------------------------------------------------------------

_STYLE = (
    "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
    "table.t{border-collapse:collapse;font-size:13px}table.t td,table.t th{border:1px solid #ccc;padding:3px 7px;"
    "text-align:right}table.t td:first-child{text-align:left}</style></head><body>"
)


def _html_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p><em>(none)</em></p>"
    return frame.to_html(index=False, escape=True, border=0, classes="t")


def _md_inline(text: str) -> str:
    """Escape ``text`` and render its Markdown **bold** and `code` spans."""
    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", t)


def report_html(s: BenchSummary, images: dict[str, str]) -> str:
    """The report as one HTML page (same tables as the Markdown, shorter notes)."""
    esc = html.escape

    def img(key: str, alt: str) -> str:
        return f'<p><img src="{esc(images[key])}" alt="{esc(alt)}" style="max-width:100%"></p>' if key in images else ""

    parts = _html_headline(s)
    parts += [
        img("ndcg", "NDCG@10 vs keep ratio"),
        img("panels", "NDCG@10 vs keep ratio per method"),
        "<h2>Paired comparison with random</h2>",
        _html_table(comparison_table(s)),
        "<h2>Other metrics</h2>",
    ]
    for label, table in _other_metrics(s):
        parts += [f"<h3>{label}</h3>", _html_table(table)]
    parts += [img("click", "click metrics"), "<h2>Noise detection</h2>"]
    parts += (
        ["<p>No oracle: not measured.</p>"]
        if s.noise.empty
        else [_html_table(noise_table(s)), img("roc", "noise ROC"), img("dist", "score distributions")]
    )
    parts += [
        "<h2>Cost</h2>",
        _html_table(cost_table(s)),
        img("cost", "cost"),
        f"<p>Rebuild: <code>sie report --run-id {esc(s.run_id)}</code></p></body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _html_headline(s: BenchSummary) -> list[str]:
    esc = html.escape
    sig = significance_sentences(s)
    return [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>SIE benchmark {esc(s.run_id)}</title>",
        _STYLE,
        f"<h1>Benchmark report: <code>{esc(s.run_id)}</code></h1>",
        f"<p>{_md_inline(scale_text(s))}</p>",
        f"<p>Grid: methods {esc(', '.join(s.methods))}; baselines {esc(', '.join(s.baselines))}; keep ratios "
        f"{esc(', '.join(f'{r:g}' for r in s.ratios))}; seeds {esc(', '.join(map(str, s.seeds)))}.</p>",
        f"<h2>Holdout NDCG@10 (mean ± {s.confidence:.0%} CI over seeds)</h2>",
        f"<p>▲/▼: significantly better/worse than random (paired t over seeds, p &lt; {s.alpha:g}); † also after "
        "Holm correction. Keep ratio 1 = full data.</p>",
        _html_table(headline_table(s)),
        "<h3>Significant differences from random</h3><ul>",
        *([f"<li>{_md_inline(x)}</li>" for x in sig] or [f"<li>none at p &lt; {s.alpha:g}</li>"]),
        "</ul>",
        f"<p>{esc(best_text(s))}</p>",
    ]


# ---- the report folder --------------------------------------------------------------------


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records")) if not frame.empty else []


def summary_json(s: BenchSummary) -> dict:
    """The report's numbers as JSON-able data (written as summary.json)."""
    by_type = {r.pop("method"): r for r in _records(s.noise_by_type)}
    noise = [r | {"noise_auroc_by_type": by_type.get(r["method"], {})} for r in _records(s.noise)]
    return {
        "run_id": s.run_id,
        "dataset": s.dataset,
        "headline": headline_table(s).to_dict("records"),
        "comparisons": _records(s.comparisons),
        "noise": noise,
        "cost": _records(s.cost),
        "run": {**s.run, "settings": s.settings, "n_samples": s.noise_counts},
    }


def write_plots(s: BenchSummary, out: Path) -> dict[str, str]:
    """Draw every plot that has data into ``out``; image key → file name."""
    images: dict[str, str] = {}
    for key, plot, name in PLOTS:
        if plot(s, out / name):
            images[key] = name
    return images


def build_report(cfg: SieConfig, run_id: str | None = None, out_dir: Path | None = None) -> Path:
    """Write the report for ``run_id`` (default: the latest benchmark run); returns report.md's path.

    The folder (default ``<warehouse>/reports/<run_id>/``) receives report.md, report.html,
    summary.json and the PNG plots, each file written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    run_id = run_id or latest_run_id(cfg)
    s = summarise(load_results(cfg, run_id), cfg.bench.confidence, cfg.bench.alpha)
    s.run_id = run_id
    out = Path(out_dir) if out_dir else Warehouse.from_config(cfg).reports_dir / run_id
    out.mkdir(parents=True, exist_ok=True)
    images = write_plots(s, out)
    write_text_atomic(out / "report.md", report_markdown(s, images))
    write_text_atomic(out / "report.html", report_html(s, images))
    write_json_atomic(out / "summary.json", summary_json(s))
    log.info("report for %s: %s (+ report.html, %d plots)", run_id, out / "report.md", len(images))
    return out / "report.md"
