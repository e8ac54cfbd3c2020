"""Assembling the report: Markdown and HTML from a :class:`BenchSummary`, and writing the report folder."""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path

import pandas as pd

from sie.bench.report import plots
from sie.bench.report.summary import BenchSummary, latest_run_id, load_results, summarise
from sie.bench.report.tables import (
    CLEAN_CLICK,
    METRIC_LABEL,
    best_text,
    click_collapse_text,
    click_table,
    comparison_table,
    cost_table,
    epoch_seconds,
    epoch_text,
    has_metric,
    headline_table,
    md_inline,
    md_table,
    noise_table,
    power_table,
    power_text,
    replication_text,
    scale_text,
    significance_sentences,
)
from sie.config import SieConfig
from sie.files import write_json_atomic, write_text_atomic
from sie.store import Warehouse

log = logging.getLogger(__name__)

OTHER_METRICS = ("mrr",)  # the click metrics have their own section (raw beside clean)
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
    "type with clean (`none`) samples only. `duplicate` is shown apart, last: exact duplicate log lines "
    "that a correct ingest drops, so the sample is clean, not in the noise total, and ≈ 0.5 is expected."
)
COST_NOTE = (
    "Scoring wall time of each method (the estimator's `score` call, after the model is trained) and "
    "that time divided by one plain training epoch over the same samples, timed in the same process just "
    "before and after the scoring. Methods that read the training dynamics (loss, el2n, forgetting, aum, "
    "tce, rce) cost ~0 here: their inputs are recorded during training at no extra forward pass."
)
CLICK_NOTE = (
    "Mean over seeds (over replicates in a replicated run); with clean-click rows each cell reads raw / clean "
    "(held-out clicks without the oracle's noise)."
)


def _other_metrics(s: BenchSummary) -> list[tuple[str, pd.DataFrame]]:
    """(label, mean ± CI table without noise/cost columns) for each other cell metric that has curves."""
    return [
        (METRIC_LABEL[metric], headline_table(s, metric).iloc[:, : 1 + len(s.ratios)])
        for metric in OTHER_METRICS
        if not s.curves[s.curves["metric"] == metric].empty
    ]


def _click_tables(s: BenchSummary) -> list[tuple[str, pd.DataFrame]]:
    """(title, table) per raw click metric, with the clean one beside it when present."""
    out = []
    for metric, clean in CLEAN_CLICK.items():
        if has_metric(s, metric):
            title = METRIC_LABEL[metric] + (f" / {METRIC_LABEL[clean]}" if has_metric(s, clean) else "")
            out.append((title, click_table(s, metric)))
    return out


# ---- Markdown ------------------------------------------------------------------------


def report_markdown(s: BenchSummary, images: dict[str, str]) -> str:
    """The report as Markdown; ``images`` maps image keys (see :data:`PLOTS`) to file names."""

    def image(key: str, alt: str) -> list[str]:
        return [f"![{alt}]({images[key]})", ""] if key in images else []

    lines = _md_headline(s)
    lines += image("ndcg", "NDCG@10 vs keep ratio")
    lines += image("panels", "NDCG@10 vs keep ratio, one panel per method")
    lines += ["## Paired comparison with random (NDCG@10)", "", md_table(comparison_table(s)), ""]
    if not s.power.empty:
        lines += [
            "## Power: per-query NDCG@10 vs random and the MDE",
            "",
            power_text(s),
            "",
            md_table(power_table(s)),
            "",
        ]
    lines += ["## Held-out clicks (raw and clean)", ""]
    lines += [p + "\n" for p in click_collapse_text(s)]
    for title, table in _click_tables(s):
        lines += [f"### {title}", "", CLICK_NOTE, "", md_table(table), ""]
    lines += image("click", "click metrics vs keep ratio")
    lines += ["## Noise detection (oracle)", ""]
    if s.noise.empty:
        lines += ["No oracle for this dataset: noise detection not measured.", ""]
    else:
        lines += [NOISE_NOTE, "", md_table(noise_table(s)), ""]
        lines += image("roc", "noise ROC per noise type")
        lines += image("dist", "score distributions by noise type")
    lines += ["## Cost", "", COST_NOTE + " " + _sentence(epoch_text(s)), "", md_table(cost_table(s)), ""]
    lines += image("cost", "cost")
    lines += ["## Other metrics (mean over seeds)", ""]
    for label, table in _other_metrics(s):
        lines += [f"### {label}", "", md_table(table), ""]
    lines += [
        "## Rebuild",
        "",
        f"`sie report --run-id {s.run_id}` rebuilds this report from the `benchmark_results` "
        f"partition `run_id={s.run_id}` alone.",
        "",
    ]
    return "\n".join(lines)


def _seed_word(s: BenchSummary) -> str:
    """What the cells' ``seed`` column counts: cell seeds, or replicate indices in a replicated run."""
    return "replicates" if len(s.replicates) > 1 else "seeds"


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def _md_headline(s: BenchSummary) -> list[str]:
    """Title, scale, grid, the headline NDCG@10 table, the significant differences and the best per ratio."""
    lines = [f"# Benchmark report: `{s.run_id}`", "", scale_text(s), ""]
    replication = replication_text(s)
    lines += [replication, ""] if replication else []
    lines += [
        f"Grid: methods {', '.join(s.methods) or '—'}; baselines {', '.join(s.baselines)}; keep ratios "
        f"{', '.join(f'{r:g}' for r in s.ratios)}; {_seed_word(s)} {', '.join(map(str, s.seeds))}. Every cell retrains the "
        "ranker from scratch on the kept samples (seed = cell seed) and evaluates on the judged holdout.",
        "",
        f"## Holdout NDCG@10 (mean ± {s.confidence:.0%} CI over {s.ci_unit})",
        "",
        f"▲/▼: significantly better/worse than random at the same keep ratio (paired t-test over {s.ci_unit}, "
        f"p < {s.alpha:g}); "
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
    "<style>body{font-family:sans-serif;max-width:1250px;margin:1.5em auto;padding:0 1em;color:#222;"
    "line-height:1.4}table.t{border-collapse:collapse;font-size:13px;margin:.5em 0}table.t td,table.t th{"
    "border:1px solid #ccc;padding:3px 7px;text-align:right}table.t td:first-child{text-align:left}"
    "table.t tr:nth-child(even){background:#f6f8fa}nav a{margin-right:1em}figure{margin:1em 0}"
    "figcaption{font-size:13px;color:#555}img{max-width:100%;border:1px solid #eee}"
    ".note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em 1em;margin:1em 0}"
    "details summary{cursor:pointer;font-weight:bold;margin:.5em 0}</style></head><body>"
)
_SECTIONS = (
    ("glance", "At a glance"),
    ("curves", "Keep-ratio curves"),
    ("clicks", "Held-out clicks"),
    ("noise", "Noise detection"),
    ("cost", "Cost"),
    ("more", "More tables"),
)


def _html_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p><em>(none)</em></p>"
    return frame.to_html(index=False, escape=True, border=0, classes="t")


def report_html(s: BenchSummary, images: dict[str, str]) -> str:
    """The report as one HTML page: headline table first, then one figure per question, tables folded."""
    esc = html.escape

    def fig(key: str, caption: str) -> str:
        if key not in images:
            return ""
        return (
            f'<figure><img src="{esc(images[key])}" alt="{esc(caption)}">'
            f"<figcaption>{md_inline(caption)}</figcaption></figure>"
        )

    def h2(key: str) -> str:
        return f'<h2 id="{key}">{dict(_SECTIONS)[key]}</h2>'

    parts = _html_headline(s)
    parts += [
        h2("curves"),
        fig(
            "ndcg",
            "NDCG@10 vs keep ratio: the best methods in colour with CI bands, the rest grey; right: "
            "paired difference to random.",
        ),
        fig("panels", "Every method in its own panel against random (dashed) and stratified (dotted), best first."),
        "<details><summary>Paired comparison with random (NDCG@10), every method and keep ratio</summary>",
        _html_table(comparison_table(s)),
        "</details>",
        *_html_power(s),
        h2("clicks"),
    ]
    collapse = click_collapse_text(s)
    if collapse:
        parts.append('<div class="note"><b>Why the best noise detectors look worse on held-out clicks.</b>')
        parts += [f"<p>{md_inline(p)}</p>" for p in collapse]
        parts.append("</div>")
    for title, table in _click_tables(s):
        parts += [f"<h3>{esc(title)}</h3>", f"<p>{md_inline(CLICK_NOTE)}</p>", _html_table(table)]
    parts += [fig("click", "Held-out click metrics vs keep ratio (raw; clean beside it when measured)."), h2("noise")]
    if s.noise.empty:
        parts.append("<p>No oracle for this dataset: noise detection not measured.</p>")
    else:
        parts += [
            f"<p>{md_inline(NOISE_NOTE)}</p>",
            _html_table(noise_table(s)),
            fig("roc", "ROC of low importance as a noise detector: all label noise, then per noise type."),
            fig("dist", "Score percentile by noise type, per method."),
        ]
    parts += [
        h2("cost"),
        f"<p>{md_inline(COST_NOTE + ' ' + _sentence(epoch_text(s)))}</p>",
        _html_table(cost_table(s)),
        fig("cost", "Scoring cost per method in training epochs (log scale)."),
        h2("more"),
    ]
    for label, table in _other_metrics(s):
        parts += [f"<h3>{esc(label)}</h3>", _html_table(table)]
    parts.append(f"<p>Rebuild: <code>sie report --run-id {esc(s.run_id)}</code></p></body></html>")
    return "\n".join(p for p in parts if p)


def _html_headline(s: BenchSummary) -> list[str]:
    esc = html.escape
    nav = " ".join(f'<a href="#{k}">{v}</a>' for k, v in _SECTIONS)
    return [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>SIE benchmark {esc(s.run_id)}</title>",
        _STYLE,
        f"<h1>Benchmark report: <code>{esc(s.run_id)}</code></h1>",
        f"<nav>{nav}</nav>",
        f"<p>{md_inline(scale_text(s))}</p>",
        f"<p>{md_inline(replication)}</p>" if (replication := replication_text(s)) else "",
        f"<p>Grid: methods {esc(', '.join(s.methods))}; baselines {esc(', '.join(s.baselines))}; keep ratios "
        f"{esc(', '.join(f'{r:g}' for r in s.ratios))}; {_seed_word(s)} {esc(', '.join(map(str, s.seeds)))}.</p>",
        h2_glance(s),
        f"<p>▲/▼: significantly better/worse than random (paired t over {esc(s.ci_unit)}, p &lt; {s.alpha:g}); † also after "
        "Holm correction. Keep ratio 1 = full data. Noise AUROC / AP: low importance as a detector of the "
        "oracle's label noise (0.5 = chance). Cost: scoring time in training epochs.</p>",
        _html_table(headline_table(s)),
        *_html_significance(s),
        f"<p>{esc(best_text(s))}</p>",
    ]


def _html_significance(s: BenchSummary) -> list[str]:
    """The differences that survive Holm in view; every raw-p difference folded below them."""
    sig = significance_sentences(s)
    holm = [x for x in sig if "also after Holm" in x]
    items = [f"<li>{md_inline(x)}</li>" for x in holm] or [f"<li>none after Holm correction (p &lt; {s.alpha:g})</li>"]
    return [
        "<h3>Significant differences from random (NDCG@10), after Holm correction</h3><ul>",
        *items,
        "</ul>",
        f"<details><summary>All {len(sig)} differences at raw p &lt; {s.alpha:g} (paired t, before Holm)</summary><ul>",
        *[f"<li>{md_inline(x)}</li>" for x in sig],
        "</ul></details>",
    ]


def h2_glance(s: BenchSummary) -> str:
    return f'<h2 id="glance">At a glance: holdout NDCG@10 (mean ± {s.confidence:.0%} CI over {html.escape(s.ci_unit)})</h2>'


def _html_power(s: BenchSummary) -> list[str]:
    """The per-query paired NDCG@10 and MDE table, when the run has per-query rows."""
    if s.power.empty:
        return []
    return [
        "<h3>Power: per-query NDCG@10 vs random and the MDE</h3>",
        f"<p>{md_inline(power_text(s))}</p>",
        _html_table(power_table(s)),
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
        "epoch_seconds": epoch_seconds(s)[0],
        "ci_over": s.ci_unit,
        "replicates": [{"world_seed": w, "model_seed": m} for w, m in s.replicates],
        "power": _records(s.power),
        "click_collapse": click_collapse_text(s),
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
