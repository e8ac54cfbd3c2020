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
  with at = FPR, ``score_pct_mean`` with subset = noise type and ``score_pct_quantile``
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
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
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
    * ``noise_auroc`` with ``subset`` = noise type: that type against clean (``none``) samples;
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
        sub = noise_detection(s[this | clean], this[this | clean], 2)
        rows.append(row(method, "noise_auroc", sub["auroc"], subset=noise_type, **common))
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
