"""The one configuration object.

Every setting lives here, with its default for the embedded set-up (simulated logs,
local Spark, CPU torch, DuckDB). Overrides come, in increasing priority, from a JSON
file named by ``SIE_CONFIG``, environment variables ``SIE_<SECTION>__<FIELD>`` (and
``SIE_WAREHOUSE`` for the root), and explicit ``overrides`` (CLI options, DAG params).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SimulateConfig:
    """The built-in log simulator (the default data source); see docs/SIMULATOR.md."""

    world: str = "synthetic"  # synthetic | esci (real ESCI queries/products/grades from esci_dir)
    seed: int = 7
    # -- the world (synthetic: all of it; esci: users only, catalog/queries come from esci_dir)
    n_items: int = 2000
    n_users: int = 3000
    n_intents: int = 400
    candidates_per_query: int = 50  # retrieval depth the production ranker re-ranks per query
    holdout_fraction: float = 0.3  # share of queries held out of traffic; their judgments = holdout
    # query k-fold instead of holdout_fraction (bench.folds sets these): with holdout_folds = k >= 2,
    # the held-out queries are fold holdout_fold (0..k-1) of a fixed k-way partition of all queries
    holdout_folds: int = 0
    holdout_fold: int = 0
    esci_dir: str = "../shared/data/esci"  # relative: to the cwd, else to the project root
    # -- traffic and behaviour
    requests_per_day: int = 2500
    impressions_per_request: int = 10
    zipf_exponent: float = 1.0  # query popularity ~ 1 / rank^s (head/torso/tail)
    position_bias: float = 1.0  # examination probability at rank k = 1 / k^position_bias
    ranker_noise: float = 0.5  # std of per-request noise in the production ranker's scores
    # -- noise rates (see docs/SIMULATOR.md for exactly what each one is a fraction of)
    bot_rate: float = 0.05  # share of requests issued by bot/crawler sessions
    accidental_click_rate: float = 0.05  # share of human clicks that are accidental
    clickbait_item_rate: float = 0.03  # share of catalog items that are clickbait
    duplicate_event_rate: float = 0.02  # share of event lines logged twice (retries)
    label_flip_rate: float = 0.02  # share of human requests with a misattributed purchase
    bad_records: int = 0  # malformed lines injected per kind (0 = clean logs)
    compress_level: int = 1  # gzip level of the NDJSON files (1 = fastest)


@dataclass
class IngestConfig:
    """Spark ingest of raw UBI logs (rules: docs/INGEST.md)."""

    spark_master: str = "local[2]"
    shuffle_partitions: int = 4  # at least this many shuffle partitions ...
    landed_bytes_per_partition: int = 16 << 20  # ... or one per this many landed (gzip) bytes of the day
    session_gap_minutes: int = 30  # a client's new session starts after this idle gap
    lateness_hours: int = 6  # records landed under ds=D are accepted within [D - lateness, D+1 + lateness)
    stats_window_days: int = 7  # trailing window of published samples for item/query statistics
    ctr_prior_strength: float = 20.0  # pseudo-impressions of the smoothed item CTR prior
    bot_max_requests_per_day: int = 100  # a client with more requests in a day is a suspected bot
    bot_fast_click_seconds: float = 1.0  # a click with dwell below this is a "fast" click
    bot_fast_click_share: float = 0.8  # ... a client whose clicks are mostly fast is a suspected bot
    bot_min_clicks: int = 3  # ... once it has at least this many clicks
    rows_per_file: int = 2_000_000  # output parquet files per partition = ceil(rows / rows_per_file)


@dataclass
class ValidateConfig:
    """Great Expectations suites (sie.validate); bounds apply to one ds."""

    min_ctr: float = 0.005
    max_ctr: float = 0.6
    max_bot_share: float = 0.5
    min_click_impression_share: float = 0.8  # share of click events whose impression is in the same day
    allow_empty_day: bool = False  # an empty samples day fails the samples suite unless True
    data_docs: bool = True  # also render Great Expectations Data Docs HTML
    # a day with more rows is validated in row batches of this many (memory ~ the batch, not the
    # day); the checks only the whole day can judge run once on a frame of just their columns
    batch_rows: int = 1_000_000


@dataclass
class GradesConfig:
    """Graded relevance of an impression's strongest signal, for the group objectives (train.objective)."""

    click: float = 1.0
    add_to_cart: float = 2.0
    purchase: float = 3.0


@dataclass
class TransformerConfig:
    """The cross-encoder ranker (``train.model = minilm_cross``, sie.model.cross_encoder).

    Its optimiser settings replace ``train.lr`` / ``batch_size`` / ``epochs`` when it is the
    model (:meth:`TrainConfig.effective`): fine-tuning a pre-trained encoder wants a learning
    rate ~100x below the small MLP's, and its steps cost ~1,000x more.
    """

    lr: float = 5e-5
    batch_size: int = 32
    epochs: int = 2
    max_tokens: int = 32  # word pieces of "[CLS] query [SEP] title [SEP]", truncated longest-first
    layers: int = 0  # encoder layers kept from the checkpoint (0 = all 6); fewer = a cheaper model


@dataclass
class TrainConfig:
    # mlp: hashed-token embeddings + an MLP (the default, CPU-cheap); minilm_cross: a cross-encoder
    # over (query, title) initialised from MiniLM-L6 (sie.model.cross_encoder; GPU recommended)
    model: str = "mlp"
    transformer: TransformerConfig = field(default_factory=TransformerConfig)  # minilm_cross only
    window_days: int = 3  # rolling window of sample days the ranker trains on
    # pointwise: BCE on clicks (the default); listwise: ListNet softmax cross-entropy over each
    # query request against its graded relevance; pairwise: RankNet over each request's pairs
    # of different grades (sie.model.objective)
    objective: str = "pointwise"
    grades: GradesConfig = field(default_factory=GradesConfig)  # listwise / pairwise only
    epochs: int = 4
    batch_size: int = 512
    lr: float = 3e-3
    weight_decay: float = 1e-6
    vocab_size: int = 4096  # hashed token buckets
    max_query_tokens: int = 8
    max_item_tokens: int = 16
    embedding_dim: int = 32
    hidden_dim: int = 64
    n_dense: int = 4
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    # the window's wide columns (titles, features) are read and encoded in record batches of
    # at most this many rows: memory ~ the batch plus the window's keys, not the whole window
    read_batch_rows: int = 250_000

    def effective(self) -> TrainConfig:
        """These settings as training uses them: the transformer's own lr / batch size / epochs for it."""
        if self.model == "mlp":
            return self
        t = self.transformer
        return dataclasses.replace(self, lr=t.lr, batch_size=t.batch_size, epochs=t.epochs)


@dataclass
class ImportanceConfig:
    """Importance scoring (sie.importance; every method is documented in docs/IMPORTANCE.md)."""

    # methods the DAG / CLI score by default (all of them: together ~60k samples score in
    # well under a minute on 2 CPU cores; see docs/IMPORTANCE.md for measured costs)
    methods: list[str] = field(
        default_factory=lambda: [
            "random",
            "loss",
            "el2n",
            "forgetting",
            "aum",
            "grad_norm",
            "input_grad_share",
            "tracin",
            "tracin_self",
            "knn_shapley",
            "data_oob",
            "tce",
            "rce",
        ]
    )
    batch_size: int = 2048  # samples per streamed batch (GPU: 8192+ is fine)
    el2n_epoch: int = 1  # 1-based epoch whose recorded predictions EL2N uses (clipped)
    aum_mode: str = "pointwise"  # pointwise (matches the BCE loss) | pairwise (within query group)
    tracin_checkpoints: int = 3  # checkpoints TracIn sums over (evenly spaced, incl. the final one)
    tracin_projection_dim: int = 0  # 0 = exact; k > 0 = random projection to ~k dims per layer
    # `trak` (sie.importance.trak): per-sample gradients projected to ~k dims per weight matrix
    # (biases, LayerNorm and weights of at most k entries stay exact), over TracIn's checkpoints
    trak_projection_dim: int = 512
    trak_kernel: str = "trak"  # trak: (ΦᵀΦ + λI)⁻¹ per layer | identity: projected TracIn
    trak_damping: float = 0.01  # λ relative to the mean diagonal of each layer's ΦᵀΦ
    knn_k: int = 10  # K of KNN-Shapley
    knn_max_validation: int = 1000  # cap on validation points (seeded sample); 0 = all
    knn_batch_elements: int = 1 << 21  # distance-matrix entries sorted per batch (memory knob)
    oob_estimators: int = 32  # Data-OOB bagged learners
    oob_epochs: int = 2  # Data-OOB training passes
    oob_lr: float = 0.05
    tce_max_drop: float = 0.2  # T-CE: max fraction of clicks truncated per epoch
    tce_warmup_epochs: int = 2  # T-CE: epochs until the drop rate reaches its max
    rce_beta: float = 0.25  # R-CE: weight exponent β
    # `ensemble`: the detectors whose rank percentiles it combines (any registered methods,
    # group-aware ones such as "aum@client" included) and how: geometric_mean (a low rank
    # under any member is enough to rank low) | mean (plain rank average); docs/IMPORTANCE.md
    ensemble_methods: list[str] = field(default_factory=lambda: ["aum", "aum@client"])
    ensemble_rule: str = "geometric_mean"


@dataclass
class GridConfig:
    """One retrain grid (sie.selection.grid): every (method, keep ratio, seed) cell plus the baselines.

    ``random`` is always the seeded uniform-random baseline (listing it in ``methods`` adds
    it to the baselines); a keep ratio of 1.0 is the ``full`` baseline.
    """

    methods: list[str] = field(default_factory=list)  # importance methods retrained; empty = importance.methods
    keep_ratios: list[float] = field(default_factory=lambda: [0.5])
    seeds: list[int] = field(default_factory=lambda: [0])
    # random (uniform), stratified (uniform within each query text), full (all data)
    baselines: list[str] = field(default_factory=lambda: ["random", "full"])
    # -- the budget (docs/PERFORMANCE.md, "What the evaluate budget trades away")
    # cells retrain on a seeded uniform subsample of at most this many training samples (the
    # same one for every cell; keep ratios and importance ranks apply within it); 0 = all
    max_train_samples: int = 500_000
    # nightly evaluate only: cells left when this many seconds have passed are skipped (logged
    # and counted in the result; full and the baselines run first); 0 = no limit
    max_seconds: float = 0.0


def _bench_grid() -> GridConfig:
    # small enough for a few minutes on 2 CPU cores; docs/BENCHMARKS.md runs all methods
    return GridConfig(
        methods=["loss", "el2n", "aum", "grad_norm", "knn_shapley"],
        keep_ratios=[0.2, 0.5],
        seeds=[0, 1, 2],
        baselines=["random", "stratified", "full"],
    )


@dataclass
class BenchConfig:
    """A benchmark run (``sie bench`` / the ``sie_benchmark`` DAG; docs/BENCHMARKS.md).

    Simulates ``days`` days of ``dataset`` into the run's own warehouse sub-root, trains and
    scores once, then retrains from scratch for every cell of ``grid``.
    """

    dataset: str = "synthetic"  # synthetic | esci (sets simulate.world)
    start: str = "2026-11-01"  # first simulated day
    days: int = 1  # simulated days = the training window
    grid: GridConfig = field(default_factory=_bench_grid)
    run_id: str = ""  # empty = bench-<dataset>-<hash of the data/model settings>
    validate: bool = True  # run the Great Expectations suites on the run's samples and scores
    torch_threads: int = 0  # torch intra-op threads per cell (0 = torch's default)
    roc_points: int = 51  # ROC curve points stored per method (TPR at evenly spaced FPR)
    confidence: float = 0.95  # confidence intervals over seeds
    alpha: float = 0.05  # significance level of the paired comparisons with random
    power: float = 0.8  # power at which the minimum detectable NDCG difference is reported
    # query k-fold (k >= 2): k sub-runs, each holding out one fold of all judged queries (every
    # query exactly once), pooled; 0 = the world's fixed holdout (simulate.holdout_fraction)
    folds: int = 0
    # replication: one sub-run per (world seed, scoring-model seed); empty = simulate.seed / train.seed
    world_seeds: list[int] = field(default_factory=list)
    model_seeds: list[int] = field(default_factory=list)
    # the ranker the cells retrain ("" = train.model). Another one than train.model makes the
    # scores a proxy's: e.g. the cheap mlp scores and chooses the data minilm_cross retrains on
    retrain_model: str = ""


@dataclass
class StoreConfig:
    """The warehouse's Delta tables."""

    # files and log entries no snapshot younger than this needs are deleted by `sie vacuum`;
    # superseded ingest runs of a day stay readable (and `sie sql --as-of` can go back) this long
    retention_hours: float = 168.0


@dataclass
class SieConfig:
    warehouse: str = "warehouse"
    # where raw logs come from: "simulator" (the pipeline simulates each day first) or
    # "landed" (another system lands UBI logs under raw/; the pipeline only reads them)
    source: str = "simulator"
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    importance: ImportanceConfig = field(default_factory=ImportanceConfig)
    evaluate: GridConfig = field(default_factory=GridConfig)  # the nightly retrain + evaluate step
    bench: BenchConfig = field(default_factory=BenchConfig)
    store: StoreConfig = field(default_factory=StoreConfig)

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse).expanduser().resolve()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None, config_file: str | None = None) -> SieConfig:
        cfg = cls()
        path = config_file or os.environ.get("SIE_CONFIG")
        if path:
            cfg = _merge(cfg, json.loads(Path(path).read_text()))
        env: dict[str, Any] = {}
        for name in ("warehouse", "source"):  # the top-level settings: SIE_WAREHOUSE, SIE_SOURCE
            if f"SIE_{name.upper()}" in os.environ:
                env[name] = os.environ[f"SIE_{name.upper()}"]
        for key, value in os.environ.items():
            if key.startswith("SIE_") and "__" in key:
                *sections, name = key[4:].lower().split("__")
                node = env
                for section in sections:
                    node = node.setdefault(section, {})
                node[name] = value
        cfg = _merge(cfg, env)
        if overrides:
            cfg = _merge(cfg, overrides)
        return check_config(cfg)


def overrides_from_pairs(pairs: list[str], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``["train.epochs=2", ...]`` (as ``sie --set``) to the nested dict ``SieConfig.load`` takes."""
    tree: dict[str, Any] = dict(base or {})
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set needs SECTION.FIELD=VALUE, got {item!r}")
        _set_path(tree, key, value)
    return tree


def _coerce(current: Any, value: Any) -> Any:
    """Cast strings from env vars / CLI (and list items from DAG params) to the type of the current value."""
    if isinstance(value, list) and isinstance(current, list) and current:
        kind = type(current[0])
        return [kind(v) if isinstance(v, str | int | float) and kind in (int, float, str) else v for v in value]
    if not isinstance(value, str) or isinstance(current, str):
        return value
    if isinstance(current, bool):
        return value.lower() in {"1", "true", "yes", "on"}
    if isinstance(current, int):
        return _number(int, value)
    if isinstance(current, float):
        return _number(float, value)
    if isinstance(current, list):
        items = [v.strip() for v in value.split(",") if v.strip()]
        if current and isinstance(current[0], float):
            return [float(v) for v in items]
        if current and isinstance(current[0], int) or not current and all(v.isdigit() for v in items):
            return [int(v) for v in items]  # an empty default list of ints (bench.world_seeds) gets ints too
        return items
    return value


def _number(kind: type, value: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"expected {kind.__name__}, got {value!r}") from None


def _merge(obj: Any, updates: dict[str, Any], prefix: str = "") -> Any:
    """Return a copy of dataclass ``obj`` with nested ``updates`` applied; unknown keys fail loudly."""
    known = {f.name for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in updates.items():
        if key not in known:
            raise ValueError(f"unknown config key {key!r} for {type(obj).__name__}; known: {sorted(known)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"config section {key!r} needs a mapping, got {value!r}")
            changes[key] = _merge(current, value, f"{prefix}{key}.")
        else:
            try:
                changes[key] = _coerce(current, value)
            except ValueError as exc:
                raise ValueError(f"setting {prefix}{key}: {exc}") from None
    return dataclasses.replace(obj, **changes)


# ---- the one adapter from DAG params, CLI options and job arguments to a config ----------

#: shorthand params of the sie_daily DAG, `sie run/score/evaluate` and jobs/*.py → config field
DAILY_PARAMS = {
    "methods": "importance.methods",
    "keep_ratios": "evaluate.keep_ratios",
    "seeds": "evaluate.seeds",
    "ranker": "train.model",
}
#: shorthand params of the sie_benchmark DAG and `sie bench` → config field
BENCH_PARAMS = {
    "dataset": "bench.dataset",
    "start": "bench.start",
    "days": "bench.days",
    "methods": "bench.grid.methods",
    "keep_ratios": "bench.grid.keep_ratios",
    "seeds": "bench.grid.seeds",
    "baselines": "bench.grid.baselines",
    "run_id": "bench.run_id",
    "folds": "bench.folds",
    "world_seeds": "bench.world_seeds",
    "model_seeds": "bench.model_seeds",
    "model": "train",  # the ranker: TrainConfig overrides, e.g. {"epochs": 4}
    "ranker": "train.model",
    "retrain_ranker": "bench.retrain_model",
}


def load_config(
    params: dict[str, Any] | None = None,
    shorthands: dict[str, str] | None = None,
    *,
    pairs: list[str] | tuple[str, ...] = (),
    warehouse: str | None = None,
    config_file: str | None = None,
) -> SieConfig:
    """The run's config: defaults < ``SIE_CONFIG``/``config_file`` < env < ``config`` param < shorthands < ``pairs``.

    ``params`` are DAG params or CLI options: ``params["config"]`` holds nested overrides,
    every other key named in ``shorthands`` sets the config field it maps to (None, "" and
    [] mean "not given"); ``pairs`` are ``SECTION.FIELD=VALUE`` strings (``--set``).
    """
    params = json.loads(json.dumps(params or {}))
    tree: dict[str, Any] = params.pop("config", None) or {}
    for name, path in (shorthands or {}).items():
        value = params.get(name)
        if value is None or value == "" or value == [] or value == {}:
            continue
        _set_path(tree, path, value)
    tree = overrides_from_pairs(list(pairs), tree)
    if warehouse:
        tree["warehouse"] = warehouse
    return SieConfig.load(tree, config_file)


def _set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    node = tree
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    if isinstance(value, dict) and isinstance(node.get(leaf), dict):
        node[leaf].update(value)
    else:
        node[leaf] = value


# ---- ranges: every numeric setting is checked when a config is loaded ---------------------

#: ``section.field`` → (low, high, low_inclusive); None = unbounded. A list setting checks each item.
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "simulate.seed": (0, None, True),
    "simulate.n_items": (10, None, True),
    "simulate.n_users": (1, None, True),
    "simulate.n_intents": (2, None, True),
    "simulate.candidates_per_query": (2, None, True),
    "simulate.holdout_fraction": (0, 1, False),
    "simulate.holdout_folds": (0, None, True),
    "simulate.holdout_fold": (0, None, True),
    "simulate.requests_per_day": (1, None, True),
    "simulate.impressions_per_request": (1, None, True),
    "simulate.zipf_exponent": (0, None, True),
    "simulate.position_bias": (0, None, True),
    "simulate.ranker_noise": (0, None, True),
    "simulate.bot_rate": (0, 1, True),
    "simulate.accidental_click_rate": (0, 1, True),
    "simulate.clickbait_item_rate": (0, 1, True),
    "simulate.duplicate_event_rate": (0, 1, True),
    "simulate.label_flip_rate": (0, 1, True),
    "simulate.bad_records": (0, None, True),
    "simulate.compress_level": (0, 9, True),
    "ingest.shuffle_partitions": (1, None, True),
    "ingest.landed_bytes_per_partition": (1, None, True),
    "ingest.session_gap_minutes": (1, None, True),
    "ingest.lateness_hours": (0, None, True),
    "ingest.stats_window_days": (1, None, True),
    "ingest.ctr_prior_strength": (0, None, True),
    "ingest.bot_max_requests_per_day": (1, None, True),
    "ingest.bot_fast_click_seconds": (0, None, True),
    "ingest.bot_fast_click_share": (0, 1, True),
    "ingest.bot_min_clicks": (1, None, True),
    "ingest.rows_per_file": (1, None, True),
    "validate.min_ctr": (0, 1, True),
    "validate.max_ctr": (0, 1, True),
    "validate.max_bot_share": (0, 1, True),
    "validate.min_click_impression_share": (0, 1, True),
    "validate.batch_rows": (1, None, True),
    "train.window_days": (1, None, True),
    "train.read_batch_rows": (1, None, True),
    "train.epochs": (1, None, True),
    "train.batch_size": (1, None, True),
    "train.lr": (0, None, False),
    "train.weight_decay": (0, None, True),
    "train.vocab_size": (2, None, True),
    "train.max_query_tokens": (1, None, True),
    "train.max_item_tokens": (1, None, True),
    "train.embedding_dim": (1, None, True),
    "train.hidden_dim": (1, None, True),
    "train.n_dense": (1, None, True),
    "train.seed": (0, None, True),
    "train.transformer.lr": (0, None, False),
    "train.transformer.batch_size": (1, None, True),
    "train.transformer.epochs": (1, None, True),
    "train.transformer.max_tokens": (4, 512, True),
    "train.transformer.layers": (0, None, True),
    "train.grades.click": (0, None, True),
    "train.grades.add_to_cart": (0, None, True),
    "train.grades.purchase": (0, None, True),
    "importance.batch_size": (1, None, True),
    "importance.el2n_epoch": (1, None, True),
    "importance.tracin_checkpoints": (1, None, True),
    "importance.tracin_projection_dim": (0, None, True),
    "importance.trak_projection_dim": (1, None, True),
    "importance.trak_damping": (0, None, False),
    "importance.knn_k": (1, None, True),
    "importance.knn_max_validation": (0, None, True),
    "importance.knn_batch_elements": (1, None, True),
    "importance.oob_estimators": (2, None, True),
    "importance.oob_epochs": (1, None, True),
    "importance.oob_lr": (0, None, False),
    "importance.tce_max_drop": (0, 1, True),
    "importance.tce_warmup_epochs": (0, None, True),
    "importance.rce_beta": (0, None, True),
    "evaluate.keep_ratios": (0, 1, False),
    "evaluate.seeds": (0, None, True),
    "evaluate.max_train_samples": (0, None, True),
    "evaluate.max_seconds": (0, None, True),
    "bench.days": (1, None, True),
    "bench.grid.keep_ratios": (0, 1, False),
    "bench.grid.seeds": (0, None, True),
    "bench.grid.max_train_samples": (0, None, True),
    "bench.grid.max_seconds": (0, None, True),  # (the benchmark does not use it: nightly evaluate only)
    "bench.torch_threads": (0, None, True),
    "bench.roc_points": (2, None, True),
    "bench.confidence": (0, 1, False),
    "bench.alpha": (0, 1, False),
    "bench.power": (0, 1, False),
    "bench.folds": (0, None, True),
    "bench.world_seeds": (0, None, True),
    "bench.model_seeds": (0, None, True),
    "store.retention_hours": (1, None, True),  # below an hour a vacuum could delete a running ingest's files
}
#: settings with a fixed set of values
CHOICES: dict[str, tuple[str, ...]] = {
    "source": ("simulator", "landed"),
    "simulate.world": ("synthetic", "esci"),
    "train.device": ("auto", "cpu", "cuda"),
    "train.objective": ("pointwise", "listwise", "pairwise"),
    "train.model": ("mlp", "minilm_cross"),
    "bench.retrain_model": ("", "mlp", "minilm_cross"),
    "importance.aum_mode": ("pointwise", "pairwise"),
    "importance.ensemble_rule": ("geometric_mean", "mean"),
    "importance.trak_kernel": ("trak", "identity"),
    "bench.dataset": ("synthetic", "esci"),
}


def _get(cfg: Any, path: str) -> Any:
    for key in path.split("."):
        cfg = getattr(cfg, key)
    return cfg


def _out_of_range(value: float, low: float | None, high: float | None, low_inclusive: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN
        return True
    if low is not None and (value < low if low_inclusive else value <= low):
        return True
    return high is not None and value > high


def check_config(cfg: SieConfig) -> SieConfig:
    """``cfg`` when every setting is in its range; a ValueError naming the first that is not."""
    for path, (low, high, low_inclusive) in RANGES.items():
        value = _get(cfg, path)
        for item in value if isinstance(value, list) else [value]:
            if _out_of_range(item, low, high, low_inclusive):
                bracket = "[" if low_inclusive else "("
                raise ValueError(f"setting {path}={item!r} is out of range {bracket}{low}, {high}]")
    for path, allowed in CHOICES.items():
        if _get(cfg, path) not in allowed:
            raise ValueError(f"setting {path}={_get(cfg, path)!r} must be one of {allowed}")
    if cfg.validate.min_ctr > cfg.validate.max_ctr:
        raise ValueError("settings validate.min_ctr must not exceed validate.max_ctr")
    if not max(dataclasses.astuple(cfg.train.grades)) > 0:
        raise ValueError("settings train.grades: at least one grade must be positive")
    for name, folds in (("simulate.holdout_folds", cfg.simulate.holdout_folds), ("bench.folds", cfg.bench.folds)):
        if folds == 1:
            raise ValueError(f"setting {name}=1: a k-fold needs k >= 2 (0 = the fixed holdout)")
    if cfg.simulate.holdout_folds and cfg.simulate.holdout_fold >= cfg.simulate.holdout_folds:
        raise ValueError("setting simulate.holdout_fold must be below simulate.holdout_folds")
    return cfg
