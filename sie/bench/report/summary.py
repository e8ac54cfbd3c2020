"""Reading a run's ``benchmark_results`` rows and summarising them into :class:`BenchSummary`.

Cells (rows with a keep ratio) become keep-ratio curves (mean and CI over seeds) and paired
comparisons with random; per-method rows (null keep ratio) become the noise-detection,
cost, ROC and score-distribution frames; ``_run`` rows the run's scale and settings. The
row vocabulary is :mod:`sie.bench.rows`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sie.bench.metrics import holm, mean_ci, paired_comparison
from sie.bench.rows import RUN_METHOD
from sie.config import SieConfig
from sie.selection.grid import BASELINES
from sie.store import Warehouse

# clean_click_*: the held-out clicks with the oracle's label noise removed (only runs with an oracle)
CELL_METRICS = ("ndcg_at_10", "mrr", "click_auc", "click_logloss", "clean_click_auc", "clean_click_logloss")
COST_METRICS = ("score_seconds", "samples_per_second", "reference_epoch_seconds", "cost_vs_epoch")
NOISE_METRICS = ("noise_auroc", "noise_ap")
# per-query paired NDCG@10 vs random (sie.bench.rows.power_rows; at = the keep ratio) → power-frame column
POWER_METRICS = {"ndcg_query_diff": "diff", "ndcg_query_p_value": "p_value", "ndcg_mde": "mde"}


# ---- reading ---------------------------------------------------------------------


def load_results(cfg: SieConfig, run_id: str) -> pd.DataFrame:
    """The ``benchmark_results`` rows of ``run_id``; FileNotFoundError (naming the published runs) if none."""
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


# ---- the summary -----------------------------------------------------------------


@dataclass
class BenchSummary:
    run_id: str
    dataset: str
    ds: str
    run: dict[str, float]  # run-level scalars: days, n_train, n_validation, epoch_seconds, noise_rate, ...
    settings: dict[str, float]  # run settings by name, e.g. "simulate.requests_per_day", "train.epochs"
    noise_counts: dict[str, float]  # training samples per noise type
    methods: list[str]  # scored methods, in report order
    baselines: list[str]
    ratios: list[float]  # incl. 1.0 when `full` ran
    seeds: list[int]
    curves: pd.DataFrame  # metric, method, keep_ratio, mean, ci, n
    comparisons: pd.DataFrame  # metric, method, keep_ratio, diff, diff_ci, p_value, n, p_holm
    noise: pd.DataFrame  # method, noise_auroc, noise_ap
    noise_by_type: pd.DataFrame  # method, then one column per noise type: AUROC of that type vs clean
    cost: pd.DataFrame  # method, score_seconds, samples_per_second, reference_epoch_seconds, cost_vs_epoch
    roc: pd.DataFrame  # method, fpr, tpr (all matched samples)
    dist: pd.DataFrame  # method, noise_type, metric (score_pct_mean / score_pct_quantile), at, value
    confidence: float = 0.95
    alpha: float = 0.05
    notes: list[str] = field(default_factory=list)
    roc_by_type: pd.DataFrame = field(default_factory=pd.DataFrame)  # method, noise_type, fpr, tpr
    power: pd.DataFrame = field(default_factory=pd.DataFrame)  # method, keep_ratio, diff, p_value, mde
    # replicated runs: (world seed, scoring-model seed) of each replicate, indexed by the cells' `seed`
    replicates: list[tuple[int, int]] = field(default_factory=list)

    @property
    def ci_unit(self) -> str:
        """What the CIs and paired tests run over: the cells' ``seed`` is a replicate index when replicated."""
        if len(self.replicates) < 2:
            return "seeds"
        worlds, models = ({r[i] for r in self.replicates} for i in (0, 1))
        if len(models) == 1:
            return "worlds"
        return "scoring-model seeds" if len(worlds) == 1 else "replicates (world × scoring-model seed)"


def summarise(results: pd.DataFrame, confidence: float = 0.95, alpha: float = 0.05) -> BenchSummary:
    """Summarise one run's ``benchmark_results`` rows (as :func:`load_results` returns them)."""
    res = results.copy()
    res["keep_ratio"] = pd.to_numeric(res["keep_ratio"], errors="coerce")
    res["at"] = pd.to_numeric(res["at"], errors="coerce")
    is_run = res["method"] == RUN_METHOD
    cells = res[res["keep_ratio"].notna() & ~is_run].copy()
    cells["seed"] = cells["seed"].astype(int)
    other = res[res["keep_ratio"].isna() & ~is_run]
    run, settings, noise_counts = run_info(res[is_run])
    baselines, methods = grid_methods(cells)
    curve_cells = with_full_data(cells, [*baselines, *methods])
    noise, noise_by_type = noise_frames(other)
    first = results.iloc[0]
    return BenchSummary(
        run_id=str(first["run_id"]) if "run_id" in results else "",
        dataset=str(first["dataset"]),
        ds=str(first["ds"]),
        run=run,
        settings=settings,
        noise_counts=noise_counts,
        methods=methods,
        baselines=baselines,
        ratios=sorted(cells["keep_ratio"].unique().tolist()),
        seeds=sorted(cells["seed"].unique().tolist()),
        curves=keep_curves(curve_cells, confidence),
        comparisons=paired_comparisons(curve_cells, confidence),
        noise=noise,
        noise_by_type=noise_by_type,
        cost=cost_frame(other),
        roc=roc_frame(other),
        dist=score_distributions(other),
        confidence=confidence,
        alpha=alpha,
        roc_by_type=roc_by_type_frame(other),
        power=power_frame(other),
        replicates=replicate_units(res[is_run]),
    )


# ---- the run ----------------------------------------------------------------------


def run_info(run_rows: pd.DataFrame) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """(run scalars by metric, settings by name, training samples by noise type) from the ``_run`` rows."""
    subset = run_rows["subset"]
    scalar = run_rows[subset.isna() & run_rows["at"].isna()]
    settings = run_rows[(run_rows["metric"] == "setting") & subset.notna()]
    counts = run_rows[(run_rows["metric"] == "n_samples") & subset.notna()]

    def as_dict(frame: pd.DataFrame, key: str) -> dict[str, float]:
        return {str(k): float(v) for k, v in zip(frame[key], frame["value"])}

    return as_dict(scalar, "metric"), as_dict(settings, "subset"), as_dict(counts, "subset")


def replicate_units(run_rows: pd.DataFrame) -> list[tuple[int, int]]:
    """(world seed, scoring-model seed) per replicate index, from the ``replicate_*`` run rows; [] if not replicated."""
    by_index: dict[int, dict[str, int]] = {}
    for metric, key in (("replicate_world_seed", "world"), ("replicate_model_seed", "model")):
        for subset, value in run_rows.loc[run_rows["metric"] == metric, ["subset", "value"]].itertuples(index=False):
            by_index.setdefault(int(subset), {})[key] = int(value)
    return [(u["world"], u["model"]) for _, u in sorted(by_index.items()) if len(u) == 2]


# ---- cells: keep-ratio curves and paired comparisons ------------------------------------


def grid_methods(cells: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(baselines, scored methods) that have cells, each in report order (sorted)."""
    cell_methods = set(cells["method"])
    return sorted(cell_methods & set(BASELINES)), sorted(cell_methods - set(BASELINES))


def with_full_data(cells: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The cells plus the ``full`` cells copied to every other method at keep ratio 1.0.

    Every curve ends at 1.0 with the full-data model (keeping 100% is the same for all methods).
    """
    full = cells[cells["method"] == "full"]
    parts = [cells[cells["method"] != "full"]]
    for m in names:
        if m != "full" and not full.empty:
            parts.append(full.assign(method=m))
    parts.append(full)
    return pd.concat(parts, ignore_index=True)


def keep_curves(cells: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Mean and CI half width over seeds per (metric, method, keep ratio)."""
    rows = []
    for metric in CELL_METRICS:
        part = cells[cells["metric"] == metric]
        for (method, ratio), g in part.groupby(["method", "keep_ratio"]):
            mean, ci, n = mean_ci(g["value"], confidence)
            rows.append({"metric": metric, "method": method, "keep_ratio": ratio, "mean": mean, "ci": ci, "n": n})
    return pd.DataFrame(rows, columns=["metric", "method", "keep_ratio", "mean", "ci", "n"])


def paired_comparisons(cells: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Each method (and non-random baseline) against random at the same keep ratio, paired by seed.

    A paired t-test over the seeds both have; ``p_holm`` is Holm-adjusted over the methods
    compared at one (metric, keep ratio).
    """
    rows = []
    for metric in CELL_METRICS:
        part = cells[cells["metric"] == metric]
        rnd = part[part["method"] == "random"].set_index(["keep_ratio", "seed"])["value"]
        if rnd.empty:
            continue
        for (method, ratio), g in part.groupby(["method", "keep_ratio"]):
            if method in ("random", "full") or ratio >= 1.0 or ratio not in rnd.index.get_level_values(0):
                continue
            a, b = g.set_index("seed")["value"], rnd.loc[ratio]
            common = sorted(set(a.index) & set(b.index))
            if common:
                comp = paired_comparison(a.loc[common].to_numpy(), b.loc[common].to_numpy(), confidence)
                rows.append({"metric": metric, "method": method, "keep_ratio": ratio, **comp})
    out = pd.DataFrame(rows, columns=["metric", "method", "keep_ratio", "diff", "diff_ci", "p_value", "n"])
    out["p_holm"] = np.nan
    for _, idx in out.groupby(["metric", "keep_ratio"]).groups.items():
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p_value"].to_numpy())
    return out


# ---- per-method rows: noise detection, cost, ROC, score distributions -------------------


def _scalars(other: pd.DataFrame) -> pd.DataFrame:
    """method × metric of the scalar per-method rows (no subset, no curve coordinate)."""
    scalar = other[other["subset"].isna() & other["at"].isna()]
    return scalar.pivot_table(index="method", columns="metric", values="value", aggfunc="first")


def noise_frames(other: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(method, noise_auroc, noise_ap) and (method, AUROC per noise type); empty without an oracle."""
    wide = _scalars(other)
    cols = [c for c in NOISE_METRICS if c in wide]
    if not cols:
        return pd.DataFrame(), pd.DataFrame()
    per_type = other[(other["metric"] == "noise_auroc") & other["subset"].notna()]
    by_type = per_type.pivot_table(index="method", columns="subset", values="value", aggfunc="first")
    by_type = by_type.reindex(wide.index.union(by_type.index))
    by_type.columns = [str(c) for c in by_type.columns]
    return wide[cols].reindex(by_type.index).reset_index(), by_type.reset_index()


def cost_frame(other: pd.DataFrame) -> pd.DataFrame:
    """method, score_seconds, samples_per_second, reference_epoch_seconds, cost_vs_epoch (scored methods)."""
    wide = _scalars(other)
    cols = [c for c in COST_METRICS if c in wide]
    return wide[cols].dropna(how="all").reset_index() if cols else pd.DataFrame()


def power_frame(other: pd.DataFrame) -> pd.DataFrame:
    """Per-query paired NDCG@10 vs random and the minimum detectable difference: method, keep_ratio,
    diff, p_value, mde (empty for runs without per-query rows)."""
    rows = other[other["metric"].isin(list(POWER_METRICS)) & other["subset"].isna()]
    if rows.empty:
        return pd.DataFrame(columns=["method", "keep_ratio", *POWER_METRICS.values()])
    wide = rows.pivot_table(index=["method", "at"], columns="metric", values="value", aggfunc="first")
    wide = wide.rename(columns=POWER_METRICS).reindex(columns=list(POWER_METRICS.values()))
    return (
        wide.reset_index().rename(columns={"at": "keep_ratio"}).sort_values(["keep_ratio", "method"], ignore_index=True)
    )


def roc_frame(other: pd.DataFrame) -> pd.DataFrame:
    """The noise-detection ROC curve points: method, fpr, tpr."""
    roc = other[(other["metric"] == "noise_roc_tpr") & other["subset"].isna()]
    return pd.DataFrame(
        {"method": roc["method"].to_numpy(), "fpr": roc["at"].to_numpy(), "tpr": roc["value"].to_numpy()}
    ).sort_values(["method", "fpr"])


def roc_by_type_frame(other: pd.DataFrame) -> pd.DataFrame:
    """ROC points of each noise type against clean samples: method, noise_type, fpr, tpr (empty if not written)."""
    roc = other[(other["metric"] == "noise_roc_tpr") & other["subset"].notna()]
    return pd.DataFrame(
        {
            "method": roc["method"].to_numpy(),
            "noise_type": roc["subset"].astype(str).to_numpy(),
            "fpr": roc["at"].to_numpy(dtype=np.float64),
            "tpr": roc["value"].to_numpy(dtype=np.float64),
        }
    ).sort_values(["method", "noise_type", "fpr"], ignore_index=True)


def score_distributions(other: pd.DataFrame) -> pd.DataFrame:
    """Score percentile mean and quantiles per (method, noise type): method, noise_type, metric, at, value."""
    dist = other[other["metric"].isin(["score_pct_mean", "score_pct_quantile"]) & other["subset"].notna()]
    return pd.DataFrame(
        {
            "method": dist["method"].to_numpy(),
            "noise_type": dist["subset"].astype(str).to_numpy(),
            "metric": dist["metric"].to_numpy(),
            "at": dist["at"].to_numpy(dtype=np.float64),
            "value": dist["value"].to_numpy(dtype=np.float64),
        }
    )
