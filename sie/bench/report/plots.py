"""The report's matplotlib plots; each ``plot_*`` writes one PNG (atomically) or returns None when it has no data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sie.bench.report.summary import BenchSummary
from sie.bench.report.tables import (
    CLEAN_CLICK,
    METRIC_LABEL,
    apart_types,
    best_detectors,
    epoch_text,
    has_metric,
    label_noise_types,
)
from sie.bench.rows import SCORE_QUANTILES
from sie.files import atomic_path
from sie.selection.grid import BASELINES

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


def _save(fig, path: Path, dpi: int) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return Path(path)


GREY = "#b0b0b0"
TOP_K = 3  # methods drawn in colour (with CI bands) in the all-method plots; the rest thin grey


def ranked_methods(s: BenchSummary, metric: str = "ndcg_at_10") -> list[str]:
    """Scored methods, best first by their mean paired difference to random over the keep ratios
    (by their mean curve when there is no random baseline)."""
    comp = s.comparisons[s.comparisons["metric"] == metric]
    if not comp.empty:
        score = comp.groupby("method")["diff"].mean()
    else:
        c = s.curves[(s.curves["metric"] == metric) & (s.curves["keep_ratio"] < 1.0)]
        score = c.groupby("method")["mean"].mean()
    return sorted(s.methods, key=lambda m: (-score.get(m, -np.inf), m))


def highlighted(s: BenchSummary, metric: str = "ndcg_at_10", k: int = TOP_K) -> list[str]:
    """The methods drawn in colour: the ``k`` best by :func:`ranked_methods`."""
    return ranked_methods(s, metric)[:k]


def plot_keep_curves(s: BenchSummary, path: Path, metric: str = "ndcg_at_10") -> Path | None:
    """Left: the metric vs keep ratio, the top methods in colour with CI bands, the others thin grey,
    random (band) and full data as references; right: the paired difference to random, same styling."""
    import matplotlib.pyplot as plt

    curves = s.curves[s.curves["metric"] == metric]
    if curves.empty:
        return None
    top = highlighted(s, metric)
    st = _style(s)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(14, 5.5))
    _draw_mean_curves(s, ax, curves, top, st, metric)
    _draw_differences(s, ax2, top, st, metric)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(
        f"{s.run_id} ({s.dataset}): the {len(top)} best methods by mean difference to random in colour, "
        f"the other {len(s.methods) - len(top)} in grey (every method: the per-method panels)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 0.86, 0.96))
    return _save(fig, path, 110)


def _curve(ax, c: pd.DataFrame, color: str, ls: str, label: str | None, band: float, lw: float, marker=None):
    ax.plot(c["keep_ratio"], c["mean"], ls, color=color, marker=marker, ms=4, lw=lw, label=label)
    if band:
        ci = c["ci"].fillna(0.0)
        ax.fill_between(c["keep_ratio"], c["mean"] - ci, c["mean"] + ci, color=color, alpha=band)


def _draw_curves(
    s: BenchSummary,
    ax,
    curves: pd.DataFrame,
    top: list[str],
    st: dict,
    baseline_lw: float,
    top_lw: float,
    top_alpha: float,
) -> None:
    """One metric's keep-ratio curves: other methods in grey, baselines dashed, ``top`` in colour with
    CI bands, full data as a dotted line."""

    def of(m: str) -> pd.DataFrame:
        return curves[curves["method"] == m].sort_values("keep_ratio")

    for n, m in enumerate(m for m in s.methods if m not in top):
        _curve(ax, of(m), GREY, "-", "other methods" if n == 0 else None, 0.0, 0.8)
    for m in [b for b in s.baselines if b != "full"]:
        _curve(ax, of(m), st[m][0], "--", m, 0.12 if m == "random" else 0.0, baseline_lw, st[m][1])
    for m in top:
        _curve(ax, of(m), st[m][0], "-", m, top_alpha, top_lw, st[m][1])
    full = curves[curves["method"] == "full"]
    if not full.empty:
        ax.axhline(full.iloc[0]["mean"], color="k", lw=0.8, ls=":", label="full data")


def _draw_mean_curves(s: BenchSummary, ax, curves: pd.DataFrame, top: list[str], st: dict, metric: str) -> None:
    _draw_curves(s, ax, curves, top, st, baseline_lw=1.6, top_lw=1.8, top_alpha=0.10)
    ax.set_xlabel("keep ratio (fraction of training samples kept)")
    ax.set_ylabel(f"holdout {METRIC_LABEL.get(metric, metric)}")
    ax.set_title(
        f"{METRIC_LABEL.get(metric, metric)} vs keep ratio (mean, {s.confidence:.0%} CI over {len(s.seeds)} {s.ci_unit})",
        fontsize=10,
    )
    ax.grid(alpha=0.3)


def _draw_differences(s: BenchSummary, ax2, top: list[str], st: dict, metric: str) -> None:
    comp = s.comparisons[s.comparisons["metric"] == metric]
    ax2.axhline(0.0, color=st["random"][0] if "random" in st else "grey", ls="--", lw=1.2)
    names = [*(m for m in s.methods if m not in top), *(b for b in s.baselines if b not in ("random", "full")), *top]
    coloured = [m for m in names if m in top or m in BASELINES]
    for m in names:
        c = comp[comp["method"] == m].sort_values("keep_ratio")
        if c.empty:
            continue
        if m not in top and m not in BASELINES:
            ax2.plot(c["keep_ratio"], c["diff"], "-", color=GREY, lw=0.8)
            continue
        dodge = 0.008 * (coloured.index(m) - (len(coloured) - 1) / 2)  # side by side, so the bars do not overlap
        ax2.errorbar(
            c["keep_ratio"] + dodge,
            c["diff"],
            yerr=c["diff_ci"].fillna(0.0),
            marker=st[m][1],
            ms=4,
            capsize=2,
            color=st[m][0],
            ls="--" if m in BASELINES else "-",
            lw=1.4,
        )
        sig = c[c["p_value"] < s.alpha]
        ax2.scatter(sig["keep_ratio"] + dodge, sig["diff"], s=70, facecolors="none", edgecolors=st[m][0], lw=1.4)
    ax2.set_xlabel("keep ratio")
    ax2.set_ylabel(f"Δ {METRIC_LABEL.get(metric, metric)} vs random (paired over {s.ci_unit})")
    ax2.set_title(
        f"difference to random (bars: {s.confidence:.0%} CI; circled: p < {s.alpha:g}, paired t)", fontsize=10
    )
    ax2.grid(alpha=0.3)


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

    for rank, (ax, m) in enumerate(zip(axes.ravel(), ranked_methods(s, metric)), 1):
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
        ax.set_title(f"#{rank} {m}", fontsize=9)
        ax.grid(alpha=0.25)
    for ax in axes.ravel()[len(s.methods) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(METRIC_LABEL.get(metric, metric))
    for ax in axes[-1, :]:
        ax.set_xlabel("keep ratio")
    fig.suptitle(
        f"{METRIC_LABEL.get(metric, metric)} vs keep ratio per method (solid) against random (dashed) and "
        f"stratified (dotted grey); bands {s.confidence:.0%} CI over {len(s.seeds)} {s.ci_unit};\ncircled: paired "
        f"p < {s.alpha:g} vs random; dotted black: full data; panels ordered by mean difference to random",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
    return _save(fig, path, 100)


def plot_click_curves(s: BenchSummary, path: Path) -> Path | None:
    """Held-out click AUC and log loss vs keep ratio; with clean-click rows, the clean metric beside each
    raw one. Same styling as the NDCG plot: its top methods in colour, the others grey."""
    import matplotlib.pyplot as plt

    raw = [m for m in ("click_auc", "click_logloss") if has_metric(s, m)]
    if not raw:
        return None
    columns = [[m, CLEAN_CLICK[m]] if has_metric(s, CLEAN_CLICK[m]) else [m] for m in raw]
    ncols = max(len(c) for c in columns)
    fig, axes = plt.subplots(len(raw), ncols, figsize=(6.2 * ncols, 4.2 * len(raw)), squeeze=False)
    # in colour: the best noise detectors (whose raw-click collapse the report explains), else the NDCG top
    top, st = best_detectors(s, TOP_K) or highlighted(s), _style(s)
    which = "best noise detectors" if best_detectors(s) else "best methods by NDCG@10"
    for row, metrics in zip(axes, columns):
        for ax, metric in zip(row, metrics):
            curves = s.curves[s.curves["metric"] == metric]
            _draw_curves(s, ax, curves, top, st, baseline_lw=1.4, top_lw=1.6, top_alpha=0.12)
            kind = "clean clicks (oracle noise removed)" if metric in CLEAN_CLICK.values() else "raw held-out clicks"
            ax.set_title(f"{METRIC_LABEL[metric]}: {kind}", fontsize=10)
            ax.set_xlabel("keep ratio")
            ax.set_ylabel(METRIC_LABEL[metric])
            ax.grid(alpha=0.3)
        for ax in row[len(metrics) :]:
            ax.axis("off")
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(f"held-out clicks: {s.run_id} (in colour: the {len(top)} {which}; grey: the others)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path, 100)


def plot_roc(s: BenchSummary, path: Path) -> Path | None:
    """Noise-detection ROC (lowest importance first): all label noise, then one panel per noise type
    (that type against clean samples) when the run has per-type curves; the best methods of each panel
    (by AUROC) in colour, the others grey, random dashed."""
    import matplotlib.pyplot as plt

    if s.roc.empty:
        return None
    panels = [("all label noise", s.roc, _auroc(s, None))]
    types = set(s.roc_by_type["noise_type"]) if not s.roc_by_type.empty else set()
    apart = apart_types(types)  # duplicates: clean after ingest, their own panel last
    for t in [*label_noise_types(types), *apart]:
        title = f"{t} (clean after ingest: ≈ 0.5 expected)" if t in apart else f"{t} vs clean"
        panels.append((title, s.roc_by_type[s.roc_by_type["noise_type"] == t], _auroc(s, t)))
    ncols = min(3, len(panels))
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 4.6 * nrows), squeeze=False)
    colors = {m: v[0] for m, v in _style(s).items()}
    for ax, (title, roc, auroc) in zip(axes.ravel(), panels):
        methods = sorted(roc["method"].unique(), key=lambda m: -auroc.get(m, 0.0))
        top = [m for m in methods if m != "random"][:TOP_K]
        for m in [*(m for m in methods if m not in top), *top]:
            c = roc[roc["method"] == m]
            shown = m in top or m == "random"
            ax.step(
                c["fpr"],
                c["tpr"],
                where="post",
                color=colors.get(m, GREY) if shown else GREY,
                lw=1.6 if m in top else 0.8,
                ls="--" if m == "random" else "-",
                label=f"{m} ({auroc.get(m, np.nan):.3f})" if shown else None,
            )
        ax.plot([0, 1], [0, 1], color="k", lw=0.6, ls=":")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("false positive rate (clean samples flagged)", fontsize=8)
        ax.set_ylabel("true positive rate (noisy flagged)", fontsize=8)
        ax.legend(fontsize=7, loc="lower right", title="AUROC", title_fontsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    fig.suptitle(f"noise detection, lowest importance first (grey: the other methods): {s.run_id}", fontsize=10)
    fig.tight_layout()
    return _save(fig, path, 100)


def _auroc(s: BenchSummary, noise_type: str | None) -> pd.Series:
    """Noise AUROC per method: over all label noise (None) or one type against clean samples."""
    if noise_type is None:
        return s.noise.set_index("method")["noise_auroc"] if not s.noise.empty else pd.Series(dtype=float)
    by_type = s.noise_by_type
    return by_type.set_index("method")[noise_type] if noise_type in by_type else pd.Series(dtype=float)


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
    n_train = int(s.run.get("n_train", 0))
    ax.set_title(f"scoring cost per method over {n_train:,} samples; {epoch_text(s)}", fontsize=8, wrap=True)
    ax.set_xlim(right=ax.get_xlim()[1] * 4)
    fig.tight_layout()
    return _save(fig, path, 110)


def _box_stats(d: pd.DataFrame, label: str) -> dict:
    """Box statistics from one (method, noise type)'s score percentile rows: box 25–75%, whiskers 5–95%."""
    quantiles = d[d["metric"] == "score_pct_quantile"]

    def q(at: float) -> float | None:
        v = quantiles.loc[np.isclose(quantiles["at"], at), "value"]
        return float(v.mean()) if len(v) else None

    mean = d.loc[d["metric"] == "score_pct_mean", "value"]
    whislo, q1, med, q3, whishi = (q(a) for a in SCORE_QUANTILES)
    return {
        "label": label,
        "whislo": whislo,
        "q1": q1,
        "med": med,
        "q3": q3,
        "whishi": whishi,
        "mean": float(mean.mean()) if len(mean) else None,
        "fliers": [],
    }


def plot_score_distributions(s: BenchSummary, path: Path) -> Path | None:
    """One panel per method: the score percentile's distribution per noise type as box plots."""
    import matplotlib.pyplot as plt

    if s.dist.empty:
        return None
    methods = [m for m in s.methods if m in set(s.dist["method"])] or sorted(s.dist["method"].unique())
    present = set(s.dist["noise_type"])
    types = [*({"none"} & present), *label_noise_types(present), *apart_types(present)]
    ncols = min(4, len(methods))
    nrows = int(np.ceil(len(methods) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows), squeeze=False, sharey=True)
    for ax, m in zip(axes.ravel(), methods):
        d = s.dist[s.dist["method"] == m]  # duplicates last: clean after ingest, shown apart
        stats = [_box_stats(d[d["noise_type"] == t], t) for t in types if (d["noise_type"] == t).any()]
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
    return _save(fig, path, 100)


# ---- the report ------------------------------------------------------------------------------
