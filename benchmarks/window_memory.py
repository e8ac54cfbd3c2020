"""Memory per window sample of the train and score steps, stage by stage (issue: memory bounded by batch size).

    nice -n 2 .venv/bin/python benchmarks/window_memory.py --samples 1000000 --label after
    nice -n 2 .venv/bin/python benchmarks/window_memory.py --samples 1000000 --methods loss knn_shapley

A synthetic samples-like window (``--days`` days, ``--samples`` in all; ten impressions per
request, a few thousand distinct query texts and tens of thousands of titles, as a real day
repeats them) is written once to a warehouse under ``--work``. Then each measurement runs in
a fresh process, as an Airflow task does: the train step's stages (read and encode the window:
keys whole, the rest in batches of ``--read-batch-rows``; train; save), and ``sie.steps.daily.score`` per method. A sampler thread reads the
process's RSS every 5 ms; per stage it records the RSS at its end and the peak within it,
each also as bytes per window sample above the RSS after imports. Results:
``benchmarks/results/window_memory.json`` (one entry per ``--label``, replaced on rerun).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "window_memory.json"
WORDS = [f"w{k}" for k in range(400)]


class StageRss:
    """RSS at the end of, and peak within, each named stage of this process (sampled every 5 ms)."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self.stages: list[dict] = []
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def mark(self, name: str, n: int) -> None:
        rss = self.proc.memory_info().rss
        peak = max(self.peak, rss)
        self.stages.append(
            {
                "stage": name,
                "rss_bytes": rss,
                "peak_bytes": peak,
                "rss_per_sample": (rss - self.base) / n,
                "peak_per_sample": (peak - self.base) / n,
            }
        )
        print(
            f"  {name:24s} rss {rss / 2**30:6.2f} GiB ({(rss - self.base) / n:7.1f} B/sample), "
            f"peak {peak / 2**30:6.2f} GiB ({(peak - self.base) / n:7.1f} B/sample)",
            flush=True,
        )
        self.peak = rss


def days_ending(ds: str, n: int) -> list[str]:
    end = date.fromisoformat(ds)
    return [str(end - timedelta(days=k)) for k in range(n - 1, -1, -1)]


def synthetic_day(ds: str, n: int, seed: int):
    """A samples table of ``n`` impressions (10 per request) with realistic id and text cardinalities."""
    import pyarrow as pa

    from sie.schemas import DENSE_FEATURES, SAMPLES

    rng = np.random.default_rng(seed)
    text_rng = np.random.default_rng(0)  # the same queries and titles every day
    queries = np.array([" ".join(text_rng.choice(WORDS, size=text_rng.integers(1, 4))) for _ in range(5000)], object)
    titles = np.array([" ".join(text_rng.choice(WORDS, size=text_rng.integers(3, 9))) for _ in range(40000)], object)
    n_req = (n + 9) // 10
    req = np.repeat(np.arange(n_req), 10)[:n]
    query_of_req = np.minimum(rng.zipf(1.3, n_req) - 1, len(queries) - 1)
    client_of_req = rng.integers(0, max(n_req // 8, 1), n_req)
    query_ids = np.array([f"{ds}-{k:010x}" for k in range(n_req)], object)
    items = rng.integers(0, len(titles), n)
    item_ids = np.array([f"item-{k:06d}" for k in range(len(titles))], object)
    qid = query_ids[req]
    sid = [hashlib.sha256(f"{q}|{i}".encode()).hexdigest()[:16] for q, i in zip(qid, item_ids[items])]
    click = (rng.random(n) < 0.1).astype(np.int32)
    ts = np.datetime64(f"{ds}T00:00:00", "us") + (req * (86_400_000_000 // n_req)).astype("timedelta64[us]")
    cols = {
        "sample_id": pa.array(sid, pa.string()),
        "query_id": pa.array(qid, pa.string()),
        "client_id": pa.array([f"client-{c:07d}" for c in client_of_req[req]], pa.string()),
        "session_id": pa.array([f"session-{c % 7}" for c in req], pa.string()),
        "request_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "query_text": pa.array(queries[query_of_req[req]], pa.string()),
        "item_id": pa.array(item_ids[items], pa.string()),
        "item_title": pa.array(titles[items], pa.string()),
        "position": pa.array(np.tile(np.arange(1, 11, dtype=np.int32), n_req)[:n]),
        "click": pa.array(click),
        "label": pa.array(click),
        **{f: pa.array(rng.random(n)) for f in DENSE_FEATURES},
    }
    return pa.table({f.name: cols.get(f.name, pa.nulls(n, f.type)) for f in SAMPLES.schema})


def config(work: Path, args):
    from sie.config import SieConfig

    return SieConfig.load(
        {
            "warehouse": str(work / "wh"),
            "train": {
                "window_days": args.days,
                "epochs": args.epochs,
                "device": "cpu",
                "read_batch_rows": args.read_batch_rows,
            },
        }
    )


def build(args) -> None:
    from sie.store import Warehouse

    cfg = config(Path(args.work), args)
    wh = Warehouse.from_config(cfg)
    have = {p["ds"] for p in wh.partitions("samples")} if wh.table_dir("samples").exists() else set()
    for k, ds in enumerate(days_ending(args.ds, args.days)):
        if ds not in have:
            wh.write_day(ds, {"samples": synthetic_day(ds, args.samples // args.days, k)}, run_id=f"synthetic-{ds}")


def tensor_bytes(data) -> dict[str, int]:
    """Bytes held by each field of a SampleTensors (Python objects of an object array counted too)."""
    import torch

    out = {}
    for f in dataclasses.fields(data):
        value = getattr(data, f.name)
        if isinstance(value, torch.Tensor):
            out[f.name] = value.nbytes
        elif isinstance(value, np.ndarray) and value.dtype == object:
            out[f.name] = value.nbytes + sum(sys.getsizeof(v) for v in value[:1000]) * len(value) // max(
                len(value[:1000]), 1
            )
        elif hasattr(value, "nbytes"):
            out[f.name] = int(value.nbytes)
        elif dataclasses.is_dataclass(value):
            out[f.name] = sum(tensor_bytes(value).values())
    return out


def preimport() -> None:
    """Import what the steps import lazily, so that the base RSS holds the libraries."""
    import pyarrow.dataset  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import sie.importance  # noqa: F401
    import sie.steps.models  # noqa: F401
    import sie.steps.scoring  # noqa: F401


def measure_train(args) -> dict:
    from sie.ds import Ds
    from sie.model.training import train_ranker
    from sie.steps.models import save_model
    from sie.steps.window import load_window, window_source

    cfg = config(Path(args.work), args)
    preimport()
    rss = StageRss()
    source = window_source(cfg, Ds(args.ds))  # as the train step: its score steps read the saved window
    window = load_window(cfg, Ds(args.ds))  # keys read whole, the rest read and encoded in batches
    n = len(window.train) + len(window.validation)
    rss.mark("read + encode", n)
    result = train_ranker(window.train, cfg.train)
    rss.mark(f"train {args.epochs} epochs", n)
    save_model(cfg, window, result, source)
    rss.mark("save model", n)
    fields = {"train": tensor_bytes(window.train), "validation": tensor_bytes(window.validation)}
    frames = {
        name: int(part.memory_usage(deep=True).sum())
        for name in ("frame", "train_frame", "validation_frame")
        if (part := getattr(window, name, None)) is not None
    }
    return {"n_window": n, "stages": rss.stages, "tensor_bytes": fields, "frame_bytes": frames}


def measure_score(args, method: str) -> dict:
    from sie.steps import daily

    cfg = config(Path(args.work), args)
    preimport()
    rss = StageRss()
    start = time.perf_counter()
    if args.fresh_window:  # the window read from the samples and encoded, as before it was saved
        from sie.ds import Ds
        from sie.steps.scoring import publish_scores, score_method
        from sie.steps.window import load_window

        scored = score_method(cfg, Ds(args.ds), method, window=load_window(cfg, Ds(args.ds)))
        publish_scores(cfg, scored)
        cost = scored.cost
    else:
        cost = daily.score(cfg, args.ds, method)
    rss.mark(f"score {method}", cost["n"])
    # seconds: the method's own; step_seconds: the whole step (reading the window and model too)
    step_seconds = time.perf_counter() - start
    return {"n_train": cost["n"], "seconds": cost["seconds"], "step_seconds": step_seconds, "stages": rss.stages}


def in_child(args, what: str) -> dict:
    """Run one measurement in a fresh process (as an Airflow task runs a step)."""
    cmd = [sys.executable, __file__, "--child", what, *sys.argv[1:]]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    print(out.split("@@RESULT@@")[0], end="")
    return json.loads(out.split("@@RESULT@@")[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=1_000_000, help="window samples in all")
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--ds", default="2026-11-20")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--read-batch-rows", type=int, default=250_000, help="train.read_batch_rows")
    p.add_argument("--methods", nargs="*", default=["loss"])
    p.add_argument("--work", default="/tmp/sie-window-memory")
    p.add_argument("--label", default="latest")
    p.add_argument("--no-train", action="store_true", help="score only, with the model of an earlier run")
    p.add_argument("--fresh-window", action="store_true", help="score steps read the window afresh, not the saved one")
    p.add_argument("--child", default="")
    args = p.parse_args()
    work = Path(args.work) / f"n{args.samples}-d{args.days}"
    args.work = str(work)
    if args.child:
        out = measure_train(args) if args.child == "train" else measure_score(args, args.child)
        print("@@RESULT@@" + json.dumps(out))
        return
    print(f"building the synthetic window under {work} (once)", flush=True)
    build(args)
    t0 = time.time()
    entry = {"argv": sys.argv[1:], "samples": args.samples, "days": args.days, "epochs": args.epochs}
    earlier = (json.loads(RESULTS.read_text()) if RESULTS.exists() else {}).get(args.label, {})
    if args.no_train:  # score steps only, over the model an earlier run trained (its other entries kept)
        entry["train"], entry["score"] = earlier.get("train"), dict(earlier.get("score", {}))
    else:
        print("train step:", flush=True)
        entry["train"], entry["score"] = in_child(args, "train"), {}
    for method in args.methods:
        print(f"score step ({method}):", flush=True)
        entry["score"][method] = in_child(args, method)
    entry["seconds"] = time.time() - t0
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.label] = entry
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS} [{args.label}]")


if __name__ == "__main__":
    main()
