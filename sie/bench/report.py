"""The benchmark report, rebuilt from the `benchmark_results` table alone.

``build_report(cfg, run_id)`` reads the partition ``run_id=<run_id>`` and writes
``<warehouse>/reports/<run_id>/`` with ``report.md``, ``report.html``, ``summary.json``
and PNG plots:

* ``ndcg_vs_keep.png``: holdout NDCG@10 vs keep ratio per method, mean and 95% CI band
  over seeds, and the paired difference to random at each ratio;
* ``ndcg_panels.png``: the same, one panel per method against random and stratified;
* ``click_vs_keep.png``: held-out click AUC / log loss vs keep ratio;
* ``noise_roc.png``: noise-detection ROC curves (low importance = flagged as noise);
* ``cost.png``: scoring cost per method relative to one training epoch;
* ``score_dist.png``: score percentile distributions by noise type, per method.

How rows encode what the report needs (see docs/BENCHMARKS.md, "benchmark_results rows"):
cell rows have a keep_ratio and one of the metrics ``ndcg_at_10, mrr, n_queries,
click_auc, click_logloss``; per-method rows have a null keep_ratio and metrics
``score_seconds, samples_per_second, cost_vs_epoch, noise_auroc, noise_ap,
noise_auroc[<type>], noise_roc_tpr[fpr=<x>], score_pct_mean[<type>],
score_pct_q<NN>[<type>]``; run rows have ``method = '_run'``.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sie.bench.metrics import holm, mean_ci, paired_comparison
from sie.config import SieConfig
from sie.store import Warehouse

BASELINE_ORDER = ("full", "random", "stratified")
RUN_METHOD = "_run"
CELL_METRICS = ("ndcg_at_10", "mrr", "click_auc", "click_logloss")
METRIC_LABEL = {"ndcg_at_10": "NDCG@10", "mrr": "MRR", "click_auc": "click AUC", "click_logloss": "click log loss"}
LOWER_IS_BETTER = {"click_logloss"}
_BRACKET = re.compile(r"^(?P<name>[a-z0-9_]+)\[(?P<key>[^\]]*)\]$")


# ---- reading ---------------------------------------------------------------------


def load_results(cfg: SieConfig, run_id: str) -> pd.DataFrame:
    wh = Warehouse.from_config(cfg)
    frame = wh.read_table("benchmark_results", {"run_id": [run_id]}).to_pandas()
    if frame.empty:
        known = sorted({p["run_id"] for p in wh.partitions("benchmark_results")})
        raise FileNotFoundError(f"no benchmark_results for run_id={run_id!r}; published runs: {known}")
    return frame


def latest_run_id(cfg: SieConfig, prefix: str = "bench-") -> str:
    """The most recently published benchmark run (by created_at)."""
    wh = Warehouse.from_config(cfg)
    runs = [p["run_id"] for p in wh.partitions("benchmark_results") if p["run_id"].startswith(prefix)]
    if not runs:
        raise FileNotFoundError(f"no benchmark runs ({prefix}*) in {wh.table_dir('benchmark_results')}")
    latest = []
    for run_id in runs:
        t = wh.read_table("benchmark_results", {"run_id": [run_id]}).column("created_at").to_pandas()
        latest.append((t.max(), run_id))
    return max(latest)[1]


def split_metric(metric: str) -> tuple[str, str | None]:
    """``'noise_auroc[bot]'`` → ``('noise_auroc', 'bot')``; ``'mrr'`` → ``('mrr', None)``."""
    m = _BRACKET.match(metric)
    return (m["name"], m["key"]) if m else (metric, None)


# ---- summarising -------------------------------------------------------------------


@dataclass
class BenchSummary:
    run_id: str
    dataset: str
    ds: str
    run: dict[str, float]  # run-level values (scale, settings, noise shares)
    methods: list[str]  # scored methods, in report order
    baselines: list[str]
    ratios: list[float]  # incl. 1.0 when `full` ran
    seeds: list[int]
    curves: pd.DataFrame  # metric, method, keep_ratio, mean, ci, n
    comparisons: pd.DataFrame  # metric, method, keep_ratio, diff, diff_ci, p_value, p_holm, n
    noise: pd.DataFrame  # method, noise_auroc, noise_ap, noise_auroc[<type>]...
    cost: pd.DataFrame  # method, score_seconds, samples_per_second, cost_vs_epoch
    roc: pd.DataFrame  # method, fpr, tpr
    dist: pd.DataFrame  # method, noise_type, stat, value
    confidence: float = 0.95
    alpha: float = 0.05
    notes: list[str] = field(default_factory=list)


def summarise(results: pd.DataFrame, confidence: float = 0.95, alpha: float = 0.05) -> BenchSummary:
    res = results.copy()
    res["keep_ratio"] = pd.to_numeric(res["keep_ratio"], errors="coerce")
    run_rows = res[res["method"] == RUN_METHOD]
    run = {r.metric: float(r.value) for r in run_rows.itertuples()}
    cells = res[res["keep_ratio"].notna() & (res["method"] != RUN_METHOD)].copy()
    cells["seed"] = cells["seed"].astype(int)
    other = res[res["keep_ratio"].isna() & (res["method"] != RUN_METHOD)]

    cell_methods = set(cells["method"])
    baselines = [b for b in BASELINE_ORDER if b in cell_methods]
    methods = sorted(cell_methods - set(BASELINE_ORDER))
    ratios = sorted(cells["keep_ratio"].unique().tolist())
    seeds = sorted(cells["seed"].unique().tolist())

    # every curve ends at 1.0 with the full-data model (keeping 100% is the same for all methods)
    full = cells[cells["method"] == "full"]
    curve_cells = [cells[cells["method"] != "full"]]
    for m in [*baselines, *methods]:
        if m != "full" and not full.empty:
            curve_cells.append(full.assign(method=m))
    curve_cells.append(full)
    cc = pd.concat(curve_cells, ignore_index=True)

    curve_rows, comp_rows = [], []
    for metric in CELL_METRICS:
        part = cc[cc["metric"] == metric]
        if part.empty:
            continue
        for (method, ratio), g in part.groupby(["method", "keep_ratio"]):
            mean, ci, n = mean_ci(g["value"], confidence)
            curve_rows.append({"metric": metric, "method": method, "keep_ratio": ratio, "mean": mean, "ci": ci, "n": n})
        rnd = part[part["method"] == "random"].set_index(["keep_ratio", "seed"])["value"]
        for (method, ratio), g in part.groupby(["method", "keep_ratio"]):
            if method in ("random", "full") or ratio >= 1.0 or rnd.empty:
                continue
            a = g.set_index("seed")["value"]
            try:
                b = rnd.loc[ratio]
            except KeyError:
                continue
            common = sorted(set(a.index) & set(b.index))
            if not common:
                continue
            comp = paired_comparison(a.loc[common].to_numpy(), b.loc[common].to_numpy(), confidence)
            comp_rows.append({"metric": metric, "method": method, "keep_ratio": ratio, **comp})
    curves = pd.DataFrame(curve_rows, columns=["metric", "method", "keep_ratio", "mean", "ci", "n"])
    comparisons = pd.DataFrame(comp_rows, columns=["metric", "method", "keep_ratio", "diff", "diff_ci", "p_value", "n"])
    comparisons["p_holm"] = np.nan
    for _, idx in comparisons.groupby(["metric", "keep_ratio"]).groups.items():
        comparisons.loc[idx, "p_holm"] = holm(comparisons.loc[idx, "p_value"].to_numpy())

    # per-method rows: noise detection, cost, ROC, distributions
    split = other["metric"].map(split_metric)
    other = other.assign(name=[s[0] for s in split], key=[s[1] for s in split])
    wide = other[other["key"].isna()].pivot_table(index="method", columns="name", values="value", aggfunc="first")
    per_type = other[other["name"] == "noise_auroc"].dropna(subset=["key"])
    per_type_wide = per_type.pivot_table(index="method", columns="key", values="value", aggfunc="first")
    per_type_wide.columns = [f"noise_auroc[{c}]" for c in per_type_wide.columns]
    noise_cols = [c for c in ("noise_auroc", "noise_ap") if c in wide]
    noise = pd.concat([wide[noise_cols], per_type_wide], axis=1).reset_index() if noise_cols else pd.DataFrame()
    cost_cols = [
        c for c in ("score_seconds", "samples_per_second", "reference_epoch_seconds", "cost_vs_epoch") if c in wide
    ]
    cost = wide[cost_cols].dropna(how="all").reset_index() if cost_cols else pd.DataFrame()
    roc = other[other["name"] == "noise_roc_tpr"].copy()
    roc = pd.DataFrame(
        {
            "method": roc["method"].to_numpy(),
            "fpr": [float(k.split("=", 1)[1]) for k in roc["key"]],
            "tpr": roc["value"].to_numpy(),
        }
    ).sort_values(["method", "fpr"])
    dist = other[other["name"].str.startswith("score_pct_")].dropna(subset=["key"])
    dist = pd.DataFrame(
        {
            "method": dist["method"].to_numpy(),
            "noise_type": dist["key"].to_numpy(),
            "stat": dist["name"].str.replace("score_pct_", "", regex=False).to_numpy(),
            "value": dist["value"].to_numpy(),
        }
    )

    first = results.iloc[0]
    return BenchSummary(
        run_id=str(first["run_id"]) if "run_id" in results else "",
        dataset=str(first["dataset"]),
        ds=str(first["ds"]),
        run=run,
        methods=methods,
        baselines=baselines,
        ratios=ratios,
        seeds=seeds,
        curves=curves,
        comparisons=comparisons,
        noise=noise,
        cost=cost,
        roc=roc,
        dist=dist,
        confidence=confidence,
        alpha=alpha,
    )


# ---- tables ----------------------------------------------------------------------------


def _fmt(x: float, digits: int = 4) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _mark(s: BenchSummary, metric: str, method: str, ratio: float) -> str:
    c = s.comparisons
    row = c[(c["metric"] == metric) & (c["method"] == method) & (c["keep_ratio"] == ratio)]
    if row.empty:
        return ""
    r = row.iloc[0]
    if not np.isfinite(r["p_value"]) or r["p_value"] >= s.alpha:
        return ""
    better = r["diff"] > 0 if metric not in LOWER_IS_BETTER else r["diff"] < 0
    arrow = "▲" if better else "▼"
    return arrow + ("†" if np.isfinite(r["p_holm"]) and r["p_holm"] < s.alpha else "")


def headline_table(s: BenchSummary, metric: str = "ndcg_at_10") -> pd.DataFrame:
    """method × keep ratio: 'mean ± CI' with ▲/▼ where the paired test vs random is significant,
    plus noise AUROC / AP and cost per method."""
    curves = s.curves[s.curves["metric"] == metric]
    rows = []
    for method in [*s.baselines, *s.methods]:
        row = {"method": method}
        for ratio in s.ratios:
            c = curves[(curves["method"] == method) & (curves["keep_ratio"] == ratio)]
            if method == "full" and ratio < 1.0 or c.empty:
                row[f"{ratio:g}"] = ""
                continue
            mean, ci = c.iloc[0]["mean"], c.iloc[0]["ci"]
            cell = f"{_fmt(mean)} ± {_fmt(ci)}" if np.isfinite(ci) else _fmt(mean)
            row[f"{ratio:g}"] = cell + _mark(s, metric, method, ratio)
        if not s.noise.empty:
            n = s.noise.set_index("method")
            row["noise AUROC"] = _fmt(n["noise_auroc"].get(method, np.nan), 3) if "noise_auroc" in n else "—"
            row["noise AP"] = _fmt(n["noise_ap"].get(method, np.nan), 3) if "noise_ap" in n else "—"
        if not s.cost.empty and "cost_vs_epoch" in s.cost:
            v = s.cost.set_index("method")["cost_vs_epoch"].get(method, np.nan)
            row["cost (epochs)"] = _fmt(v, 2) if method not in BASELINE_ORDER else "0"
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_table(s: BenchSummary, metric: str = "ndcg_at_10") -> pd.DataFrame:
    c = s.comparisons[s.comparisons["metric"] == metric].copy()
    if c.empty:
        return c
    c = c.sort_values(["keep_ratio", "diff"], ascending=[True, False])
    return pd.DataFrame(
        {
            "keep ratio": c["keep_ratio"].map(lambda r: f"{r:g}"),
            "method": c["method"],
            f"Δ {METRIC_LABEL.get(metric, metric)} vs random": [
                f"{d:+.4f} ± {_fmt(ci)}" if np.isfinite(ci) else f"{d:+.4f}" for d, ci in zip(c["diff"], c["diff_ci"])
            ],
            "p (paired t)": c["p_value"].map(lambda p: _fmt(p, 3)),
            "p (Holm)": c["p_holm"].map(lambda p: _fmt(p, 3)),
            "significant": [
                ("yes (Holm)" if ph < s.alpha else "yes") if np.isfinite(p) and p < s.alpha else "no"
                for p, ph in zip(c["p_value"], c["p_holm"].fillna(1.0))
            ],
        }
    )


def noise_table(s: BenchSummary) -> pd.DataFrame:
    if s.noise.empty:
        return s.noise
    n = s.noise.sort_values("noise_auroc", ascending=False)
    out = pd.DataFrame({"method": n["method"]})
    for col in n.columns[1:]:
        out[col.replace("noise_auroc[", "AUROC[").replace("noise_auroc", "AUROC").replace("noise_ap", "AP")] = n[
            col
        ].map(lambda v: _fmt(v, 3))
    return out


def cost_table(s: BenchSummary) -> pd.DataFrame:
    if s.cost.empty:
        return s.cost
    c = s.cost.sort_values("cost_vs_epoch")
    return pd.DataFrame(
        {
            "method": c["method"],
            "seconds": c["score_seconds"].map(lambda v: _fmt(v, 2)),
            "samples/s": c["samples_per_second"].map(lambda v: "—" if not np.isfinite(v) else f"{v:,.0f}"),
            "one epoch (s)": (
                c["reference_epoch_seconds"] if "reference_epoch_seconds" in c else pd.Series(np.nan, index=c.index)
            ).map(lambda v: _fmt(v, 2)),
            "× one training epoch": c["cost_vs_epoch"].map(lambda v: _fmt(v, 3)),
        }
    )


def md_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(none)_"
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def significance_sentences(s: BenchSummary, metric: str = "ndcg_at_10") -> list[str]:
    c = s.comparisons[(s.comparisons["metric"] == metric) & (s.comparisons["p_value"] < s.alpha)]
    label = METRIC_LABEL.get(metric, metric)
    out = []
    for r in c.sort_values(["keep_ratio", "diff"], ascending=[True, False]).itertuples():
        better = r.diff > 0 if metric not in LOWER_IS_BETTER else r.diff < 0
        holm_note = "also after Holm correction" if r.p_holm < s.alpha else "not after Holm correction"
        out.append(
            f"keep {r.keep_ratio:g}: **{r.method}** is {'better' if better else 'worse'} than random by "
            f"{r.diff:+.4f} {label} (p = {r.p_value:.3g}, paired t over {int(r.n)} seeds; {holm_note})"
        )
    return out


def scale_text(s: BenchSummary) -> str:
    r = s.run
    parts = [f"dataset **{s.dataset}**, window ending {s.ds}"]
    if "days" in r:
        parts.append(f"{int(r['days'])} day(s)")
    if "simulate[requests_per_day]" in r:
        parts.append(f"{int(r['simulate[requests_per_day]']):,} requests/day")
    if "n_train" in r:
        parts.append(f"{int(r['n_train']):,} training samples ({int(r.get('n_validation', 0)):,} held-out clicks)")
    if "train[epochs]" in r:
        parts.append(
            f"ranker: {int(r['train[epochs]'])} epochs, batch {int(r.get('train[batch_size]', 0))}, "
            f"one epoch = {r.get('epoch_seconds', float('nan')):.2f}s"
        )
    text = "; ".join(parts) + "."
    if "noise_rate" in r:
        shares = {k[len("n_samples[") : -1]: v for k, v in r.items() if k.startswith("n_samples[")}
        total = sum(shares.values()) or 1.0
        by_type = ", ".join(
            f"{k} {v / total:.1%}" for k, v in sorted(shares.items(), key=lambda kv: -kv[1]) if k != "none"
        )
        knobs = ", ".join(
            f"{k} {r[f'simulate[{k}]']:g}"
            for k in (
                "bot_rate",
                "accidental_click_rate",
                "clickbait_item_rate",
                "label_flip_rate",
                "duplicate_event_rate",
            )
            if f"simulate[{k}]" in r
        )
        text += (
            f" Label noise (oracle `is_noise`): **{r['noise_rate']:.1%}** of training samples "
            f"(by noise type: {by_type}). Simulator noise knobs: {knobs}."
        )
    return text


# ---- plots ----------------------------------------------------------------------------------


_PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#000080",
    "#b8860b",
    "#ff1493",
    "#006400",
    "#00ced1",
    "#800000",
    "#7b68ee",
]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p", "d", "8", "H", "1"]
_FIXED = {"full": ("#000000", "o"), "random": ("#555555", "o"), "stratified": ("#999999", "s")}


def _style(s: BenchSummary) -> dict[str, tuple[str, str]]:
    """(colour, marker) per method, the same in every plot of the report."""
    names = sorted(set(s.methods) | set(s.roc["method"]) | set(s.cost["method"] if not s.cost.empty else []))
    out = dict(_FIXED)
    k = 0
    for n in names:
        if n not in out:
            out[n] = (_PALETTE[k % len(_PALETTE)], _MARKERS[k % len(_MARKERS)])
            k += 1
    return out


def plot_keep_curves(s: BenchSummary, path: Path, metric: str = "ndcg_at_10") -> Path | None:
    import matplotlib.pyplot as plt

    curves = s.curves[s.curves["metric"] == metric]
    if curves.empty:
        return None
    names = [m for m in [*s.baselines, *s.methods] if m != "full"]
    st = _style(s)
    colors = {m: v[0] for m, v in st.items()}
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(14, 5.5))
    for m in names:
        c = curves[curves["method"] == m].sort_values("keep_ratio")
        style = "--" if m in BASELINE_ORDER else "-"
        ax.plot(
            c["keep_ratio"],
            c["mean"],
            style,
            marker=st[m][1],
            ms=4,
            color=colors[m],
            label=m,
            lw=1.6 if m in BASELINE_ORDER else 1.2,
        )
        ci = c["ci"].fillna(0.0)
        ax.fill_between(c["keep_ratio"], c["mean"] - ci, c["mean"] + ci, color=colors[m], alpha=0.12)
    full = curves[curves["method"] == "full"]
    if not full.empty:
        f = full.iloc[0]
        ax.axhline(f["mean"], color="k", lw=0.8, ls=":", label="full data")
    ax.set_xlabel("keep ratio (fraction of training samples kept)")
    ax.set_ylabel(f"holdout {METRIC_LABEL.get(metric, metric)}")
    ax.set_title(
        f"{METRIC_LABEL.get(metric, metric)} vs keep ratio (mean, {s.confidence:.0%} CI over {len(s.seeds)} seeds)"
    )
    ax.grid(alpha=0.3)
    # right: paired difference to random
    comp = s.comparisons[s.comparisons["metric"] == metric]
    ax2.axhline(0.0, color=colors.get("random", "grey"), ls="--", lw=1.2, label="random")
    for m in names:
        if m == "random":
            continue
        c = comp[comp["method"] == m].sort_values("keep_ratio")
        if c.empty:
            continue
        ax2.errorbar(
            c["keep_ratio"],
            c["diff"],
            yerr=c["diff_ci"].fillna(0.0),
            marker=st[m][1],
            ms=4,
            capsize=2,
            color=colors[m],
            ls="--" if m in BASELINE_ORDER else "-",
            lw=1.1,
            label=m,
        )
        sig = c[c["p_value"] < s.alpha]
        ax2.scatter(sig["keep_ratio"], sig["diff"], s=70, facecolors="none", edgecolors=colors[m], lw=1.4)
    ax2.set_xlabel("keep ratio")
    ax2.set_ylabel(f"Δ {METRIC_LABEL.get(metric, metric)} vs random (paired by seed)")
    ax2.set_title(f"difference to random (circled: p < {s.alpha:g}, paired t)")
    ax2.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(f"{s.run_id} ({s.dataset})", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.87, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_keep_panels(s: BenchSummary, path: Path, metric: str = "ndcg_at_10") -> Path | None:
    """One small panel per method: its keep-ratio curve against random and stratified, with CI bands."""
    import matplotlib.pyplot as plt

    curves = s.curves[s.curves["metric"] == metric]
    if curves.empty or not s.methods:
        return None
    st = _style(s)
    ncols = min(4, len(s.methods))
    nrows = int(np.ceil(len(s.methods) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.7 * ncols, 2.9 * nrows), squeeze=False, sharex=True, sharey=True)
    full = curves[curves["method"] == "full"]

    def draw(ax, m, color, ls, label, alpha=0.18):
        c = curves[curves["method"] == m].sort_values("keep_ratio")
        if c.empty:
            return
        ci = c["ci"].fillna(0.0)
        ax.plot(c["keep_ratio"], c["mean"], ls, color=color, marker="o", ms=2.5, lw=1.3, label=label)
        ax.fill_between(c["keep_ratio"], c["mean"] - ci, c["mean"] + ci, color=color, alpha=alpha)

    for ax, m in zip(axes.ravel(), s.methods):
        draw(ax, "random", "#555555", "--", "random", 0.12)
        if "stratified" in s.baselines:
            draw(ax, "stratified", "#999999", ":", "stratified", 0.0)
        draw(ax, m, st[m][0], "-", m)
        if not full.empty:
            ax.axhline(full.iloc[0]["mean"], color="k", lw=0.7, ls=":")
        sig = s.comparisons[
            (s.comparisons["metric"] == metric) & (s.comparisons["method"] == m) & (s.comparisons["p_value"] < s.alpha)
        ]
        mc = curves[curves["method"] == m].set_index("keep_ratio")["mean"]
        ax.scatter(
            sig["keep_ratio"],
            mc.reindex(sig["keep_ratio"]).to_numpy(),
            s=55,
            facecolors="none",
            edgecolors=st[m][0],
            lw=1.3,
        )
        ax.set_title(m, fontsize=9)
        ax.grid(alpha=0.25)
    for ax in axes.ravel()[len(s.methods) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(METRIC_LABEL.get(metric, metric))
    for ax in axes[-1, :]:
        ax.set_xlabel("keep ratio")
    fig.suptitle(
        f"{METRIC_LABEL.get(metric, metric)} vs keep ratio per method (solid) against random (dashed) and "
        f"stratified (dotted grey); bands {s.confidence:.0%} CI over {len(s.seeds)} seeds; circled: paired "
        f"p < {s.alpha:g} vs random; dotted black: full data",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_click_curves(s: BenchSummary, path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    metrics = [m for m in ("click_auc", "click_logloss") if not s.curves[s.curves["metric"] == m].empty]
    if not metrics:
        return None
    st = _style(s)
    colors = {m: v[0] for m, v in st.items()}
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.5 * len(metrics), 4.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        curves = s.curves[s.curves["metric"] == metric]
        for m in [x for x in [*s.baselines, *s.methods] if x != "full"]:
            c = curves[curves["method"] == m].sort_values("keep_ratio")
            ax.plot(
                c["keep_ratio"],
                c["mean"],
                "--" if m in BASELINE_ORDER else "-",
                marker=st[m][1],
                ms=3,
                color=colors[m],
                label=m,
            )
            ci = c["ci"].fillna(0.0)
            ax.fill_between(c["keep_ratio"], c["mean"] - ci, c["mean"] + ci, color=colors[m], alpha=0.1)
        ax.set_xlabel("keep ratio")
        ax.set_ylabel(f"held-out {METRIC_LABEL[metric]}")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best", ncol=2)
    fig.suptitle(f"held-out clicks: {s.run_id}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_roc(s: BenchSummary, path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    if s.roc.empty:
        return None
    auroc = s.noise.set_index("method")["noise_auroc"] if not s.noise.empty else pd.Series(dtype=float)
    order = sorted(s.roc["method"].unique(), key=lambda m: -auroc.get(m, 0.0))
    colors = {m: v[0] for m, v in _style(s).items()}
    fig, ax = plt.subplots(figsize=(7, 6))
    for m in order:
        c = s.roc[s.roc["method"] == m]
        ax.step(
            c["fpr"],
            c["tpr"],
            where="post",
            color=colors[m],
            lw=1.4 if m != "random" else 1.0,
            ls="--" if m == "random" else "-",
            label=f"{m} (AUROC {auroc.get(m, np.nan):.3f})",
        )
    ax.plot([0, 1], [0, 1], color="k", lw=0.6, ls=":")
    ax.set_xlabel("false positive rate (clean samples flagged)")
    ax.set_ylabel("true positive rate (noisy samples flagged)")
    ax.set_title(f"noise detection: lowest importance first\n{s.run_id}", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_cost(s: BenchSummary, path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    if s.cost.empty or "cost_vs_epoch" not in s.cost:
        return None
    c = s.cost.sort_values("cost_vs_epoch")
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(c) + 1.6))
    ax.barh(c["method"], c["cost_vs_epoch"].clip(lower=1e-4), color="tab:blue")
    for y, (v, sec) in enumerate(zip(c["cost_vs_epoch"], c["score_seconds"])):
        ax.text(v, y, f"  {v:.3g}× ({sec:.3g}s)", va="center", fontsize=8)
    ax.axvline(1.0, color="k", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("scoring wall time ÷ one training epoch (log scale; dotted = 1 epoch)")
    epoch = c["reference_epoch_seconds"].mean() if "reference_epoch_seconds" in c else s.run.get("epoch_seconds")
    ax.set_title(
        f"scoring cost per method (one training epoch ≈ {epoch:.2f}s over {int(s.run.get('n_train', 0)):,} "
        "samples, timed beside each method)"
        if epoch
        else "cost per method",
        fontsize=9,
    )
    ax.set_xlim(right=ax.get_xlim()[1] * 4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_score_distributions(s: BenchSummary, path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    if s.dist.empty:
        return None
    methods = [m for m in s.methods if m in set(s.dist["method"])] or sorted(s.dist["method"].unique())
    types = sorted(set(s.dist["noise_type"]) - {"unknown"}, key=lambda t: (t != "none", t))
    ncols = min(4, len(methods))
    nrows = int(np.ceil(len(methods) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows), squeeze=False, sharey=True)
    for ax, m in zip(axes.ravel(), methods):
        d = s.dist[s.dist["method"] == m].pivot_table(index="noise_type", columns="stat", values="value")
        stats = []
        for t in types:
            if t not in d.index:
                continue
            r = d.loc[t]
            stats.append(
                {
                    "label": t,
                    "whislo": r.get("q05"),
                    "q1": r.get("q25"),
                    "med": r.get("q50"),
                    "q3": r.get("q75"),
                    "whishi": r.get("q95"),
                    "mean": r.get("mean"),
                    "fliers": [],
                }
            )
        ax.bxp(
            stats,
            showmeans=True,
            showfliers=False,
            patch_artist=True,
            boxprops={"facecolor": "#cfe0f3"},
            meanprops={"marker": "D", "markersize": 3},
        )
        ax.set_title(m, fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.axhline(0.5, color="k", lw=0.5, ls=":")
        ax.grid(alpha=0.25, axis="y")
    for ax in axes.ravel()[len(methods) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("score percentile")
    fig.suptitle("importance score percentile by noise type (box 25–75%, whiskers 5–95%, ◆ mean)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---- the report ------------------------------------------------------------------------------


def report_markdown(s: BenchSummary, images: dict[str, str]) -> str:
    lines = [f"# Benchmark report: `{s.run_id}`", ""]
    lines += [scale_text(s), ""]
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
    lines += ["", _best_text(s), ""]
    if "ndcg" in images:
        lines += [f"![NDCG@10 vs keep ratio]({images['ndcg']})", ""]
    if "panels" in images:
        lines += [f"![NDCG@10 vs keep ratio, one panel per method]({images['panels']})", ""]
    lines += ["## Paired comparison with random (NDCG@10)", "", md_table(comparison_table(s)), ""]
    lines += ["## Other metrics (mean over seeds)", ""]
    for metric in ("mrr", "click_auc", "click_logloss"):
        if not s.curves[s.curves["metric"] == metric].empty:
            lines += [
                f"### {METRIC_LABEL[metric]}",
                "",
                md_table(headline_table(s, metric).iloc[:, : 1 + len(s.ratios)]),
                "",
            ]
    if "click" in images:
        lines += [f"![click metrics vs keep ratio]({images['click']})", ""]
    lines += ["## Noise detection (oracle)", ""]
    if s.noise.empty:
        lines += ["No oracle for this dataset: noise detection not measured.", ""]
    else:
        lines += [
            "AUROC / AP of *low* importance against the oracle's `is_noise`; AUROC[type] compares that noise "
            "type with clean (`none`) samples only (`duplicate` samples are clean after ingest, so ≈ 0.5 is "
            "expected there).",
            "",
            md_table(noise_table(s)),
            "",
        ]
        if "roc" in images:
            lines += [f"![noise ROC]({images['roc']})", ""]
        if "dist" in images:
            lines += [f"![score distributions by noise type]({images['dist']})", ""]
    lines += [
        "## Cost",
        "",
        "Scoring wall time of each method (the estimator's `score` call, after the model is trained) and "
        "that time divided by one plain training epoch over the same samples, timed in the same process just "
        "before and after the scoring. Methods that read the training dynamics (loss, el2n, forgetting, aum, "
        "tce, rce) cost ~0 here: their inputs are recorded during training at no extra forward pass.",
        "",
        md_table(cost_table(s)),
        "",
    ]
    if "cost" in images:
        lines += [f"![cost]({images['cost']})", ""]
    lines += [
        "## Rebuild",
        "",
        f"`sie report --run-id {s.run_id}` rebuilds this report from the `benchmark_results` "
        f"partition `run_id={s.run_id}` alone.",
        "",
    ]
    return "\n".join(lines)


def _best_text(s: BenchSummary) -> str:
    curves = s.curves[(s.curves["metric"] == "ndcg_at_10") & (s.curves["keep_ratio"] < 1.0)]
    full = s.curves[(s.curves["metric"] == "ndcg_at_10") & (s.curves["method"] == "full")]
    out = []
    for ratio, g in curves.groupby("keep_ratio"):
        best = g.sort_values("mean", ascending=False).iloc[0]
        out.append(f"keep {ratio:g}: {best['method']} {best['mean']:.4f}")
    text = "Best mean NDCG@10 per keep ratio: " + "; ".join(out) + "." if out else ""
    if not full.empty:
        text += f" Full data: {full.iloc[0]['mean']:.4f}."
    return text


def _md_to_html_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p><em>(none)</em></p>"
    return frame.to_html(index=False, escape=True, border=0, classes="t")


def report_html(s: BenchSummary, images: dict[str, str]) -> str:
    esc = html.escape

    def img(key: str, alt: str) -> str:
        return f'<p><img src="{esc(images[key])}" alt="{esc(alt)}" style="max-width:100%"></p>' if key in images else ""

    def md_inline(text: str) -> str:
        t = esc(text)
        t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", t)

    sig = significance_sentences(s)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>SIE benchmark {esc(s.run_id)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table.t{border-collapse:collapse;font-size:13px}table.t td,table.t th{border:1px solid #ccc;padding:3px 7px;"
        "text-align:right}table.t td:first-child{text-align:left}</style></head><body>",
        f"<h1>Benchmark report: <code>{esc(s.run_id)}</code></h1>",
        f"<p>{md_inline(scale_text(s))}</p>",
        f"<p>Grid: methods {esc(', '.join(s.methods))}; baselines {esc(', '.join(s.baselines))}; keep ratios "
        f"{esc(', '.join(f'{r:g}' for r in s.ratios))}; seeds {esc(', '.join(map(str, s.seeds)))}.</p>",
        f"<h2>Holdout NDCG@10 (mean ± {s.confidence:.0%} CI over seeds)</h2>",
        f"<p>▲/▼: significantly better/worse than random (paired t over seeds, p &lt; {s.alpha:g}); † also after "
        "Holm correction. Keep ratio 1 = full data.</p>",
        _md_to_html_table(headline_table(s)),
        "<h3>Significant differences from random</h3><ul>",
        *([f"<li>{md_inline(x)}</li>" for x in sig] or [f"<li>none at p &lt; {s.alpha:g}</li>"]),
        "</ul>",
        f"<p>{esc(_best_text(s))}</p>",
        img("ndcg", "NDCG@10 vs keep ratio"),
        img("panels", "NDCG@10 vs keep ratio per method"),
        "<h2>Paired comparison with random</h2>",
        _md_to_html_table(comparison_table(s)),
        "<h2>Other metrics</h2>",
    ]
    for metric in ("mrr", "click_auc", "click_logloss"):
        if not s.curves[s.curves["metric"] == metric].empty:
            parts += [
                f"<h3>{METRIC_LABEL[metric]}</h3>",
                _md_to_html_table(headline_table(s, metric).iloc[:, : 1 + len(s.ratios)]),
            ]
    parts += [img("click", "click metrics"), "<h2>Noise detection</h2>"]
    parts += (
        ["<p>No oracle: not measured.</p>"]
        if s.noise.empty
        else [_md_to_html_table(noise_table(s)), img("roc", "noise ROC"), img("dist", "score distributions")]
    )
    parts += [
        "<h2>Cost</h2>",
        _md_to_html_table(cost_table(s)),
        img("cost", "cost"),
        f"<p>Rebuild: <code>sie report --run-id {esc(s.run_id)}</code></p></body></html>",
    ]
    return "\n".join(p for p in parts if p)


def build_report(cfg: SieConfig, run_id: str | None = None, out_dir: Path | None = None) -> Path:
    """Write the report for ``run_id`` (default: the latest benchmark run); returns report.md's path."""
    import matplotlib

    matplotlib.use("Agg")
    run_id = run_id or latest_run_id(cfg)
    results = load_results(cfg, run_id)
    s = summarise(results, cfg.bench.confidence, cfg.bench.alpha)
    s.run_id = run_id
    out = Path(out_dir) if out_dir else Warehouse.from_config(cfg).reports_dir / run_id
    out.mkdir(parents=True, exist_ok=True)
    images: dict[str, str] = {}
    for key, fn, name in (
        ("ndcg", plot_keep_curves, "ndcg_vs_keep.png"),
        ("panels", plot_keep_panels, "ndcg_panels.png"),
        ("click", plot_click_curves, "click_vs_keep.png"),
        ("roc", plot_roc, "noise_roc.png"),
        ("cost", plot_cost, "cost.png"),
        ("dist", plot_score_distributions, "score_dist.png"),
    ):
        if fn(s, out / name):
            images[key] = name
    md = report_markdown(s, images)
    (out / "report.md").write_text(md)
    (out / "report.html").write_text(report_html(s, images))
    summary = {
        "run_id": run_id,
        "dataset": s.dataset,
        "headline": headline_table(s).to_dict("records"),
        "comparisons": json.loads(s.comparisons.to_json(orient="records")),
        "noise": json.loads(s.noise.to_json(orient="records")) if not s.noise.empty else [],
        "cost": json.loads(s.cost.to_json(orient="records")) if not s.cost.empty else [],
        "run": s.run,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[sie] report for {run_id}: {out / 'report.md'} (+ report.html, {len(images)} plots)", flush=True)
    return out / "report.md"
