"""Run a suite with Great Expectations 1.x on one ds and store the results."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sie.config import SieConfig
from sie.files import write_json_atomic, write_text_atomic
from sie.schemas import TABLES
from sie.store import DataFile, Warehouse, release_freed_memory
from sie.validate.suites import (
    CHECKS,
    CRITICAL,
    DAY,
    ROWS,
    SUITE_TABLES,
    Check,
    canonical,
    check_columns,
    day_frame,
    day_inputs,
    prepare,
    read_columns,
)

log = logging.getLogger(__name__)

WHOLE_DAY = "day"  # the part of a batched day's whole-day checks


class ValidationFailed(Exception):
    """A critical expectation failed; the message names the ds, the suite and the failed expectations."""

    def __init__(self, message: str, result: dict[str, Any] | None = None):
        super().__init__(message)
        self.result = result or {}


def day_files(cfg: SieConfig, ds: str, suite: str) -> list[DataFile]:
    """The files of the published partition of ``ds`` the suite validates."""
    wh = Warehouse.from_config(cfg)
    table = SUITE_TABLES[suite]
    files = wh.data_files(table, {"ds": [ds]})
    if not files:
        raise FileNotFoundError(f"no published {table} partition for ds={ds} under {wh.table_dir(table)}")
    return files


def load_frame(cfg: SieConfig, ds: str, suite: str) -> pd.DataFrame:
    """The published partition(s) of ``ds`` the suite validates, as pandas."""
    day_files(cfg, ds, suite)  # the one error for a day not published
    wh = Warehouse.from_config(cfg)
    table = SUITE_TABLES[suite]
    return as_frame(wh.read_table(table, {"ds": [ds]}, columns=read_columns(cfg, ds, suite)), table)


def as_frame(data: pa.Table, table: str) -> pd.DataFrame:
    """``data`` (some columns of ``table``) as pandas, with the columns not read present and empty."""
    frame = data.to_pandas(self_destruct=True)
    for name in TABLES[table].columns:  # present in the table (conform guarantees it), values not read
        if name not in frame:
            frame[name] = pd.Categorical.from_codes(np.full(len(frame), -1, dtype=np.int8), categories=[])
    return frame


def row_batches(cfg: SieConfig, ds: str, suite: str, batch_rows: int) -> Iterator[pa.Table]:
    """The rows the suite reads (:func:`read_columns`) in batches of ``batch_rows`` (the last one
    shorter), streamed from Parquet: one batch in memory at a time."""
    wh, table = Warehouse.from_config(cfg), SUITE_TABLES[suite]
    pending: list[pa.Table] = []
    for data in wh.read_batches(table, {"ds": [ds]}, columns=read_columns(cfg, ds, suite), batch_rows=batch_rows):
        pending.append(data)
        while sum(t.num_rows for t in pending) >= batch_rows:
            rows = pa.concat_tables(pending)
            pending = [rows.slice(batch_rows)]
            yield rows.slice(0, batch_rows)
    rest = pa.concat_tables(pending) if pending else None
    if rest is not None and rest.num_rows:
        yield rest


def with_ingest_settings(cfg: SieConfig, wh: Warehouse, ds: str) -> SieConfig:
    """``cfg`` with the ingest settings ``ds`` was ingested with (from its day manifest), so the
    suites judge the day by the rules that made it (e.g. its ``lateness_hours``)."""
    from dataclasses import replace

    from sie.config import IngestConfig

    manifest = wh.read_table("ingest_days", {"ds": [ds]}).column("settings").to_pylist()
    if not manifest:
        return cfg
    known = IngestConfig.__dataclass_fields__
    settings = {k: v for k, v in json.loads(manifest[0]).items() if k in known}
    return replace(cfg, ingest=replace(cfg.ingest, **settings))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item"):
        return _jsonable(obj.item())
    return str(obj)


def _write_json(path: Path, data: Any) -> None:
    write_json_atomic(path, _jsonable(data), indent=2, sort_keys=True)


def run_checks(cfg: SieConfig, ds: str, suite: str, df: pd.DataFrame, checks: list[Check] | None = None):
    """Validate ``df`` (prepared: with its derived columns) with ``checks`` (default: the suite's);
    returns (GE context, GE result, checks)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    checks = CHECKS[suite](cfg, ds) if checks is None else checks
    if len(df) == 0:  # an empty day: only the table-level checks mean something (the row count decides)
        checks = [c for c in checks if c.kind.startswith("ExpectTable")]
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints each batch by hashing every value (md5 of hash_pandas_object) unless the
    # frame's memory is over HASH_THRESHOLD: half of a 2.7M-row scores suite's time (py-spy,
    # docs/PERFORMANCE.md). Nothing here reads the fingerprint: skip it, as GX does for big frames.
    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas(f"sie_{suite}")
    asset = source.add_dataframe_asset(name=f"{suite}_{ds}")
    batch_def = asset.add_batch_definition_whole_dataframe(f"{suite}-{ds}")
    gx_suite = context.suites.add(gx.ExpectationSuite(name=suite))
    for check in checks:
        gx_suite.add_expectation(check.build())
    batch = batch_def.get_batch(batch_parameters={"dataframe": df})
    result = batch.validate(gx_suite, result_format="SUMMARY")
    context.data_sources.delete(source.name)  # GX's data source holds on to the frame (one per part, else)
    return context, result, checks


def validate(
    cfg: SieConfig, ds: str, suite: str, *, raise_on_failure: bool = True, df: pd.DataFrame | None = None
) -> dict[str, Any]:
    """Validate the published ``ds`` data with ``suite`` (raw_events | samples | importance_scores).

    Stores ``result.json`` (and Data Docs HTML) under ``Warehouse.validation_dir(suite, ds)``.
    Raises :class:`ValidationFailed` naming the ds and the failed critical expectations;
    FileNotFoundError when the partition to validate is not published.
    """
    t0 = time.time()
    suite = canonical(suite)
    wh = Warehouse.from_config(cfg)
    cfg = with_ingest_settings(cfg, wh, ds)
    rows, n_rows, results = [], 0, []
    for part, frame, checks in checked_parts(cfg, ds, suite, df):
        context, result, _ = run_checks(cfg, ds, suite, frame, checks)
        rows += result_rows(result, part)
        n_rows += len(frame) if part != WHOLE_DAY else 0
        results.append(result)
        if part:
            log.info(
                "validate ds=%s suite=%s part %s: %d rows, success=%s", ds, suite, part, len(frame), result.success
            )
        del frame
        release_freed_memory()
    failed_critical = [r for r in rows if not r["success"] and r["severity"] == CRITICAL]
    failed_warning = [r for r in rows if not r["success"] and r["severity"] != CRITICAL]
    out = {
        "ds": ds,
        "suite": suite,
        "table": SUITE_TABLES[suite],
        "rows": n_rows,
        "success": not failed_critical,
        "evaluated": len(rows),
        "failed_critical": [_label(r) for r in failed_critical],
        "failed_warning": [_label(r) for r in failed_warning],
        "results": rows,
        "great_expectations": results[0].to_json_dict() if len(results) == 1 else [r.to_json_dict() for r in results],
        "seconds": round(time.time() - t0, 2),
    }
    out_dir = wh.validation_dir(suite, ds)
    _write_json(out_dir / "result.json", out)
    out["path"] = str(out_dir / "result.json")
    if cfg.validate.data_docs:
        try:  # (the page of the first failing part, else of the last)
            shown = next((r for r in results if not r.success), results[-1])
            out["data_docs"] = str(write_data_docs(context, shown, out_dir))
        except Exception as exc:  # Data Docs are a report; never fail validation because of them
            log.warning("ds=%s suite=%s: Data Docs not rendered: %s", ds, suite, exc)
    log.info("validate ds=%s suite=%s success=%s failed=%s", ds, suite, out["success"], out["failed_critical"])
    if failed_critical and raise_on_failure:
        raise ValidationFailed(
            f"validation of {SUITE_TABLES[suite]} ds={ds} failed (suite {suite}): "
            + "; ".join(out["failed_critical"])
            + f" — details in {out['path']}",
            out,
        )
    return out


def checked_parts(
    cfg: SieConfig, ds: str, suite: str, df: pd.DataFrame | None = None
) -> Iterator[tuple[str | None, pd.DataFrame, list[Check]]]:
    """The prepared frames the suite checks one at a time, each with the checks it runs: ``df``
    or the day's partition with every check; a day of more than ``validate.batch_rows`` rows
    in row batches (:func:`batched_parts`); the scores per method (:func:`load_parts`)."""
    checks = CHECKS[suite](cfg, ds)
    if df is not None:
        yield None, prepare(suite, df), checks
        return
    if suite == "importance_scores":
        for part, frame in load_parts(cfg, ds, suite):
            yield part, prepare(suite, frame), checks
        return
    files = day_files(cfg, ds, suite)
    if sum(pq.ParquetFile(f.path).metadata.num_rows for f in files) <= cfg.validate.batch_rows:
        yield None, prepare(suite, load_frame(cfg, ds, suite)), checks
        return
    yield from batched_parts(cfg, ds, suite, checks)


def batched_parts(
    cfg: SieConfig, ds: str, suite: str, checks: list[Check]
) -> Iterator[tuple[str, pd.DataFrame, list[Check]]]:
    """Each row batch (part ``rows=FIRST-LAST``) with the ``rows`` checks, then the whole-day frame
    of the ``day`` checks' columns (part ``day``) with those: memory ~ one batch plus a few columns
    of the day, whatever the day's size."""
    table = SUITE_TABLES[suite]
    day_checks = [c for c in checks if c.scope == DAY]
    day_columns = check_columns(day_checks)
    kept: list[pd.DataFrame] = []
    first = 0
    for data in row_batches(cfg, ds, suite, cfg.validate.batch_rows):
        frame = prepare(suite, as_frame(data, table), whole_day=False)
        del data
        kept.append(day_inputs(frame, day_columns))
        part = f"rows={first}-{first + len(frame) - 1}"
        first += len(frame)
        yield part, frame, [c for c in checks if c.scope == ROWS]
        del frame
    yield WHOLE_DAY, day_frame(kept), day_checks


def load_parts(cfg: SieConfig, ds: str, suite: str) -> Iterator[tuple[str | None, pd.DataFrame]]:
    """The scores' frames, one per method's partition (a 10M-sample day's scores of every method
    would not fit in memory at once; every check of that suite holds per method)."""
    wh = Warehouse.from_config(cfg)
    methods = sorted({p["method"] for p in wh.partitions("importance_scores") if p["ds"] == ds})
    if not methods:
        load_frame(cfg, ds, suite)  # the one error for a day without scores
    for method in methods:
        yield f"method={method}", wh.read_table("importance_scores", {"ds": [ds], "method": [method]}).to_pandas()


def result_rows(result, part: str | None) -> list[dict[str, Any]]:
    """One row per expectation of a GE validation result (``part``: which frame it checked)."""
    rows = []
    for r in result.results:
        cfg_ = r.expectation_config
        meta = cfg_.meta or {}
        kwargs = {k: v for k, v in cfg_.kwargs.items() if k not in ("batch_id",)}
        column = kwargs.get("column") or kwargs.get("column_A") or kwargs.get("column_list")
        rows.append(
            {
                "expectation": cfg_.type,
                "column": column,
                "kwargs": kwargs,
                "severity": meta.get("severity", CRITICAL),
                "why": meta.get("why", ""),
                "success": bool(r.success),
                "observed": (r.result or {}).get("observed_value"),
                "unexpected_count": (r.result or {}).get("unexpected_count"),
                "unexpected_percent": (r.result or {}).get("unexpected_percent"),
                "partial_unexpected_list": ((r.result or {}).get("partial_unexpected_list") or [])[:5],
                "exception": (r.exception_info or {}).get("exception_message") if r.exception_info else None,
            }
            | ({"part": part} if part else {})
        )
    return rows


def _label(r: dict) -> str:
    obs = r["observed"]
    if r["unexpected_count"]:
        detail = f"{r['unexpected_count']} unexpected ({(r['unexpected_percent'] or 0):.2f}%)"
    elif r["exception"]:
        detail = f"error: {r['exception']}"
    else:
        detail = f"observed {obs}"
    label = f"{r['expectation']}({r['column']}) {detail}" if r["column"] else f"{r['expectation']} {detail}"
    return f"{label} [{r['part']}]" if r.get("part") else label


def write_data_docs(context, result, out_dir: Path) -> Path:
    """Render the validation result as a standalone HTML page (stage 2: Data Docs site)."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    render_log = logging.getLogger("great_expectations")
    level = render_log.level
    render_log.setLevel(logging.CRITICAL)  # the renderer logs (and survives) numpy scalars it cannot format
    try:
        document = ValidationResultsPageRenderer().render(result)
        html = DefaultJinjaPageView().render(document)
    finally:
        render_log.setLevel(level)
    return write_text_atomic(out_dir / "index.html", html)


def failed_suites(cfg: SieConfig, ds: str, suites: tuple[str, ...]) -> list[str]:
    """The ``suites`` whose last recorded result for ``ds`` failed (a day never validated has none)."""
    wh = Warehouse.from_config(cfg)
    failed = []
    for suite in suites:
        path = wh.validation_dir(canonical(suite), ds) / "result.json"
        if path.exists() and not json.loads(path.read_text()).get("success", False):
            failed.append(canonical(suite))
    return failed


def forget_results(cfg: SieConfig, ds: str, suites: tuple[str, ...]) -> None:
    """Drop the recorded results of ``suites`` for ``ds`` (re-ingesting the day makes them stale)."""
    wh = Warehouse.from_config(cfg)
    for suite in suites:
        (wh.validation_dir(canonical(suite), ds) / "result.json").unlink(missing_ok=True)
