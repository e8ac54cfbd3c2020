"""
### sie_benchmark: importance-based downsampling, measured

Manually triggered. For one dataset (the simulator's `synthetic` world or the `esci`
world built on the real ESCI judgments) it simulates `days` days into the run's own
warehouse sub-root, ingests (Spark) and validates (Great Expectations) them, trains the
ranker once on the whole window, scores every importance method (one mapped task per
method: cost and noise-detection AUROC/AP against the simulator's oracle), then fans
out one mapped task per (method, keep ratio, seed) cell: keep the top share by score
(or the random / stratified-random / full baselines), retrain from scratch, evaluate
NDCG@10, MRR and held-out click AUC / log loss. `publish` writes every row to
`benchmark_results` (partition `run_id`) atomically; `report` renders
`<warehouse>/reports/<run_id>/report.{md,html}` with plots.

Resumable: finished days, the model, scored methods and cells are kept under
`<warehouse>/bench/<run_id>/`; a rerun with the same params skips them.

Replication: `world_seeds`, `model_seeds` and `folds` (query k-fold) make the run a set of
sub-runs (one per world seed x scoring-model seed x fold); every task then works through
the sub-runs in turn, `publish` also publishes the pooled run and `report` reports it.

Params: `dataset`, `days`, `start`, `methods`, `keep_ratios`, `seeds`, `baselines`,
`run_id`, `world_seeds`, `model_seeds`, `folds`, `model` (the ranker: `sie.config.TrainConfig` overrides such as
`{"epochs": 4, "hidden_dim": 64}`), and `config` (nested overrides of
`sie.config.SieConfig`, e.g. the world: `{"simulate": {"bot_rate": 0.15}}`).
Defaults come from `sie.config.BenchConfig` (the grid: `bench.grid`). See docs/BENCHMARKS.md.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from sie.assets import uri

BENCHMARK_RESULTS = Asset(uri=uri("benchmark_results"), name="benchmark_results")


@dag(
    dag_id="sie_benchmark",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # the delay between tries is Airflow configuration: [core] default_task_retry_delay (seconds)
    default_args={"retries": 1},
    tags=["sie", "benchmark", "importance"],
    params={
        "dataset": Param(
            None,
            type=["null", "string"],
            enum=[None, "synthetic", "esci"],
            description="synthetic | esci (default: bench.dataset).",
        ),
        "days": Param(None, type=["null", "integer"], minimum=1, description="Simulated days = the training window."),
        "start": Param(None, type=["null", "string"], description="First simulated day, YYYY-MM-DD."),
        "methods": Param(
            None,
            type=["null", "array", "string"],
            description="Importance methods (default: bench.grid.methods, else importance.methods).",
        ),
        "keep_ratios": Param(
            None, type=["null", "array", "string"], description="Keep ratios in (0, 1]; 1.0 is the full-data baseline."
        ),
        "seeds": Param(
            None, type=["null", "array", "string"], description="Retraining seeds (≥ 3 for confidence intervals)."
        ),
        "baselines": Param(None, type=["null", "array", "string"], description="Among random, stratified, full."),
        "run_id": Param(
            None, type=["null", "string"], description="Default: bench-<dataset>-<hash of the data/model settings>."
        ),
        "world_seeds": Param(
            None, type=["null", "array", "string"], description="World seeds: one sub-run each (replication)."
        ),
        "model_seeds": Param(
            None, type=["null", "array", "string"], description="Scoring-model seeds: one sub-run each (replication)."
        ),
        "folds": Param(
            None,
            type=["null", "integer"],
            minimum=0,
            description="Query k-fold: every judged query held out in exactly one of k sub-runs (0: the fixed holdout).",
        ),
        "model": Param(
            {},
            type="object",
            description='The ranker (sie.config.TrainConfig overrides), e.g. {"epochs": 4, "hidden_dim": 64}; used for the scoring model and every retrained cell.',
        ),
        "ranker": Param(
            None,
            type=["null", "string"],
            enum=[None, "mlp", "minilm_cross"],
            description="train.model: the ranker trained and scored (mlp or minilm_cross).",
        ),
        "retrain_ranker": Param(
            None,
            type=["null", "string"],
            enum=[None, "mlp", "minilm_cross"],
            description="bench.retrain_model: the ranker the cells retrain (default: ranker); another one = proxy selection.",
        ),
        "config": Param(
            {},
            type="object",
            description="Overrides of sie.config.SieConfig (world: simulate.*, importance.*, bench.*).",
        ),
    },
    doc_md=__doc__,
)
def sie_benchmark():
    @task
    def plan(params=None) -> dict:
        from sie.bench import params_plan

        return params_plan(params)

    @task
    def list_methods(planned: dict) -> list[str]:
        return planned["methods"]

    @task
    def list_cells(planned: dict) -> list[dict]:
        return planned["cells"]

    @task
    def prepare(bench_run: str, params=None) -> list[dict]:
        from sie.bench import params_runs, runner

        return [runner.prepare(run) for run in params_runs(params)]

    @task
    def train(bench_run: str, params=None) -> list[dict]:
        from sie.bench import params_runs, runner

        metas = [runner.train(run) for run in params_runs(params)]
        return [{k: m[k] for k in ("n_train", "n_validation", "train_seconds", "epochs") if k in m} for m in metas]

    @task(max_active_tis_per_dagrun=2)
    def score(method: str, params=None) -> list[dict]:
        from sie.bench import params_runs, runner

        return [runner.score(run, method) for run in params_runs(params)]

    @task(max_active_tis_per_dagrun=4)
    def cell(cell: dict, params=None) -> list[dict]:
        from sie.bench import params_runs, runner
        from sie.selection.grid import Cell

        return [runner.run_cell(run, Cell(**cell)) for run in params_runs(params)]

    @task(outlets=[BENCHMARK_RESULTS])
    def publish(bench_run: str, params=None) -> dict:
        from sie.bench import params_publish

        return params_publish(params)

    @task
    def report(bench_run: str, params=None) -> str:
        from sie.bench import params_config
        from sie.bench.report import build_report

        return str(build_report(params_config(params), bench_run))

    @task
    def run_id_of(planned: dict) -> str:
        return planned["run_id"]

    # `bench_run` (not `run_id`, an Airflow context variable) is the benchmark run id
    planned = plan()
    bench_run = run_id_of(planned)
    trained = train(bench_run)
    prepare(bench_run) >> trained
    scored = score.expand(method=list_methods(planned))
    cells = cell.expand(cell=list_cells(planned))
    published = publish(bench_run)
    trained >> scored >> cells >> published >> report(bench_run)


sie_benchmark()
