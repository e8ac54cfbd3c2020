"""A sampling profile of a running Spark driver JVM (local mode: the executor threads are in it).

    python benchmarks/jvm_stack_profile.py --pid <java pid> --samples 25 --every 2 [--out file.json]

Takes ``--samples`` thread dumps with ``jstack``, ``--every`` seconds apart, and counts, over
the executor task threads, the top frame of each stack and the Spark-generated / catalyst
frames within its first 12 (what the tasks were doing). Used for docs/PERFORMANCE.md's ingest
profile: Spark's event log says which phase is slow, this says what its tasks compute.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import time


def sample(pid: int) -> list[list[str]]:
    """The executor task threads' stacks ("at ..." lines) of one thread dump."""
    dump = subprocess.run(["jstack", str(pid)], capture_output=True, text=True, check=True).stdout
    stacks = []
    for block in dump.split("\n\n"):
        if "Executor task launch worker" in block:
            frames = [line.strip()[3:] for line in block.splitlines() if line.strip().startswith("at ")]
            if frames:
                stacks.append(frames)
    return stacks


def profile(pid: int, samples: int, every: float) -> dict:
    top, within = collections.Counter(), collections.Counter()
    busy = 0
    for n in range(samples):
        for frames in sample(pid):
            busy += 1
            top[frames[0]] += 1
            for f in {re.sub(r"\(.*\)", "", f) for f in frames[:12]}:
                if "GeneratedClass" in f or "catalyst" in f or "lz4" in f or "xxhash" in f:
                    within[f] += 1
        if n + 1 < samples:
            time.sleep(every)
    return {
        "pid": pid,
        "samples": samples,
        "every_seconds": every,
        "task_thread_samples": busy,
        "top_frames": top.most_common(20),
        "generated_and_catalyst_frames": within.most_common(20),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--samples", type=int, default=25)
    p.add_argument("--every", type=float, default=2.0)
    p.add_argument("--out")
    args = p.parse_args()
    result = profile(args.pid, args.samples, args.every)
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
