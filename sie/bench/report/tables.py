"""The report's tables (as frames of formatted strings), Markdown tables and sentences."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd

from sie.bench.report.summary import BenchSummary
from sie.selection.grid import BASELINES
from sie.simulate.behaviour import LABEL_NOISE

METRIC_LABEL = {
    "ndcg_at_10": "NDCG@10",
    "mrr": "MRR",
    "click_auc": "click AUC",
    "click_logloss": "click log loss",
    "clean_click_auc": "clean-click AUC",
    "clean_click_logloss": "clean-click log loss",
}
LOWER_IS_BETTER = {"click_logloss", "clean_click_logloss"}
# raw held-out click metric → the same metric on the clean clicks (oracle noise removed)
CLEAN_CLICK = {"click_auc": "clean_click_auc", "click_logloss": "clean_click_logloss"}
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
    """AUROC / AP per method and AUROC[type] per noise type (label noise first, duplicates apart
    at the end), best AUROC first."""
    if s.noise.empty:
        return s.noise
    n = s.noise.merge(s.noise_by_type, on="method", how="left").sort_values("noise_auroc", ascending=False)
    types = [c for c in s.noise_by_type.columns if c != "method"]
    out = pd.DataFrame({"method": n["method"]})
    for col, label in (("noise_auroc", "AUROC"), ("noise_ap", "AP")):
        if col in n:
            out[label] = n[col].map(lambda v: _fmt(v, 3))
    others = sorted(set(types) - set(label_noise_types(types)) - set(apart_types(types)))
    for t in [*label_noise_types(types), *others, *apart_types(types)]:
        out[f"AUROC[{t}]"] = n[t].map(lambda v: _fmt(v, 3))
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


def md_inline(text: str) -> str:
    """Escape ``text`` for HTML and render its Markdown **bold**, *italic* and `code` spans."""
    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
    t = re.sub(r"\*(.+?)\*", r"<i>\1</i>", t)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", t)


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
            f"random by {r.diff:+.4f} {label} (p = {r.p_value:.3g}, paired t over {int(r.n)} {s.ci_unit}; {holm_note})"
        )
    return out


def power_table(s: BenchSummary) -> pd.DataFrame:
    """Per held-out query, each method − random in NDCG@10 (pooled over folds, replicates and cell
    seeds): mean difference, paired-t p over queries, and the minimum detectable difference."""
    if s.power.empty:
        return pd.DataFrame()
    p = s.power
    return pd.DataFrame(
        {
            "keep ratio": p["keep_ratio"].map(lambda v: f"{v:g}"),
            "method": p["method"],
            "Δ NDCG@10 vs random": p["diff"].map(lambda v: "—" if not np.isfinite(v) else f"{v:+.4f}"),
            "p (over queries)": p["p_value"].map(lambda v: "—" if not np.isfinite(v) else f"{v:.3g}"),
            "MDE": p["mde"].map(lambda v: _fmt(v, 4)),
        }
    )


def power_text(s: BenchSummary) -> str:
    """What the MDE table measures, with the number of held-out queries it rests on."""
    n = s.run.get("n_holdout_queries")
    queries = f"the {int(n)} distinct held-out queries" if n is not None and np.isfinite(n) else "the held-out queries"
    return (
        f"Paired per query over {queries}: each query's NDCG@10 difference to random is averaged over the "
        "replicates and cell seeds both have; p is a paired t-test over queries and MDE the smallest true "
        f"difference that test detects at α = {s.alpha:g} with power 0.8. A difference smaller than the MDE is "
        "no evidence either way."
    )


def replication_text(s: BenchSummary) -> str:
    """Which sub-runs the cells pool, and what their CIs run over ('' for a plain run)."""
    folds = int(s.run.get("folds", 0) or 0)
    parts = []
    if s.replicates:
        units = ", ".join(f"{i}: world seed {w}, scoring-model seed {m}" for i, (w, m) in enumerate(s.replicates))
        parts.append(f"Replicated run: {len(s.replicates)} replicate(s) ({units})")
    if folds >= 2:
        parts.append(f"query {folds}-fold: every judged query held out in exactly one fold, folds pooled per replicate")
    if not parts:
        return ""
    if len(s.replicates) > 1:
        parts.append(
            f"each cell is one value per replicate (the mean over its cell seeds), so CIs and paired tests run "
            f"over {s.ci_unit} (`seed` = replicate index)"
        )
    return "; ".join(parts) + "."


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
            + epoch_text(s)
        )
    return "; ".join(parts) + "." + noise_text(s)


# ---- the one epoch time -------------------------------------------------------------------


def epoch_seconds(s: BenchSummary) -> tuple[float, float, float, int]:
    """(mean, min, max, n) of the one training-epoch time the report quotes everywhere.

    Two timings exist: the scoring model's training time ÷ its epochs (the ``_run`` row
    ``epoch_seconds``, one measurement in the prepare step) and the plain epochs timed just
    before and after each method's scoring (``reference_epoch_seconds``), which are what
    ``cost_vs_epoch`` divides by. They are taken at different moments under different load,
    so they disagree (e.g. 0.73 s vs a mean of 0.83 s in bench-synthetic-63d7c1eeb3); the
    report uses the second everywhere, and the first only when no method was timed.
    """
    ref = s.cost["reference_epoch_seconds"].dropna() if "reference_epoch_seconds" in s.cost else pd.Series([])
    if len(ref):
        return float(ref.mean()), float(ref.min()), float(ref.max()), len(ref)
    one = float(s.run.get("epoch_seconds", np.nan))
    return one, one, one, 1 if np.isfinite(one) else 0


def epoch_text(s: BenchSummary) -> str:
    """'one training epoch ≈ 0.83 s (…)' with where the figure comes from."""
    mean, lo, hi, n = epoch_seconds(s)
    if not n:
        return "one training epoch: not timed"
    if "reference_epoch_seconds" in s.cost and n:
        spread = f", {lo:.2f}–{hi:.2f} s" if n > 1 else ""
        return (
            f"one training epoch ≈ {mean:.2f} s (mean of the plain epochs timed beside each of {n} methods' "
            f"scoring{spread}; the cost ratios divide by these)"
        )
    return f"one training epoch ≈ {mean:.2f} s (scoring model's training time ÷ epochs)"


# ---- noise types -----------------------------------------------------------------------


def label_noise_types(types) -> list[str]:
    """The label-noise types among ``types`` (they make up ``noise_rate``), in the simulator's order."""
    return [t for t in LABEL_NOISE if t in set(types)]


def apart_types(types) -> list[str]:
    """Noise types shown apart: not label noise and not clean (``duplicate``: exact log copies that a
    correct ingest drops, so the sample itself is clean and not in the noise total)."""
    return sorted(set(types) - set(LABEL_NOISE) - {"none", "unknown"})


def noise_text(s: BenchSummary) -> str:
    """The label-noise sentence of :func:`scale_text` ('' when the run has no oracle).

    The listed label-noise types add up to the total; duplicates (and any other non-label
    type) are listed apart, as everywhere else in the report.
    """
    if "noise_rate" not in s.run:
        return ""
    total = sum(s.noise_counts.values()) or 1.0
    counts = s.noise_counts
    label = sorted(label_noise_types(counts), key=lambda k: -counts[k])
    by_type = ", ".join(f"{k} {counts[k] / total:.1%}" for k in label)
    apart = ", ".join(f"{k} {counts[k] / total:.1%}" for k in apart_types(counts))
    knobs = ", ".join(f"{k} {s.settings[f'simulate.{k}']:g}" for k in NOISE_KNOBS if f"simulate.{k}" in s.settings)
    text = (
        f" Label noise (oracle `is_noise`): **{s.run['noise_rate']:.1%}** of training samples "
        f"(by noise type, adding up to the total: {by_type or '—'})."
    )
    if apart:
        text += (
            f" Shown apart, not in the total: {apart} (duplicated log lines, which a correct ingest drops: "
            "the sample itself is clean)."
        )
    return text + f" Simulator noise knobs: {knobs}."


# ---- held-out clicks: raw beside clean, and why the good detectors collapse on raw clicks ------


def has_metric(s: BenchSummary, metric: str) -> bool:
    return not s.curves[s.curves["metric"] == metric].empty


def click_table(s: BenchSummary, metric: str = "click_auc") -> pd.DataFrame:
    """method × keep ratio: the raw held-out click metric's mean, and beside it ('raw / clean') the same
    metric on the clean clicks when the run has it."""
    clean = CLEAN_CLICK.get(metric)
    clean = clean if clean and has_metric(s, clean) else None
    curves = s.curves.set_index(["metric", "method", "keep_ratio"])["mean"]
    rows = []
    for method in [*s.baselines, *s.methods]:
        row = {"method": method}
        for ratio in s.ratios:
            if method == "full" and ratio < 1.0:
                row[f"{ratio:g}"] = ""
                continue
            raw = _fmt(curves.get((metric, method, ratio), np.nan), 3)
            row[f"{ratio:g}"] = f"{raw} / {_fmt(curves.get((clean, method, ratio), np.nan), 3)}" if clean else raw
        rows.append(row)
    return pd.DataFrame(rows)


def best_detectors(s: BenchSummary, k: int = 3) -> list[str]:
    """The ``k`` scored methods with the highest noise AUROC that also have cells (best first)."""
    if s.noise.empty:
        return []
    n = s.noise[s.noise["method"].isin(s.methods)].sort_values("noise_auroc", ascending=False)
    return n["method"].head(k).tolist()


def _span(s: BenchSummary, metric: str, methods: list[str]) -> tuple[float, float]:
    """(min, max) of the mean ``metric`` of ``methods`` over the keep ratios below 1."""
    c = s.curves[(s.curves["metric"] == metric) & s.curves["method"].isin(methods) & (s.curves["keep_ratio"] < 1)]
    return (float(c["mean"].min()), float(c["mean"].max())) if len(c) else (np.nan, np.nan)


def _below_random(s: BenchSummary, metric: str, methods: list[str]) -> list[str]:
    """Those of ``methods`` whose mean ``metric`` is below random's at every keep ratio below 1."""
    c = s.curves[(s.curves["metric"] == metric) & (s.curves["keep_ratio"] < 1)]
    wide = c.pivot_table(index="keep_ratio", columns="method", values="mean")
    if "random" not in wide:
        return []
    return [m for m in methods if m in wide and (wide[m] < wide["random"]).all()]


def _full(s: BenchSummary, metric: str) -> float:
    c = s.curves[(s.curves["metric"] == metric) & (s.curves["method"] == "full")]
    return float(c["mean"].iloc[0]) if len(c) else np.nan


def _range(lo: float, hi: float) -> str:
    return _fmt(lo, 3) if np.isclose(lo, hi, atol=5e-4) else f"{_fmt(lo, 3)}–{_fmt(hi, 3)}"


def click_collapse_text(s: BenchSummary) -> list[str]:
    """Paragraphs (Markdown) explaining, with this run's numbers, why the best noise detectors look
    worse than random on the raw held-out clicks; [] without an oracle or click metrics."""
    detectors = best_detectors(s)
    if not detectors or not has_metric(s, "click_auc") or "random" not in s.baselines:
        return []
    auroc = s.noise.set_index("method")["noise_auroc"]
    det_auc, rnd_auc = _span(s, "click_auc", detectors), _span(s, "click_auc", ["random"])
    det_ll, rnd_ll = _span(s, "click_logloss", detectors), _span(s, "click_logloss", ["random"])
    names = ", ".join(f"`{m}`" for m in detectors)
    facts = (
        f"In this run the {len(detectors)} best noise detectors ({names}; noise AUROC "
        f"{_range(auroc[detectors].min(), auroc[detectors].max())}) reach a raw held-out click AUC of "
        f"**{_range(*det_auc)}** (log loss {_range(*det_ll)}) over the keep ratios below 1, against "
        f"{_fmt(_full(s, 'click_auc'), 3)} (log loss {_fmt(_full(s, 'click_logloss'), 3)}) for the full-data "
        f"model and {_range(*rnd_auc)} (log loss {_range(*rnd_ll)}) for random."
    )
    below = _below_random(s, "click_auc", detectors)
    if below:
        facts += (
            f" On raw clicks {', '.join(f'`{m}`' for m in below)} look(s) *worse than random* at every keep ratio "
            "below 1, although they keep the cleanest data."
        )
    else:
        facts += " None of them is below random at every keep ratio on raw clicks here."
    why = (
        "Why: the held-out clicks come from the same traffic as the training clicks and carry the same "
        f"label noise ({s.run.get('noise_rate', np.nan):.1%} of training samples are label noise in this run, and "
        "noisy impressions click far more often than clean ones, so the share of *clicks* that are noise is "
        "larger still: 58% and 61% in the synthetic and ESCI worlds of docs/BENCHMARKS.md). A model retrained "
        "without the noisy samples predicts relevance: it ranks the noise clicks low, which scores below "
        "chance on a click set where they are the majority, and it learns the lower click rate of clean samples, "
        "which inflates the log loss. Raw click metrics measure agreement with the noisy logs, not ranking "
        "quality; NDCG@10 on judged relevance is the primary metric."
    )
    if has_metric(s, "clean_click_auc"):
        det_clean, rnd_clean = _span(s, "clean_click_auc", detectors), _span(s, "clean_click_auc", ["random"])
        clean = (
            "On the **clean clicks** (the held-out clicks with the oracle's label noise removed) the same "
            f"detectors reach a clean-click AUC of **{_range(*det_clean)}**, against "
            f"{_fmt(_full(s, 'clean_click_auc'), 3)} for full data and {_range(*rnd_clean)} for random."
        )
    else:
        clean = "This run has no clean-click rows (held-out clicks with the oracle's noise removed)."
    return [facts, why, clean]
