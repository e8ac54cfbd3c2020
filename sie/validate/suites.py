"""Great Expectations 1.x suites, in code: raw events, samples, importance scores.

Each suite is a list of :class:`Check` (an expectation plus its severity). A failed
``critical`` check fails validation (and the DAG task); a failed ``warning`` is only
reported. Cross-row rules (a click implies an impression, the graded label, the
sample_id formula, timestamps in the day window) are expressed on derived columns
(prefixed ``_``) that :func:`prepare` adds to the validated frame.

A day of more than ``validate.batch_rows`` rows is checked in row batches: the ``rows``
checks on every batch, the ``day`` checks (uniqueness, means, the row count, a click's
impression anywhere in the day) once on a frame of only their columns (:func:`day_inputs`,
:func:`day_frame`).

``great_expectations`` is imported lazily (it takes seconds to import).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sie.config import SieConfig
from sie.ingest.parse import day_window
from sie.ingest.reasons import INTERACTIONS, RANKING_ACTIONS
from sie.schemas import DENSE_FEATURES, EVENTS, IMPORTANCE_SCORES, SAMPLES, TableSchema, sample_id

#: the suites run right after ingest; a day failing one is never read by training, scoring or evaluation
INGEST_SUITES = ("raw_events", "samples")

CRITICAL = "critical"
WARNING = "warning"

ROWS = "rows"  # a check each row batch can judge alone
DAY = "day"  # a check only the whole day can judge (run once, on the day's frame of its columns)

SUITE_TABLES = {"raw_events": "events", "samples": "samples", "importance_scores": "importance_scores"}
ALIASES = {"events": "raw_events", "importance": "importance_scores", "scores": "importance_scores"}


@dataclass(frozen=True)
class Check:
    kind: str  # the Expectation class name in great_expectations.expectations
    kwargs: dict[str, Any]
    severity: str = CRITICAL
    why: str = ""
    scope: str = ROWS

    def build(self):
        import great_expectations as gx

        cls = getattr(gx.expectations, self.kind)
        return cls(**self.kwargs, meta={"severity": self.severity, "why": self.why})

    @property
    def name(self) -> str:
        col = self.kwargs.get("column") or self.kwargs.get("column_A") or self.kwargs.get("column_list")
        return f"{self.kind}({col})" if col else self.kind


def canonical(suite: str) -> str:
    suite = ALIASES.get(suite, suite)
    if suite not in SUITE_TABLES:
        raise ValueError(
            f"unknown validation suite {suite!r}; known: {sorted(SUITE_TABLES)} (aliases {sorted(ALIASES)})"
        )
    return suite


def _epoch_s(series: pd.Series) -> pd.Series:
    ts = pd.to_datetime(series)
    if ts.dt.tz is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return (ts - pd.Timestamp("1970-01-01")).dt.total_seconds()


def _pandas_types(schema: TableSchema, name: str) -> list[str]:
    """Accepted pandas dtypes / value types for a column of the arrow schema."""
    import pyarrow as pa

    t = schema.schema.field(name).type
    if pa.types.is_string(t):
        return ["str", "object", "string"]
    if pa.types.is_integer(t):
        return [str(t), "Int32", "Int64", "int64", "float64"]  # float64: integers with nulls in pandas
    if pa.types.is_floating(t):
        return ["float64", "float32"]
    if pa.types.is_timestamp(t):
        return ["datetime64[us]", "datetime64[ns]", "datetime64[ms]"]  # validated as naive UTC
    return [str(t)]


def _types(schema: TableSchema, cols) -> list[Check]:
    return [
        Check("ExpectColumnValuesToBeInTypeList", {"column": c, "type_list": _pandas_types(schema, c)}, why="type")
        for c in cols
    ]


def _columns(schema: TableSchema) -> Check:
    return Check(
        "ExpectTableColumnsToMatchSet",
        {"column_set": list(schema.columns) + list(schema.partition_by), "exact_match": False},
        why="every column of the table is present",
    )


def _rows(cfg: SieConfig) -> Check:
    if cfg.validate.allow_empty_day:
        return Check("ExpectTableRowCountToBeBetween", {"min_value": 0}, WARNING, "empty days allowed", DAY)
    return Check(
        "ExpectTableRowCountToBeBetween",
        {"min_value": 1},
        why="an empty day is an upstream outage (allow_empty_day)",
        scope=DAY,
    )


def raw_events_checks(cfg: SieConfig, ds: str) -> list[Check]:
    start, end = day_window(ds, cfg.ingest.lateness_hours)
    return [
        _rows(cfg),
        _columns(EVENTS),
        *_types(EVENTS, ["event_id", "action_name", "event_ts", "position", "dwell_time"]),
        *[
            Check("ExpectColumnValuesToNotBeNull", {"column": c}, why="required")
            for c in ("event_id", "action_name", "event_ts", "run_id")
        ],
        *[
            Check("ExpectColumnValuesToNotBeNull", {"column": f"_ranking_{c}"}, why=f"ranking events carry {c}")
            for c in ("query_id", "client_id", "item_id", "position")
        ],
        Check("ExpectColumnValuesToBeUnique", {"column": "event_id"}, why="exact duplicates are dropped", scope=DAY),
        Check("ExpectColumnValuesToBeBetween", {"column": "position", "min_value": 1}, why="positions are 1-based"),
        Check(
            "ExpectColumnValuesToBeBetween",
            {
                "column": "_event_epoch_s",
                "min_value": start.timestamp(),
                "max_value": end.timestamp(),
                "strict_max": True,
            },
            why=f"event time within the ds window +- lateness [{start.isoformat()}, {end.isoformat()})",
        ),
        Check(
            "ExpectColumnValuesToBeInSet",
            {"column": "_click_has_impression", "value_set": [1], "mostly": cfg.validate.min_click_impression_share},
            why="a click (add_to_cart, purchase) implies an impression of the same item for the same query",
            scope=DAY,
        ),
        Check(
            "ExpectColumnValuesToBeBetween", {"column": "dwell_time", "min_value": 0}, WARNING, "dwell is a duration"
        ),
        Check(
            "ExpectColumnValuesToMatchRegex",
            {"column": "action_name", "regex": r"^[a-z0-9_]+$"},
            WARNING,
            "action names are identifiers",
        ),
    ]


def samples_checks(cfg: SieConfig, ds: str) -> list[Check]:
    v = cfg.validate
    start, end = day_window(ds, cfg.ingest.lateness_hours)
    required = ["sample_id", "run_id", "query_id", "query_text", "item_id", "item_title", "position", "request_ts"]
    labels = ["click", "add_to_cart", "purchase", "label", "suspected_bot"]
    return [
        _rows(cfg),
        _columns(SAMPLES),
        *_types(
            SAMPLES, ["sample_id", "query_text", "item_id", "position", "click", "label", "request_ts", *DENSE_FEATURES]
        ),
        *[
            Check("ExpectColumnValuesToNotBeNull", {"column": c}, why="required")
            for c in required + labels + list(DENSE_FEATURES)
        ],
        Check(
            "ExpectColumnValuesToBeUnique",
            {"column": "sample_id"},
            why="one sample per (query_id, item_id)",
            scope=DAY,
        ),
        Check(
            "ExpectColumnPairValuesToBeEqual",
            {"column_A": "sample_id", "column_B": "_expected_sample_id"},
            why="sample_id = sha256(query_id|item_id)[:16]",
        ),
        Check("ExpectColumnValuesToBeBetween", {"column": "position", "min_value": 1}, why="positions are 1-based"),
        *[
            Check("ExpectColumnValuesToBeInSet", {"column": c, "value_set": [0, 1]}, why="binary label")
            for c in ("click", "add_to_cart", "purchase", "suspected_bot")
        ],
        Check("ExpectColumnValuesToBeInSet", {"column": "label", "value_set": [0, 1, 2, 3]}, why="graded label"),
        Check(
            "ExpectColumnPairValuesToBeEqual",
            {"column_A": "label", "column_B": "_expected_label"},
            why="label = highest grade reached",
        ),
        Check(
            "ExpectColumnPairValuesAToBeGreaterThanB",
            {"column_A": "_impression", "column_B": "click", "or_equal": True},
            why="a click implies an impression (every sample is one)",
        ),
        Check(
            "ExpectColumnValuesToBeBetween",
            {
                "column": "_request_epoch_s",
                "min_value": start.timestamp(),
                "max_value": end.timestamp(),
                "strict_max": True,
            },
            why="request time within the ds window +- lateness",
        ),
        Check(
            "ExpectColumnMeanToBeBetween",
            {"column": "click", "min_value": v.min_ctr, "max_value": v.max_ctr},
            why="CTR within configured bounds",
            scope=DAY,
        ),
        Check(
            "ExpectColumnMeanToBeBetween",
            {"column": "suspected_bot", "min_value": 0.0, "max_value": v.max_bot_share},
            why="suspected-bot share within bounds",
            scope=DAY,
        ),
        *_sample_value_checks(),
    ]


def _sample_value_checks() -> list[Check]:
    """The samples' feature ranges and the warnings."""
    return [
        Check(
            "ExpectColumnValuesToBeBetween",
            {"column": "item_prior_ctr", "min_value": 0.0, "max_value": 1.0},
            why="a rate",
        ),
        *[
            Check(
                "ExpectColumnValuesToBeBetween",
                {"column": c, "min_value": 0.0, "max_value": 1e6},
                why="finite, non-negative",
            )
            for c in ("item_log_impressions", "query_log_freq", "session_query_index")
        ],
        Check(
            "ExpectColumnValuesToBeBetween", {"column": "dwell_time", "min_value": 0}, WARNING, "dwell is a duration"
        ),
        Check(
            "ExpectColumnValueLengthsToBeBetween",
            {"column": "query_text", "min_value": 1},
            WARNING,
            "non-empty query text",
        ),
    ]


def importance_checks(cfg: SieConfig, ds: str) -> list[Check]:
    return [
        Check("ExpectTableRowCountToBeBetween", {"min_value": 1}, why="scores were written"),
        _columns(IMPORTANCE_SCORES),
        *_types(IMPORTANCE_SCORES, ["sample_id", "score"]),
        Check("ExpectColumnValuesToNotBeNull", {"column": "sample_id"}, why="required"),
        Check("ExpectColumnValuesToNotBeNull", {"column": "method"}, why="required"),
        Check("ExpectColumnValuesToNotBeNull", {"column": "score"}, why="NaN scores are nulls here"),
        Check("ExpectColumnValuesToBeInSet", {"column": "_score_finite", "value_set": [1]}, why="score is finite"),
        Check(
            "ExpectCompoundColumnsToBeUnique",
            {"column_list": ["sample_id", "method"]},
            why="one score per (sample_id, method)",
        ),
        Check("ExpectColumnValuesToNotBeNull", {"column": "model_version"}, WARNING, "lineage"),
        Check("ExpectColumnValuesToNotBeNull", {"column": "sample_ds"}, WARNING, "lineage"),
    ]


CHECKS: dict[str, Callable[[SieConfig, str], list[Check]]] = {
    "raw_events": raw_events_checks,
    "samples": samples_checks,
    "importance_scores": importance_checks,
}


#: the columns :func:`prepare` derives its ``_`` columns from, per suite
PREPARE_INPUTS = {
    "raw_events": ("action_name", "query_id", "client_id", "item_id", "position", "event_ts"),
    "samples": ("query_id", "item_id", "purchase", "add_to_cart", "click", "label", "request_ts"),
    "importance_scores": ("score",),
}


def read_columns(cfg: SieConfig, ds: str, suite: str) -> list[str]:
    """The table columns whose values the suite reads (its checks' columns and :func:`prepare`'s
    inputs); the rest only need to exist (e.g. a day's token lists: most of its bytes)."""
    named = set(PREPARE_INPUTS[suite]) | set(check_columns(CHECKS[suite](cfg, ds)))
    return sorted(c for c in named if not c.startswith("_"))


def check_columns(checks: list[Check]) -> list[str]:
    """The frame columns (derived ones included) the checks name, in order."""
    named: list[str] = []
    for check in checks:
        kw = check.kwargs
        for c in [kw[k] for k in ("column", "column_A", "column_B") if k in kw] + list(kw.get("column_list", [])):
            named += [c] if c not in named else []
    return named


def prepare(suite: str, df: pd.DataFrame, whole_day: bool = True) -> pd.DataFrame:
    """Add the derived ``_`` columns a suite's cross-row checks read (``whole_day=False``: a row
    batch's, without those only the whole day can compute).

    Timestamps are converted to naive UTC (GE's pandas type check cannot name tz-aware dtypes).
    ``df`` itself is left as it is (a shallow copy gets the new columns).
    """
    df = df.copy(deep=False)
    for c in df.columns:
        if isinstance(df[c].dtype, pd.DatetimeTZDtype):
            df[c] = df[c].dt.tz_convert("UTC").dt.tz_localize(None)
    if suite == "raw_events":
        ranking = df["action_name"].isin(RANKING_ACTIONS)
        for c in ("query_id", "client_id", "item_id", "position"):
            df[f"_ranking_{c}"] = df[c].where(ranking, "n/a").astype(object)
        df["_event_epoch_s"] = _epoch_s(df["event_ts"]) if len(df) else pd.Series(dtype=float)
        if whole_day:
            df["_click_has_impression"] = click_has_impression(action_kinds(df), pair_keys(df))
    elif suite == "samples":
        df["_expected_sample_id"] = [sample_id(q, i) for q, i in zip(df["query_id"], df["item_id"])]
        grade = np.select([df["purchase"] == 1, df["add_to_cart"] == 1, df["click"] == 1], [3, 2, 1], 0)
        df["_expected_label"] = grade.astype("int64")
        df["label"] = df["label"].astype("int64")
        df["_impression"] = 1
        df["_request_epoch_s"] = _epoch_s(df["request_ts"]) if len(df) else pd.Series(dtype=float)
    elif suite == "importance_scores":
        df["_score_finite"] = np.isfinite(df["score"].astype(float)).astype(int).where(df["score"].notna())
    return df


IMPRESSION, INTERACTION = 1, 2  # action kinds (other events: 0)


def action_kinds(df: pd.DataFrame) -> np.ndarray:
    """Each event's kind: IMPRESSION, INTERACTION (click, add_to_cart, purchase) or 0."""
    kinds = np.zeros(len(df), dtype=np.int8)
    kinds[df["action_name"].eq("impression").to_numpy(dtype=bool, na_value=False)] = IMPRESSION
    kinds[df["action_name"].isin(INTERACTIONS).to_numpy(dtype=bool)] = INTERACTION
    return kinds


def pair_keys(df: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's (query_id, item_id), vectorised: the impression lookup holds 8
    bytes per event instead of two strings (a collision, ~1e-6 on a 10M-event day, could only
    credit one click with an impression it lacks)."""
    return pd.util.hash_pandas_object(df[["query_id", "item_id"]], index=False).to_numpy()


def click_has_impression(kinds: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """1 for an interaction whose (query_id, item_id) has an impression among the rows, 0 for one
    without, NaN for the other rows (the check's ``mostly`` counts interactions only)."""
    flag = np.full(len(kinds), np.nan)
    interactions = kinds == INTERACTION
    flag[interactions] = np.isin(pairs[interactions], pairs[kinds == IMPRESSION])
    return flag


def day_inputs(batch: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """What one row batch keeps for the whole-day frame of ``columns`` (the ``day`` checks'):
    the plain columns (strings Arrow-backed: no Python object per value), and for
    ``_click_has_impression`` each event's kind and (query_id, item_id) key."""
    kept = {}
    for c in columns:
        if c == "_click_has_impression":
            kept["_kind"], kept["_pair"] = action_kinds(batch), pair_keys(batch)
        elif c.startswith("_"):
            raise ValueError(f"no whole-day derivation of {c}: make its check a rows check or derive it here")
        elif batch[c].dtype == object:
            kept[c] = batch[c].astype(pd.StringDtype("pyarrow")).array
        else:
            kept[c] = batch[c].to_numpy(copy=True)
    return pd.DataFrame(kept)


def day_frame(batches: list[pd.DataFrame]) -> pd.DataFrame:
    """The whole-day frame of the ``day`` checks from every batch's :func:`day_inputs`; ``batches``
    is emptied (each batch's copy of the columns is released once concatenated)."""
    day = pd.concat(batches, ignore_index=True) if batches else pd.DataFrame()
    batches.clear()
    if "_pair" in day:
        day["_click_has_impression"] = click_has_impression(day.pop("_kind").to_numpy(), day.pop("_pair").to_numpy())
    return day
