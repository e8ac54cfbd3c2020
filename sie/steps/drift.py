"""Score drift between consecutive models: how a method's importance moved since the previous model.

For model ``ds`` and one method: the previous model is the latest earlier ``ds`` with
scores for that method; their windows overlap, so the samples both scored are compared
(Spearman rank correlation and the overlap of the two top deciles). Written as the
``score_drift`` partition (ds, method) by the ``sie_score_drift`` DAG, which runs when
``importance_scores`` changes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.stats import spearmanr

from sie.config import SieConfig
from sie.ds import Ds
from sie.store import Warehouse

log = logging.getLogger(__name__)


def previous_model_ds(wh: Warehouse, ds: Ds, method: str) -> Ds | None:
    earlier = [p["ds"] for p in wh.partitions("importance_scores") if p["method"] == method and p["ds"] < ds]
    return Ds(max(earlier)) if earlier else None


def _scores(wh: Warehouse, ds: str, method: str) -> pd.Series:
    table = wh.read_table("importance_scores", {"ds": [ds], "method": [method]}).to_pandas()
    return table.set_index(["sample_id", "sample_ds"])["score"]


def top_decile_overlap(current: pd.Series, previous: pd.Series) -> float:
    """Share of ``current``'s top 10% (by score, on the common samples) also in ``previous``'s top 10%."""
    k = max(1, int(np.ceil(0.1 * len(current))))
    top_now = set(current.nlargest(k).index)
    top_before = set(previous.nlargest(k).index)
    return len(top_now & top_before) / k


def drift_row(current: pd.Series, previous: pd.Series | None, previous_ds: str | None) -> dict:
    """One score_drift row from two models' scores (indexed by (sample_id, sample_ds))."""
    row = {"previous_ds": previous_ds, "n_samples": len(current), "mean_score": float(current.mean())}
    common = current.index.intersection(previous.index) if previous is not None else current.index[:0]
    row |= {"n_common": len(common), "spearman": None, "top_decile_overlap": None, "previous_mean_score": None}
    if previous is not None:
        row["previous_mean_score"] = float(previous.mean())
    if len(common) >= 2:
        now, before = current.loc[common], previous.loc[common]
        row["spearman"] = float(spearmanr(now.to_numpy(), before.to_numpy()).statistic)
        row["top_decile_overlap"] = top_decile_overlap(now, before)
    return row


def score_drift(cfg: SieConfig, ds: Ds, method: str) -> dict:
    """Compare ``method``'s scores of model ``ds`` with the previous model's; publish the row."""
    ds = Ds(ds)
    wh = Warehouse.from_config(cfg)
    previous_ds = previous_model_ds(wh, ds, method)
    previous = _scores(wh, previous_ds, method) if previous_ds else None
    row = drift_row(_scores(wh, ds, method), previous, previous_ds)
    row |= {"run_id": f"drift-{ds}", "created_at": datetime.now(UTC)}
    wh.write_partition("score_drift", {"ds": ds, "method": method}, pa.Table.from_pylist([row]))
    log.info("score drift %s ds=%s vs %s: spearman=%s over %d common samples",
             method, ds, previous_ds, row["spearman"], row["n_common"])  # fmt: skip
    return {"ds": ds, "method": method, **{k: row[k] for k in ("previous_ds", "n_common", "spearman")}}


def score_drift_for_events(cfg: SieConfig, extras: list[dict]) -> list[dict]:
    """Drift for each (ds, method) that the triggering ``importance_scores`` events name (duplicates once)."""
    wanted = sorted({(e["ds"], e["method"]) for e in extras if e and "ds" in e and "method" in e})
    if not wanted:
        log.info("no (ds, method) in the triggering events: nothing to compare")
    return [score_drift(cfg, Ds(ds), method) for ds, method in wanted]
