"""CPU seconds of one scores-suite part with and without Great Expectations' batch fingerprint.

    .venv/bin/python benchmarks/validate_fingerprint.py \
        --config /tmp/sie_nightly_scale/day-1000000-night/config.json --ds 2026-11-10

GX hashes every value of a pandas batch (md5 of ``hash_pandas_object``) to fingerprint it,
unless the frame's memory is over its ``HASH_THRESHOLD``; ``sie.validate.run.run_checks``
sets that threshold to 0. This runs the first method's scores partition of a nightly_scale
warehouse through ``run_checks`` both ways, alternately, ``--repeats`` times each, and writes
``benchmarks/results/validate_fingerprint.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "validate_fingerprint.json"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="a nightly_scale run's config.json (its warehouse has scores)")
    p.add_argument("--ds", required=True)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()

    import great_expectations as gx
    from great_expectations.execution_engine import pandas_execution_engine as engine

    from sie.config import SieConfig
    from sie.validate import run
    from sie.validate.suites import prepare

    cfg = SieConfig.load(config_file=args.config)
    part, frame = next(run.load_parts(cfg, args.ds, "importance_scores"))
    frame = prepare("importance_scores", frame)
    get_context = gx.get_context

    def fingerprinting_context(*pos, **named):  # run_checks turns the fingerprint off, then asks for this
        engine.HASH_THRESHOLD = 1e9  # GX's own default
        return get_context(*pos, **named)

    runs = []
    for _ in range(args.repeats):
        for fingerprint in (False, True):
            gx.get_context = fingerprinting_context if fingerprint else get_context
            wall, cpu = time.perf_counter(), time.process_time()
            _, result, _ = run.run_checks(cfg, args.ds, "importance_scores", frame)
            runs.append(
                {
                    "fingerprint": fingerprint,
                    "wall_s": round(time.perf_counter() - wall, 2),
                    "cpu_s": round(time.process_time() - cpu, 2),
                    "success": bool(result.success),
                }
            )
            print(runs[-1], flush=True)
    gx.get_context = get_context
    mean = {f: round(sum(r["cpu_s"] for r in runs if r["fingerprint"] == f) / args.repeats, 2) for f in (False, True)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    out = {"part": part, "rows": len(frame), "runs": runs, "mean_cpu_s": {"without": mean[False], "with": mean[True]}}
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS}: {len(frame):,} rows, CPU {mean[True]} s with the fingerprint, {mean[False]} s without")


if __name__ == "__main__":
    main()
