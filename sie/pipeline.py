"""The nightly pipeline's steps. The DAG, `sie run` and the tests all call these.

Every step is idempotent for its ``ds``: rerunning replaces that day's outputs whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sie.config import SieConfig


def resolve_ds(params_ds: str | None, data_interval_start: datetime | date | str | None) -> str:
    """The processing day: the ``ds`` param when given, else the data interval's start date."""
    if params_ds:
        try:
            day = date.fromisoformat(str(params_ds)).isoformat()
            print(f"[sie] processing day ds={day} (from the ds param)", flush=True)
            return day
        except ValueError as exc:
            raise ValueError(f"ds param must be YYYY-MM-DD, got {params_ds!r}") from exc
    if data_interval_start is None:
        raise ValueError('no ds param and no data interval: trigger with -c \'{"ds": "YYYY-MM-DD"}\'')
    if isinstance(data_interval_start, str):
        day = date.fromisoformat(data_interval_start[:10]).isoformat()
    elif isinstance(data_interval_start, datetime):
        day = data_interval_start.date().isoformat()
    else:
        day = data_interval_start.isoformat()
    print(f"[sie] processing day ds={day} (from data_interval_start={data_interval_start})", flush=True)
    return day


def _timed(name: str, ds: str, fn: Callable[[], Any]) -> Any:
    print(f"[sie] {name} ds={ds} ...", flush=True)
    start = time.perf_counter()
    out = fn()
    print(f"[sie] {name} ds={ds} done in {time.perf_counter() - start:.1f}s", flush=True)
    return out


def simulate(cfg: SieConfig, ds: str) -> dict:
    if cfg.source != "simulator":
        print(f"[sie] source={cfg.source}: not simulating ds={ds}", flush=True)
        return {"skipped": True}
    from sie.simulate import simulate_day

    return _timed("simulate", ds, lambda: simulate_day(cfg, ds))


def ingest(cfg: SieConfig, ds: str) -> dict:
    from sie.ingest import ingest_day

    return _timed("ingest", ds, lambda: ingest_day(cfg, ds))


#: the suites run right after ingest (each fails the step on a critical expectation)
INGEST_SUITES = ("raw_events", "samples")


def validate(cfg: SieConfig, ds: str, suites: str | tuple[str, ...] | list[str] = INGEST_SUITES) -> dict:
    """Run Great Expectations suites on ``ds`` in order, in one process (GX imports once)."""
    from sie.validate import validate as run_suite

    names = [suites] if isinstance(suites, str) else list(suites)
    return {name: _timed(f"validate[{name}]", ds, lambda name=name: run_suite(cfg, ds, name)) for name in names}


def train(cfg: SieConfig, ds: str) -> dict:
    from sie.train import train_day

    return _timed("train", ds, lambda: train_day(cfg, ds))


def score(cfg: SieConfig, ds: str, method: str) -> dict:
    """One method's scores for ``ds``'s model (checked for shape and finiteness; the
    importance_scores suite runs once over all methods afterwards, see ``validate``)."""
    from sie.importance.scoring import score_day

    return _timed(f"score[{method}]", ds, lambda: score_day(cfg, ds, method, validate=False))


def evaluate(cfg: SieConfig, ds: str) -> dict:
    from sie.bench.retrain import retrain_evaluate_day

    result = _timed("retrain+evaluate", ds, lambda: retrain_evaluate_day(cfg, ds))
    return {"rows": len(result)}


def run_day(cfg: SieConfig, ds: str) -> dict:
    """All steps for one day, in order, without Airflow."""
    out: dict[str, Any] = {"ds": ds}
    out["simulate"] = simulate(cfg, ds)
    out["ingest"] = ingest(cfg, ds)
    out["validate"] = validate(cfg, ds)
    out["train"] = train(cfg, ds)
    out["score"] = {m: score(cfg, ds, m) for m in cfg.importance.methods}
    out["validate_scores"] = validate(cfg, ds, "importance_scores")
    out["evaluate"] = evaluate(cfg, ds)
    return out


def config_from_params(params: dict | None) -> SieConfig:
    """The run's config: defaults + env + the DAG run's ``config`` / ``methods`` params."""
    params = params or {}
    overrides = json_copy(params.get("config") or {})
    if params.get("methods"):
        methods = params["methods"]
        overrides.setdefault("importance", {})["methods"] = (
            [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods)
        )
    return SieConfig.load(overrides)


def json_copy(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value))


def report(cfg: SieConfig, ds: str) -> str:
    from sie.summary import write_daily_report

    path = write_daily_report(cfg, ds)
    print(f"[sie] report for ds={ds}: {path}", flush=True)
    return str(path)
