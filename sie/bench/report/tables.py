"""The report's tables (as frames of formatted strings), Markdown tables and sentences."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sie.bench.report.summary import BenchSummary
from sie.selection.grid import BASELINES

METRIC_LABEL = {"ndcg_at_10": "NDCG@10", "mrr": "MRR", "click_auc": "click AUC", "click_logloss": "click log loss"}
LOWER_IS_BETTER = {"click_logloss"}
NOISE_KNOBS = ("bot_rate", "accidental_click_rate", "clickbait_item_rate", "label_flip_rate", "duplicate_event_rate")


def _fmt(x: float, digits: int = 4) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _better(metric: str, diff: float) -> bool:
    return diff > 0 if metric not in LOWER_IS_BETTER else diff < 0


def _mark(s: BenchSummary, metric: str, method: str, ratio: float) -> str:
    """▲/▼ where the paired test vs random is significant, † when also after Holm."""
    c = s.comparisons
    row = c[(c["metric"] == metric) & (c["method"] == method) & (c["keep_ratio"] == ratio)]
    if row.empty:
        return ""
    r = row.iloc[0]
    if not np.isfinite(r["p_value"]) or r["p_value"] >= s.alpha:
        return ""
    arrow = "▲" if _better(metric, r["diff"]) else "▼"
    return arrow + ("†" if np.isfinite(r["p_holm"]) and r["p_holm"] < s.alpha else "")


def _curve_cells(s: BenchSummary, metric: str, method: str) -> dict[str, str]:
    """'mean ± CI' (+ significance mark) per keep ratio for one method's curve."""
    curves = s.curves[(s.curves["metric"] == metric) & (s.curves["method"] == method)]
    row = {}
    for ratio in s.ratios:
        c = curves[curves["keep_ratio"] == ratio]
        if method == "full" and ratio < 1.0 or c.empty:
            row[f"{ratio:g}"] = ""
            continue
        mean, ci = c.iloc[0]["mean"], c.iloc[0]["ci"]
        cell = f"{_fmt(mean)} ± {_fmt(ci)}" if np.isfinite(ci) else _fmt(mean)
        row[f"{ratio:g}"] = cell + _mark(s, metric, method, ratio)
    return row


def headline_table(s: BenchSummary, metric: str = "ndcg_at_10") -> pd.DataFrame:
    """method × keep ratio: 'mean ± CI' with ▲/▼ where the paired test vs random is significant,
    plus noise AUROC / AP and cost per method."""
    noise = s.noise.set_index("method") if not s.noise.empty else None
    cost = s.cost.set_index("method")["cost_vs_epoch"] if not s.cost.empty and "cost_vs_epoch" in s.cost else None
    rows = []
    for method in [*s.baselines, *s.methods]:
        row = {"method": method, **_curve_cells(s, metric, method)}
        if noise is not None:
            for col, label in (("noise_auroc", "noise AUROC"), ("noise_ap", "noise AP")):
                row[label] = _fmt(noise[col].get(method, np.nan), 3) if col in noise else "—"
        if cost is not None:
            row["cost (epochs)"] = _fmt(cost.get(method, np.nan), 2) if method not in BASELINES else "0"
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_table(s: BenchSummary, metric: str = "ndcg_at_10") -> pd.DataFrame:
    """The paired comparisons with random at each keep ratio, best difference first."""
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
    """AUROC / AP per method and AUROC[type] per noise type, best AUROC first."""
    if s.noise.empty:
        return s.noise
    n = s.noise.merge(s.noise_by_type, on="method", how="left").sort_values("noise_auroc", ascending=False)
    labels = {"noise_auroc": "AUROC", "noise_ap": "AP"}
    labels |= {t: f"AUROC[{t}]" for t in s.noise_by_type.columns if t != "method"}
    out = pd.DataFrame({"method": n["method"]})
    for col in n.columns[1:]:
        out[labels[col]] = n[col].map(lambda v: _fmt(v, 3))
    return out


def cost_table(s: BenchSummary) -> pd.DataFrame:
    """Scoring wall time per method and in training epochs, cheapest first."""
    if s.cost.empty:
        return s.cost
    c = s.cost.sort_values("cost_vs_epoch")
    epoch = c["reference_epoch_seconds"] if "reference_epoch_seconds" in c else pd.Series(np.nan, index=c.index)
    return pd.DataFrame(
        {
            "method": c["method"],
            "seconds": c["score_seconds"].map(lambda v: _fmt(v, 2)),
            "samples/s": c["samples_per_second"].map(lambda v: "—" if not np.isfinite(v) else f"{v:,.0f}"),
            "one epoch (s)": epoch.map(lambda v: _fmt(v, 2)),
            "× one training epoch": c["cost_vs_epoch"].map(lambda v: _fmt(v, 3)),
        }
    )


def md_table(frame: pd.DataFrame) -> str:
    """A frame as a Markdown table (``_(none)_`` when empty)."""
    if frame.empty:
        return "_(none)_"
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def significance_sentences(s: BenchSummary, metric: str = "ndcg_at_10") -> list[str]:
    """One sentence per (keep ratio, method) significantly different from random (raw p < alpha)."""
    c = s.comparisons[(s.comparisons["metric"] == metric) & (s.comparisons["p_value"] < s.alpha)]
    label = METRIC_LABEL.get(metric, metric)
    out = []
    for r in c.sort_values(["keep_ratio", "diff"], ascending=[True, False]).itertuples():
        holm_note = "also after Holm correction" if r.p_holm < s.alpha else "not after Holm correction"
        out.append(
            f"keep {r.keep_ratio:g}: **{r.method}** is {'better' if _better(metric, r.diff) else 'worse'} than "
            f"random by {r.diff:+.4f} {label} (p = {r.p_value:.3g}, paired t over {int(r.n)} seeds; {holm_note})"
        )
    return out


def best_text(s: BenchSummary) -> str:
    """The best mean NDCG@10 per keep ratio and the full-data model's."""
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


def scale_text(s: BenchSummary) -> str:
    """The run's dataset, scale and ranker settings in one sentence, plus its label noise."""
    r, setting = s.run, s.settings
    parts = [f"dataset **{s.dataset}**, window ending {s.ds}"]
    if "days" in r:
        parts.append(f"{int(r['days'])} day(s)")
    if "simulate.requests_per_day" in setting:
        parts.append(f"{int(setting['simulate.requests_per_day']):,} requests/day")
    if "n_train" in r:
        parts.append(f"{int(r['n_train']):,} training samples ({int(r.get('n_validation', 0)):,} held-out clicks)")
    if "train.epochs" in setting:
        parts.append(
            f"ranker: {int(setting['train.epochs'])} epochs, batch {int(setting.get('train.batch_size', 0))}, "
            f"one epoch = {r.get('epoch_seconds', float('nan')):.2f}s"
        )
    return "; ".join(parts) + "." + noise_text(s)


def noise_text(s: BenchSummary) -> str:
    """The label-noise sentence of :func:`scale_text` ('' when the run has no oracle)."""
    if "noise_rate" not in s.run:
        return ""
    total = sum(s.noise_counts.values()) or 1.0
    by_type = ", ".join(
        f"{k} {v / total:.1%}" for k, v in sorted(s.noise_counts.items(), key=lambda kv: -kv[1]) if k != "none"
    )
    knobs = ", ".join(f"{k} {s.settings[f'simulate.{k}']:g}" for k in NOISE_KNOBS if f"simulate.{k}" in s.settings)
    return (
        f" Label noise (oracle `is_noise`): **{s.run['noise_rate']:.1%}** of training samples "
        f"(by noise type: {by_type}). Simulator noise knobs: {knobs}."
    )
