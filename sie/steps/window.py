"""Loading the training window and the evaluation set from the warehouse."""

from __future__ import annotations

import logging

import pandas as pd

from sie.config import SieConfig
from sie.ds import Ds
from sie.model.window import TrainingWindow
from sie.selection.holdout import holdout_tensors, with_titles
from sie.selection.retrain import EvalSet
from sie.store import Warehouse

log = logging.getLogger(__name__)


def usable_days(cfg: SieConfig, ds: Ds, n_days: int) -> list[Ds]:
    """The window's published days that did not fail validation; an error when ``ds`` itself is not usable."""
    from sie.validate import failed_suites
    from sie.validate.suites import INGEST_SUITES

    wh = Warehouse.from_config(cfg)
    published = {p["ds"] for p in wh.partitions("samples")}
    if ds not in published:
        raise FileNotFoundError(f"no published samples for ds={ds} under {wh.table_dir('samples')}")
    days = []
    for day in ds.window(n_days):
        failed = failed_suites(cfg, day, INGEST_SUITES) if day in published else []
        if day == ds and failed:
            raise ValueError(f"ds={ds} failed validation ({', '.join(failed)}): fix its data, re-ingest and validate")
        if failed:
            log.warning("window of ds=%s: leaving out ds=%s, which failed validation (%s)", ds, day, failed)
        elif day in published:
            days.append(day)
    return days


def load_window_frame(cfg: SieConfig, ds: Ds, n_days: int) -> pd.DataFrame:
    """Samples of the usable days among the ``n_days`` ending at ``ds``, sorted."""
    wh = Warehouse.from_config(cfg)
    days = usable_days(cfg, ds, n_days)
    frame = wh.read_table("samples", {"ds": days}).to_pandas()
    frame = frame.rename(columns={"ds": "sample_ds"}).sort_values(["sample_ds", "sample_id"], kind="stable")
    return frame.reset_index(drop=True)


def load_window(cfg: SieConfig, ds: Ds) -> TrainingWindow:
    """The training window ending ``ds`` (``cfg.train.window_days`` days), split and encoded once."""
    return TrainingWindow(ds, load_window_frame(cfg, ds, cfg.train.window_days), cfg.train)


def load_holdout(wh: Warehouse) -> pd.DataFrame:
    """The judged holdout with item titles; FileNotFoundError when the warehouse has none."""
    if not wh.holdout_path.exists():
        raise FileNotFoundError(f"benchmark holdout not found at {wh.holdout_path} (the simulator writes it)")
    catalog = pd.read_parquet(wh.catalog_path, columns=["item_id", "title"])
    return with_titles(pd.read_parquet(wh.holdout_path), catalog)


def load_evalset(cfg: SieConfig, window: TrainingWindow) -> EvalSet:
    """The holdout (features from the window) and the window's held-out clicks."""
    holdout = load_holdout(Warehouse.from_config(cfg))
    return EvalSet(holdout=holdout_tensors(holdout, window.frame, cfg.train), validation=window.validation)
