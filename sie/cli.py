"""The `sie` command line. Thin: parse options, build the config, call the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from sie.config import BENCH_PARAMS, DAILY_PARAMS, SieConfig, load_config
from sie.ds import Ds
from sie.log import setup

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="SIE: sample importance for search/click logs.",
)
console = Console()

_STATE: dict[str, Any] = {"pairs": [], "warehouse": None, "config_file": None}


@app.callback()
def main(
    warehouse: Optional[str] = typer.Option(
        None, "--warehouse", "-w", help="Warehouse root (default: $SIE_WAREHOUSE or ./warehouse)."
    ),
    config: Optional[str] = typer.Option(None, "--config", help="JSON config file (default: $SIE_CONFIG)."),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error."),
    set_: list[str] = typer.Option(
        [], "--set", help="Config override SECTION.FIELD=VALUE, e.g. --set train.epochs=2 (repeatable)."
    ),
) -> None:
    setup()
    _STATE.update(pairs=list(set_), warehouse=warehouse, config_file=config, debug=debug)


def _cfg(params: dict[str, Any] | None = None, shorthands: dict[str, str] = DAILY_PARAMS) -> SieConfig:
    """The command's config through the one adapter: options (``params``) < ``--set`` pairs."""
    return load_config(
        params, shorthands, pairs=_STATE["pairs"], warehouse=_STATE["warehouse"], config_file=_STATE["config_file"]
    )


def _ds(value: str) -> Ds:
    return Ds(value)


def print_frame(frame, title: str | None = None, fmt: str = "table") -> None:
    if fmt == "csv":
        sys.stdout.write(frame.to_csv(index=False))
        return
    if fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso") + "\n")
        return
    table = Table(title=title, show_lines=False)
    for col in frame.columns:
        table.add_column(str(col), justify="right" if frame[col].dtype.kind in "iuf" else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*["" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in row])
    console.print(table)


@app.command()
def simulate(
    start: str = typer.Option(..., help="First day, YYYY-MM-DD."),
    days: int = typer.Option(1, help="Number of days."),
    world: Optional[str] = typer.Option(None, help="synthetic | esci"),
    seed: Optional[int] = typer.Option(None),
    requests_per_day: Optional[int] = typer.Option(None),
    bot_rate: Optional[float] = typer.Option(None),
    accidental_click_rate: Optional[float] = typer.Option(None),
    clickbait_item_rate: Optional[float] = typer.Option(None),
    duplicate_event_rate: Optional[float] = typer.Option(None),
    label_flip_rate: Optional[float] = typer.Option(None),
    bad_records: Optional[int] = typer.Option(None, help="Malformed lines injected per kind."),
) -> None:
    """Simulate UBI logs (plus catalog, holdout and oracle) for DAYS days from START."""
    from sie.simulate import simulate_days

    opts = dict(
        world=world,
        seed=seed,
        requests_per_day=requests_per_day,
        bot_rate=bot_rate,
        accidental_click_rate=accidental_click_rate,
        clickbait_item_rate=clickbait_item_rate,
        duplicate_event_rate=duplicate_event_rate,
        label_flip_rate=label_flip_rate,
        bad_records=bad_records,
    )
    cfg = _cfg({"config": {"simulate": {k: v for k, v in opts.items() if v is not None}}})
    for summary in simulate_days(cfg, _span(start, days)[0], days):
        console.print(summary)


def _span(start: str, days: int) -> list[Ds]:
    return Ds.span(start, days)


@app.command()
def ingest(ds: str = typer.Option(..., help="Day to ingest, YYYY-MM-DD.")) -> None:
    """Ingest one day's raw UBI logs with Spark into events / quarantine / samples."""
    from sie.steps import daily

    console.print(daily.ingest(_cfg(), _ds(ds)))


@app.command()
def validate(
    ds: str = typer.Option(...),
    suite: str = typer.Option("samples", help="raw_events | samples | importance_scores"),
) -> None:
    """Run a Great Expectations suite on one day; exit 1 when a critical expectation fails."""
    from sie.steps import daily

    console.print(daily.validate(_cfg(), _ds(ds), suite))


@app.command()
def train(ds: str = typer.Option(...)) -> None:
    """Train the ranker on the window ending DS and save checkpoints."""
    from sie.steps import daily

    console.print(daily.train(_cfg(), _ds(ds)))


@app.command()
def score(
    ds: str = typer.Option(...),
    methods: Optional[str] = typer.Option(None, help="Comma-separated methods (default: config)."),
) -> None:
    """Score every training sample of DS's model with each method, then validate the scores."""
    from sie.steps import daily

    cfg, day = _cfg({"methods": methods}), _ds(ds)
    for scored in daily.score_all(cfg, day, cfg.importance.methods).values():
        console.print(scored.cost)
    console.print(daily.validate(cfg, day, "importance_scores"))


@app.command()
def evaluate(
    ds: str = typer.Option(...),
    methods: Optional[str] = typer.Option(None, help="Comma-separated methods (default: config)."),
    keep_ratios: Optional[str] = typer.Option(
        None, help="Comma-separated keep ratios (default: evaluate.keep_ratios)."
    ),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated retraining seeds (default: evaluate.seeds)."),
) -> None:
    """Retrain on importance-downsampled data and evaluate on the holdout."""
    from sie.steps import daily

    console.print(daily.evaluate(_cfg({"methods": methods, "keep_ratios": keep_ratios, "seeds": seeds}), _ds(ds)))


@app.command()
def run(
    ds: str = typer.Option(..., help="(First) day to process."),
    days: int = typer.Option(1, help="Process DAYS consecutive days from DS."),
    methods: Optional[str] = typer.Option(None),
) -> None:
    """Run the whole nightly pipeline without Airflow (development and debugging)."""
    from sie.steps import daily

    cfg = _cfg({"methods": methods})
    for day in _span(ds, days):
        console.print(f"report: {daily.run_day(cfg, day)['report']}")
    _print_summary(cfg)


@app.command()
def methods() -> None:
    """List the importance methods."""
    from sie.importance import REGISTRY

    for name, cls in sorted(REGISTRY.items()):
        console.print(f"[bold]{name}[/bold]: {cls.summary}")


@app.command()
def sql(
    statement: Optional[str] = typer.Argument(None, help="SQL to run."),
    file: Optional[Path] = typer.Option(None, "-f", "--file", help="Run the SQL in this file (or sql/<name>)."),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    as_of: Optional[str] = typer.Option(
        None, "--as-of", help="Read the tables as of a time (ISO-8601) or a version of the one table read."
    ),
) -> None:
    """Run SQL on DuckDB over the warehouse tables (read-only)."""
    from sie.sql import query, query_file

    if bool(statement) == bool(file):
        raise typer.BadParameter("give either a SQL statement or -f FILE")
    cfg = _cfg()
    try:
        frame = query_file(cfg, file, as_of) if file else query(cfg, statement, as_of)
    except Exception as exc:  # duckdb errors: show them plainly, exit non-zero
        console.print(f"[red]SQL error:[/red] {exc}")
        raise typer.Exit(1) from None
    print_frame(frame, fmt=fmt)


@app.command()
def history(
    table: str = typer.Argument(..., help="A table name (see `sie ddl`)."),
    limit: Optional[int] = typer.Option(20, help="Newest commits to show."),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
) -> None:
    """List a table's commits (version, time, operation, partition, run): what `sql --as-of` can read."""
    import pandas as pd

    from sie.schemas import TABLES
    from sie.store import Warehouse

    if table not in TABLES:
        raise typer.BadParameter(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    print_frame(pd.DataFrame(Warehouse.from_config(_cfg()).history(table, limit)), title=f"{table} history", fmt=fmt)


@app.command()
def vacuum(
    retention_hours: Optional[float] = typer.Option(None, help="Default: store.retention_hours."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be deleted."),
) -> None:
    """Delete files no snapshot within the retention needs (superseded ingest runs, killed writers)."""
    from sie.store import Warehouse

    cfg = _cfg({"config": {"store": {"retention_hours": retention_hours}}} if retention_hours is not None else None)
    deleted = Warehouse.from_config(cfg).vacuum(cfg.store.retention_hours, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for table, n in deleted.items():
        console.print(f"{table}: {verb} {n} files (retention {cfg.store.retention_hours:g} h)")


@app.command()
def ddl() -> None:
    """Print CREATE TABLE statements for every table (generated from sie/schemas.py)."""
    from sie.sql import ddl as make_ddl

    sys.stdout.write(make_ddl() + "\n")


def _print_summary(cfg: SieConfig) -> None:
    from sie.steps.report import summary_frames

    console.print(f"\n[bold]Warehouse:[/bold] {cfg.warehouse_path}")
    console.print(f"  tables:  {cfg.warehouse_path / 'tables'}")
    console.print(f"  reports: {cfg.warehouse_path / 'reports'}")
    for title, frame in summary_frames(cfg).items():
        print_frame(frame, title=title)


@app.command()
def summary() -> None:
    """Print rows per table, importance per method and holdout NDCG@10 per method."""
    _print_summary(_cfg())


@app.command()
def demo(
    start: str = typer.Option("2026-11-18", help="First simulated day."),
    days: int = typer.Option(3, help="Number of days to run through the sie_daily DAG."),
    output: Path = typer.Option(Path("demo_output"), help="Folder for the warehouse and the Airflow home."),
) -> None:
    """Run sie_daily for DAYS simulated days with `airflow dags test` (SQLite), then summarise."""
    from sie.dev.demo import run_demo

    _STATE["warehouse"] = str((output / "warehouse").resolve())
    cfg = _cfg()
    run_demo(cfg, start, days, output.resolve())
    _print_summary(cfg)


@app.command()
def bench(
    dataset: Optional[str] = typer.Option(None, help="synthetic | esci (default: bench.dataset)."),
    days: Optional[int] = typer.Option(None, help="Simulated days = the training window (default: bench.days)."),
    start: Optional[str] = typer.Option(None, help="First simulated day (default: bench.start)."),
    methods: Optional[str] = typer.Option(
        None, help="Comma-separated importance methods (default: bench.grid.methods, else importance.methods)."
    ),
    keep_ratios: Optional[str] = typer.Option(None, help="Comma-separated keep ratios, e.g. 0.1,0.3,0.5,1.0."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated retraining seeds, e.g. 0,1,2."),
    baselines: Optional[str] = typer.Option(None, help="Comma-separated baselines among random,stratified,full."),
    run_id: Optional[str] = typer.Option(
        None, help="Run id (default: bench-<dataset>-<hash of the data/model settings>)."
    ),
    folds: Optional[int] = typer.Option(
        None, help="Query k-fold: every judged query held out in exactly one of k sub-runs (default: bench.folds)."
    ),
    world_seeds: Optional[str] = typer.Option(None, help="Comma-separated world seeds, one sub-run each."),
    model_seeds: Optional[str] = typer.Option(None, help="Comma-separated scoring-model seeds, one sub-run each."),
    workers: int = typer.Option(1, help="Processes running cells in parallel."),
    fresh: bool = typer.Option(
        False, "--fresh", help="Delete the run's previous files first (otherwise finished steps and cells are reused)."
    ),
) -> None:
    """Benchmark importance-based downsampling: every method x keep ratio x seed, retrained from scratch."""
    import shutil

    from sie.bench.run import resolve_any
    from sie.bench.runner import run_benchmark

    params = {
        "dataset": dataset,
        "days": days,
        "start": start,
        "methods": methods,
        "keep_ratios": keep_ratios,
        "seeds": seeds,
        "baselines": baselines,
        "run_id": run_id,
        "folds": folds,
        "world_seeds": world_seeds,
        "model_seeds": model_seeds,
    }
    cfg = _cfg(params, BENCH_PARAMS)
    try:
        run = resolve_any(cfg)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    for root in run.roots() if fresh else []:
        shutil.rmtree(root, ignore_errors=True)
    out = run_benchmark(cfg, workers=workers)
    console.print(out)


@app.command()
def report(
    run_id: Optional[str] = typer.Option(None, help="Benchmark run (default: the latest published bench-* run)."),
    output: Optional[Path] = typer.Option(None, help="Folder for the report (default: <warehouse>/reports/<run_id>)."),
    no_oracle: bool = typer.Option(
        False,
        "--no-oracle",
        help="Instead: what the nightly scores show without an oracle or judgments (real logs): score "
        "distributions, agreement between methods, stability across nights; written to reports/no-oracle-<ds>.",
    ),
    ds: Optional[str] = typer.Option(None, help="With --no-oracle: the model day (default: the latest scored)."),
) -> None:
    """Rebuild a benchmark report (Markdown, HTML, PNG plots) from the benchmark_results table alone."""
    from sie.bench.report import build_report
    from sie.bench.report.no_oracle import build_no_oracle_report

    try:
        path = build_no_oracle_report(_cfg(), ds, output) if no_oracle else build_report(_cfg(), run_id, output)
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"report: {path}")
    console.print(f"html:   {path.with_name('report.html')}")


def entry() -> None:
    """The `sie` command: an error ends with one line on stderr and exit code 1 (`--debug`: the traceback)."""
    try:
        app()
    except Exception as exc:
        if _STATE.get("debug"):
            raise
        sys.stderr.write(f"sie: error: {type(exc).__name__}: {exc}".splitlines()[0][:1000] + "\n")
        sys.exit(1)


if __name__ == "__main__":
    entry()
