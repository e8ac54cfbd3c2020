"""The fast part of the fault harness (`benchmarks/faults.py --fast`): bad bytes, concurrent
writers and readers, `sie sql` writes. The full run (kills at every commit point and at random
times) writes benchmarks/results/faults.json."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.integration
def test_fault_harness_fast(tmp_path):
    out = tmp_path / "faults.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "faults.py"),
            "--fast",
            "--workdir",
            str(tmp_path),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    s = result["summary"]
    unhandled = {k: v["problems"] for k, v in result["bad_inputs"]["kinds"].items() if not v["handled"]}
    assert s["kinds_tried"] >= 25 and unhandled == {}
    assert s["lines_lost"] == 0 and result["bad_inputs"]["quarantine_queryable"]
    assert s["stress_failures"] == 0 and result["writers"]["final_state_correct"]
    assert s["reads"] >= 200 and s["bad_reads"] == 0
    assert s["sql_writes_refused"] == s["sql_writes_tried"] and not result["sql_writes"]["warehouse_changed"]
