"""Loading the training window and the evaluation set from the warehouse."""

from __future__ import annotations

import pandas as pd

from sie.config import SieConfig
from sie.ds import Ds
from sie.model.window import TrainingWindow
from sie.selection.holdout import holdout_tensors, with_titles
from sie.selection.retrain import EvalSet
from sie.store import Warehouse


def load_window_frame(wh: Warehouse, ds: Ds, n_days: int) -> pd.DataFrame:
    """Samples of the ``n_days`` ending at ``ds`` (missing earlier days are skipped), sorted."""
    published = {p["ds"] for p in wh.partitions("samples")}
    if ds not in published:
        raise FileNotFoundError(f"no published samples for ds={ds} under {wh.table_dir('samples')}")
    days = [d for d in ds.window(n_days) if d in published]
    frame = wh.read_table("samples", {"ds": days}).to_pandas()
    frame = frame.rename(columns={"ds": "sample_ds"}).sort_values(["sample_ds", "sample_id"], kind="stable")
    return frame.reset_index(drop=True)


def load_window(cfg: SieConfig, ds: Ds) -> TrainingWindow:
    """The training window ending ``ds`` (``cfg.train.window_days`` days), split and encoded once."""
    wh = Warehouse.from_config(cfg)
    return TrainingWindow(ds, load_window_frame(wh, ds, cfg.train.window_days), cfg.train)


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
