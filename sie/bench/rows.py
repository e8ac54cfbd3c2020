"""The vocabulary of ``benchmark_results`` rows: which metrics exist and how their structure is stored.

The one place that knows what a results row looks like; no I/O. The runner builds rows
with these functions, :func:`rows_frame` turns them into a frame with exactly the
table's columns, and :mod:`sie.bench.report` reads them back by the same names.

A row is one value: ``(method, keep_ratio, seed, metric, subset, at) → value``.
Structure that used to be spelled into the metric name lives in two columns:

* ``subset``: what the value is restricted to: a noise type (``'bot'``) for per-type
  metrics, a setting (``'simulate.requests_per_day'``) for ``metric = 'setting'``;
  null = the whole run / all samples.
* ``at``: the coordinate of a curve point: the false positive rate of a
  ``noise_roc_tpr`` point, the quantile of a ``score_pct_quantile`` point; null for
  scalar metrics.

Rows by kind (``keep_ratio`` is set for cells only, 1.0 for ``full``):

* a cell (method or baseline): ``ndcg_at_10``, ``mrr``, ``n_queries``, ``click_auc``,
  ``click_logloss``;
* a scored method's cost: ``score_seconds``, ``samples_per_second``,
  ``reference_epoch_seconds``, ``cost_vs_epoch``;
* noise detection (per scored method, and ``random`` as the chance reference):
  ``noise_auroc`` and ``noise_ap`` (subset null: all samples), ``noise_auroc`` with
  subset = noise type (that type against clean ``none`` samples), ``noise_roc_tpr``
  with at = FPR (subset null: all samples; subset = noise type: that type against clean), ``score_pct_mean`` with subset = noise type and ``score_pct_quantile``
  with subset = noise type and at = quantile;
* the run (method ``_run``): ``days``, ``n_train``, ``n_validation``, ``epoch_seconds``,
  ``train_seconds``, ``noise_rate``, ``oracle_coverage``; ``n_samples`` with subset =
  noise type; ``setting`` with subset = the setting (``simulate.requests_per_day``,
  ``train.epochs``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sie.schemas import BENCHMARK_RESULTS
from sie.selection.metrics import QUERY_NDCG

RUN_METHOD = "_run"  # the `method` of run-level rows
# numeric settings copied into the run rows (metric "setting", subset "simulate.<key>" / "train.<key>"),
# so the report can state the scale from the table alone
SIM_KEYS = (
    "seed",
    "n_items",
    "n_users",
    "n_intents",
    "requests_per_day",
    "impressions_per_request",
    "bot_rate",
    "accidental_click_rate",
    "clickbait_item_rate",
    "duplicate_event_rate",
    "label_flip_rate",
)
TRAIN_KEYS = ("epochs", "batch_size", "lr", "embedding_dim", "hidden_dim", "vocab_size", "seed")
# the quantiles of the score-percentile distribution per noise type (metric score_pct_quantile, at = q)
SCORE_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# ROC points are stored at this many decimals, so that `at = 0.02` matches in SQL
AT_DECIMALS = 6

_FLOAT_COLUMNS = ("keep_ratio", "at", "value", "train_seconds", "score_seconds")
_INT_COLUMNS = ("seed", "n_train")


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a frame with exactly the benchmark_results columns (missing → null).

    ``keep_ratio``, ``at``, ``value`` and the seconds are float64, ``seed`` and ``n_train``
    nullable Int64, ``subset`` a pandas string column; the other columns as given.
    """
    frame = pd.DataFrame(rows)
    for col in BENCHMARK_RESULTS.columns:
        if col not in frame:
            frame[col] = None
    frame = frame[BENCHMARK_RESULTS.columns]
    for col in _FLOAT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    for col in _INT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").round().astype("Int64")
    frame["subset"] = frame["subset"].astype("string")
    return frame


def row(
    method: str, metric: str, value: float, *, subset: str | None = None, at: float | None = None, **columns: Any
) -> dict:
    """One results row; ``columns`` adds others (seed, n_train, keep_ratio, train_seconds, score_seconds)."""
    return {"method": method, "metric": metric, "subset": subset, "at": at, "value": float(value), **columns}


# ---- per-method rows -------------------------------------------------------------


def noise_rows(
    method: str,
    scores: np.ndarray,
    truth: pd.DataFrame,
    *,
    roc_points: int,
    seed: int,
    n_train: int,
    score_seconds: float,
) -> list[dict]:
    """Noise-detection AUROC/AP, the ROC curve and the score distribution by noise type.

    ``scores`` are the method's importance scores aligned with ``truth``, the oracle's
    ground truth per training sample (columns ``noise_type``, ``is_noise`` and ``matched``;
    unmatched samples have noise type ``'unknown'`` and are left out of the detection
    metrics). Low importance is the noise detector. Rows:

    * ``noise_auroc``, ``noise_ap`` over all matched samples;
    * ``noise_roc_tpr`` with ``at`` = FPR, ``roc_points`` evenly spaced points;
    * ``noise_auroc`` and ``noise_roc_tpr`` with ``subset`` = noise type: that type against clean
      (``none``) samples;
    * ``score_pct_mean`` and ``score_pct_quantile`` (``at`` in :data:`SCORE_QUANTILES`) with
      ``subset`` = noise type: the distribution of the score's percentile among all scores.
    """
    from sie.bench.metrics import noise_detection, rank_percentile

    common = {"seed": seed, "n_train": n_train, "score_seconds": score_seconds}
    matched = truth["matched"].to_numpy()
    s, types = scores[matched], truth["noise_type"].to_numpy()[matched]
    det = noise_detection(s, truth["is_noise"].to_numpy()[matched], roc_points)
    rows = [
        row(method, "noise_auroc", det["auroc"], **common),
        row(method, "noise_ap", det["ap"], **common),
    ]
    for fpr, tpr in zip(det["fpr"], det["tpr"]):
        rows.append(row(method, "noise_roc_tpr", tpr, at=round(float(fpr), AT_DECIMALS), **common))
    clean = types == "none"
    for noise_type in sorted(set(types) - {"none", "unknown"}):
        this = types == noise_type
        sub = noise_detection(s[this | clean], this[this | clean], roc_points)
        rows.append(row(method, "noise_auroc", sub["auroc"], subset=noise_type, **common))
        for fpr, tpr in zip(sub["fpr"], sub["tpr"]):
            rows.append(
                row(method, "noise_roc_tpr", tpr, subset=noise_type, at=round(float(fpr), AT_DECIMALS), **common)
            )
    pct = rank_percentile(scores)[matched]
    for noise_type in sorted(set(types)):
        values = pct[types == noise_type]
        rows.append(row(method, "score_pct_mean", values.mean(), subset=noise_type, **common))
        for q, v in zip(SCORE_QUANTILES, np.quantile(values, SCORE_QUANTILES)):
            rows.append(row(method, "score_pct_quantile", v, subset=noise_type, at=q, **common))
    return rows


def cost_rows(
    method: str,
    *,
    score_seconds: float,
    samples_per_second: float,
    reference_epoch_seconds: float,
    seed: int,
    n_train: int,
) -> list[dict]:
    """A scored method's cost: wall time, throughput, one plain epoch's time and the ratio of the two."""
    common = {"seed": seed, "n_train": n_train, "score_seconds": score_seconds}
    return [
        row(method, "score_seconds", score_seconds, **common),
        row(method, "samples_per_second", samples_per_second, **common),
        row(method, "reference_epoch_seconds", reference_epoch_seconds, **common),
        row(method, "cost_vs_epoch", score_seconds / max(reference_epoch_seconds, 1e-9), **common),
    ]


# ---- run rows --------------------------------------------------------------------


def run_settings(simulate: Any, train: Any) -> dict[str, float]:
    """The settings stored with a run: ``{"simulate.<key>": ..., "train.<key>": ...}`` for
    :data:`SIM_KEYS` of the simulator config and :data:`TRAIN_KEYS` of the train config."""
    out = {f"simulate.{k}": float(getattr(simulate, k)) for k in SIM_KEYS}
    out |= {f"train.{k}": float(getattr(train, k)) for k in TRAIN_KEYS}
    return out


def setting_rows(settings: Mapping[str, float], **columns: Any) -> list[dict]:
    """One ``_run`` row per setting: metric ``setting``, subset = the setting's name
    (``"train.epochs"``), value = its numeric value."""
    return [row(RUN_METHOD, "setting", value, subset=name, **columns) for name, value in settings.items()]


def run_rows(
    *,
    days: int,
    n_train: int,
    n_validation: int,
    train_seconds: float,
    epochs: int,
    seed: int,
    settings: Mapping[str, float],
    noise_counts: Mapping[str, int] | None = None,
    noise_rate: float | None = None,
    oracle_coverage: float | None = None,
) -> list[dict]:
    """The run-level rows (method ``_run``): scale, timing, settings and, with an oracle, the noise.

    ``settings`` as from :func:`run_settings`; ``noise_counts`` the number of training
    samples per noise type (``truth["noise_type"].value_counts()``, ``'unknown'`` for
    samples without an oracle match), ``noise_rate`` the share of training samples with
    ``is_noise`` and ``oracle_coverage`` the share matched to the oracle (all three
    omitted without an oracle). Every row carries ``seed``, ``n_train`` and ``train_seconds``
    of the scoring model. The chance reference for noise detection is not included: it is
    ``noise_rows("random", <uniform scores>, truth, ...)``.
    """
    common = {"seed": seed, "n_train": n_train, "train_seconds": train_seconds}
    rows = [
        row(RUN_METHOD, "days", days, **common),
        row(RUN_METHOD, "n_train", n_train, **common),
        row(RUN_METHOD, "n_validation", n_validation, **common),
        row(RUN_METHOD, "epoch_seconds", train_seconds / max(epochs, 1), **common),
        row(RUN_METHOD, "train_seconds", train_seconds, **common),
    ]
    rows += setting_rows(settings, **common)
    if noise_rate is not None:
        rows.append(row(RUN_METHOD, "noise_rate", noise_rate, **common))
    if oracle_coverage is not None:
        rows.append(row(RUN_METHOD, "oracle_coverage", oracle_coverage, **common))
    for noise_type, count in (noise_counts or {}).items():
        rows.append(row(RUN_METHOD, "n_samples", count, subset=str(noise_type), **common))
    return rows


# ---- pooled rows: query folds, replicates, power ------------------------------------------

#: the columns that say which sub-run of a replicated run a row comes from (in memory only)
REPLICA_COLUMNS = ("world_seed", "model_seed", "fold")
#: cell metrics pooled over folds weighted by each fold's held-out queries (others: mean over folds)
QUERY_WEIGHTED = ("ndcg_at_10", "mrr")
NO_FOLD = -1  # the fold of a sub-run on the world's fixed holdout


def pool_folds(cells: pd.DataFrame) -> pd.DataFrame:
    """Plain cell rows of the folds of each (world seed, model seed) → one row per
    (world seed, model seed, method, keep ratio, seed, metric), as if all folds' held-out
    queries were one holdout.

    NDCG@10 and MRR are weighted by each fold's ``n_queries`` (= the mean over all pooled
    queries), ``n_queries`` is summed, click metrics and costs are averaged over folds.
    """
    cell_key = ["world_seed", "model_seed", "method", "keep_ratio", "seed"]
    n_queries = cells[cells["metric"] == "n_queries"].set_index([*cell_key, "fold"])["value"]
    frame = cells.join(n_queries.rename("_queries"), on=[*cell_key, "fold"])
    frame["_weight"] = np.where(frame["metric"].isin(QUERY_WEIGHTED), frame["_queries"], 1.0)
    frame["_weighted"] = frame["value"] * frame["_weight"]
    grouped = frame.groupby([*cell_key, "metric"], dropna=False, sort=True)
    out = grouped[["n_train", "train_seconds", "score_seconds"]].mean()
    out["value"] = grouped["_weighted"].sum() / grouped["_weight"].sum()
    out["fold_sum"] = grouped["value"].sum()
    out = out.reset_index()
    summed = out["metric"] == "n_queries"
    out.loc[summed, "value"] = out.loc[summed, "fold_sum"]
    return out.drop(columns="fold_sum")


def over_replicates(pooled: pd.DataFrame) -> pd.DataFrame:
    """Fold-pooled cells → one row per (replicate, method, keep ratio, metric): the mean over the
    cell seeds, with ``seed`` = the replicate's index in (world seed, model seed) order."""
    units = pooled[["world_seed", "model_seed"]].drop_duplicates().sort_values(["world_seed", "model_seed"])
    index = {(w, m): i for i, (w, m) in enumerate(units.itertuples(index=False))}
    key = ["world_seed", "model_seed", "method", "keep_ratio", "metric"]
    out = pooled.groupby(key, sort=True)[["value", "n_train", "train_seconds", "score_seconds"]].mean().reset_index()
    out["seed"] = [index[(w, m)] for w, m in zip(out["world_seed"], out["model_seed"])]
    return out


def replicate_rows(units: list[tuple[int, int]], folds: int) -> list[dict]:
    """``_run`` rows that describe the replication: ``replicates``, ``folds`` and, per replicate
    index (subset), its ``replicate_world_seed`` and ``replicate_model_seed``."""
    rows = [row(RUN_METHOD, "replicates", len(units)), row(RUN_METHOD, "folds", folds)]
    for i, (world_seed, model_seed) in enumerate(units):
        rows.append(row(RUN_METHOD, "replicate_world_seed", world_seed, subset=str(i)))
        rows.append(row(RUN_METHOD, "replicate_model_seed", model_seed, subset=str(i)))
    return rows


def power_rows(query_cells: pd.DataFrame, alpha: float, power: float) -> list[dict]:
    """Paired per-query comparison with ``random`` at each keep ratio, from per-query NDCG@10 rows.

    Per held-out query (pooled over folds, replicates and cell seeds) the difference
    method − random is averaged over the (world, model seed, cell seed) pairs both have; over
    those per-query differences: ``ndcg_query_diff`` (mean), ``ndcg_query_p_value`` (paired
    t-test over queries) and ``ndcg_mde`` (minimum detectable difference at ``alpha`` and
    ``power``, :func:`sie.bench.metrics.min_detectable_difference`); ``at`` = the keep ratio.
    The ``_run`` row ``n_holdout_queries`` counts the distinct held-out queries.
    """
    from sie.bench.metrics import min_detectable_difference

    if query_cells.empty:
        return []
    key = ["world_seed", "model_seed", "fold", "keep_ratio", "seed", "subset"]
    rnd = query_cells[query_cells["method"] == "random"].set_index(key)["value"].rename("_random")
    rows = [row(RUN_METHOD, "n_holdout_queries", query_cells["subset"].nunique())]
    for (method, ratio), g in query_cells[query_cells["method"] != "random"].groupby(["method", "keep_ratio"]):
        paired = g.join(rnd, on=key).dropna(subset=["_random"])
        if paired.empty:
            continue
        diffs = (paired["value"] - paired["_random"]).groupby(paired["subset"]).mean()
        test = min_detectable_difference(diffs.to_numpy(), alpha, power)
        for metric, name in (("ndcg_query_diff", "diff"), ("ndcg_query_p_value", "p_value"), ("ndcg_mde", "mde")):
            rows.append(row(method, metric, test[name], at=float(ratio), seed=None, n_train=None))
    return rows


def pooled_rows(results: pd.DataFrame, alpha: float, power: float) -> pd.DataFrame:
    """A replicated run's published rows from all its sub-runs' rows (``results`` with the
    :data:`REPLICA_COLUMNS`; fold :data:`NO_FOLD` on the fixed holdout).

    * cells: pooled over folds (:func:`pool_folds`); with more than one (world seed, model
      seed) replicate, one row per replicate (:func:`over_replicates`, ``seed`` = replicate
      index), so confidence intervals and paired tests run over replicates;
    * per-method and ``_run`` rows: the mean over sub-runs per (method, metric, subset, at);
    * :func:`replicate_rows` and :func:`power_rows` (per-query NDCG over all sub-runs).
    """
    is_cell = results["keep_ratio"].notna() & (results["method"] != RUN_METHOD)
    cells = results[is_cell]
    query_cells = cells[cells["metric"] == QUERY_NDCG]
    pooled = pool_folds(cells[cells["subset"].isna()])
    units = sorted({(int(w), int(m)) for w, m in zip(results["world_seed"], results["model_seed"])})
    if len(units) > 1:
        pooled = over_replicates(pooled)
    other = results[~is_cell]
    shared = other.groupby(["method", "metric", "subset", "at"], dropna=False, sort=True)
    averaged = shared[["value", "n_train", "train_seconds", "score_seconds"]].mean()
    if len(units) == 1:  # the scoring model's seed; with several replicates there is no one seed
        averaged["seed"] = shared["seed"].first()
    folds = int(results["fold"].max()) + 1 if (results["fold"] != NO_FOLD).any() else 0
    records = pooled.drop(columns=["world_seed", "model_seed"]).to_dict("records")
    records += averaged.reset_index().to_dict("records")
    return rows_frame(records + replicate_rows(units, folds) + power_rows(query_cells, alpha, power))
