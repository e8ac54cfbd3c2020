"""The report's matplotlib plots; each ``plot_*`` writes one PNG (atomically) or returns None when it has no data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sie.bench.report.summary import BenchSummary
from sie.bench.report.tables import METRIC_LABEL
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


def plot_keep_curves(s: BenchSummary, path: Path, metric: str = "ndcg_at_10") -> Path | None:
    """Left: the metric vs keep ratio per method (mean, CI band); right: the paired difference to random."""
    import matplotlib.pyplot as plt

    curves = s.curves[s.curves["metric"] == metric]
    if curves.empty:
        return None
    names = [m for m in [*s.baselines, *s.methods] if m != "full"]
    st = _style(s)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(14, 5.5))
    _draw_mean_curves(s, ax, curves, names, st, metric)
    _draw_differences(s, ax2, names, st, metric)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(f"{s.run_id} ({s.dataset})", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.87, 0.97))
    return _save(fig, path, 110)


def _draw_mean_curves(s: BenchSummary, ax, curves: pd.DataFrame, names: list[str], st: dict, metric: str) -> None:
    for m in names:
        c = curves[curves["method"] == m].sort_values("keep_ratio")
        style = "--" if m in BASELINES else "-"
        ax.plot(
            c["keep_ratio"],
            c["mean"],
            style,
            marker=st[m][1],
            ms=4,
            color=st[m][0],
            label=m,
            lw=1.6 if m in BASELINES else 1.2,
        )
        ci = c["ci"].fillna(0.0)
        ax.fill_between(c["keep_ratio"], c["mean"] - ci, c["mean"] + ci, color=st[m][0], alpha=0.12)
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


def _draw_differences(s: BenchSummary, ax2, names: list[str], st: dict, metric: str) -> None:
    comp = s.comparisons[s.comparisons["metric"] == metric]
    ax2.axhline(0.0, color=st["random"][0] if "random" in st else "grey", ls="--", lw=1.2, label="random")
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
            color=st[m][0],
            ls="--" if m in BASELINES else "-",
            lw=1.1,
            label=m,
        )
        sig = c[c["p_value"] < s.alpha]
        ax2.scatter(sig["keep_ratio"], sig["diff"], s=70, facecolors="none", edgecolors=st[m][0], lw=1.4)
    ax2.set_xlabel("keep ratio")
    ax2.set_ylabel(f"Δ {METRIC_LABEL.get(metric, metric)} vs random (paired by seed)")
    ax2.set_title(f"difference to random (circled: p < {s.alpha:g}, paired t)")
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
    return _save(fig, path, 100)


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
                "--" if m in BASELINES else "-",
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
    return _save(fig, path, 110)


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
    return _save(fig, path, 110)


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
    types = sorted(set(s.dist["noise_type"]) - {"unknown"}, key=lambda t: (t != "none", t))
    ncols = min(4, len(methods))
    nrows = int(np.ceil(len(methods) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows), squeeze=False, sharey=True)
    for ax, m in zip(axes.ravel(), methods):
        d = s.dist[s.dist["method"] == m]
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
