"""Real logs without an oracle or a judged holdout: the nightly run on landed real UBI logs completes,
and the oracle-free report says what the scores show and what cannot be measured.

The real UBI sample files (../shared/data/ubi) are split by query id into two landed days
under a temporary warehouse (never copied into the repository), then `sie --set source=landed run`
processes both nights as a user would.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sie.config import SieConfig
from sie.store import Warehouse

pytestmark = [pytest.mark.slow, pytest.mark.integration]  # Spark + GX in a `sie run` process, two nights

SIE = str(Path(sys.executable).parent / "sie")
DAYS = ("2024-12-12", "2024-12-13")
METHODS = ("loss", "el2n", "grad_norm")
SETTINGS = {
    "source": "landed",
    "ingest": {"lateness_hours": 24 * 800},  # the sample files span months: accept all their dates
    "train": {"epochs": 2, "batch_size": 128, "window_days": 2},
    "importance": {"methods": list(METHODS)},
    "evaluate": {"keep_ratios": [0.5], "seeds": [0], "baselines": ["random", "full"]},
}


def _night(query_id: str | None) -> int:
    """Which of the two nights a query id (and its events) lands in."""
    return int(hashlib.sha256((query_id or "").encode()).hexdigest(), 16) % 2


def land_two_nights(ubi: Path, root: Path) -> None:
    """Each raw line, byte for byte, under the night of its query id."""
    for source in ("ubi_queries", "ubi_events"):
        nights: list[list[str]] = [[], []]
        for line in (ubi / f"{source}.json").read_text().splitlines(keepends=True):
            query_id = json.loads(line).get("query_id") if line.strip() else None
            nights[_night(query_id)].append(line)
        for ds, lines in zip(DAYS, nights):
            folder = root / "raw" / source / f"ds={ds}"
            folder.mkdir(parents=True)
            (folder / f"{source}.json").write_text("".join(lines))


def sie(root: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    # two nights take ~2-3 min on a quiet 2-core machine; the bound leaves room for a loaded one
    return subprocess.run(
        [SIE, "-w", str(root), "--config", str(config), *args], capture_output=True, text=True, timeout=2400
    )


@pytest.fixture(scope="module")
def nights(tmp_path_factory, shared_data):
    """Two landed nights of real UBI logs run by `sie run`; (warehouse root, config file, the run)."""
    tmp = tmp_path_factory.mktemp("real-logs")
    root, config = tmp / "warehouse", tmp / "config.json"
    land_two_nights(shared_data / "ubi", root)
    config.write_text(json.dumps(SETTINGS))
    run = sie(root, config, "run", "--ds", DAYS[0], "--days", "2")
    return root, config, run


def test_landed_real_logs_run_completes_without_holdout(nights):
    root, config, run = nights
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    wh = Warehouse(root)
    assert not wh.holdout_path.exists() and not list(root.glob("oracle/*"))
    results = wh.read_table("benchmark_results").to_pandas()
    assert set(results["run_id"]) == {f"daily-{d}" for d in DAYS} and set(results["dataset"]) == {"landed"}
    # every cell retrained and evaluated on held-out clicks; nothing claims an NDCG
    assert set(results["metric"]) <= {"click_auc", "click_logloss"} and "click_logloss" in set(results["metric"])
    assert set(results["method"]) == {*METHODS, "random", "full"}
    for ds in DAYS:
        report = (wh.reports_dir / f"daily-{ds}.md").read_text()
        assert "no judged holdout" in report and "NDCG@10 and MRR are not measured" in report
    second = (wh.reports_dir / f"daily-{DAYS[1]}.md").read_text()
    assert "## stability across nights" in second and f"daily-{DAYS[1]}-stability.png" in second
    # the stability view compares the second model with the first, per query and per item
    cfg = SieConfig.load({"warehouse": str(root)})
    from sie.sql import query

    stability = query(cfg, "SELECT * FROM importance_stability")
    assert set(stability["method"]) == set(METHODS) and set(stability["ds"]) == {DAYS[1]}
    assert (stability["n_common"] > 10).all() and stability["spearman"].between(-1, 1).all()


def test_oracle_free_report_on_real_logs(nights):
    root, config, run = nights
    assert run.returncode == 0, run.stderr[-3000:]
    out = sie(root, config, "report", "--no-oracle")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    folder = Warehouse(root).reports_dir / f"no-oracle-{DAYS[1]}"
    text = (folder / "report.md").read_text()
    for heading in ("What cannot be measured here", "Score distributions", "Agreement between methods"):
        assert f"## {heading}" in text
    assert "**Noise detection**" in text and "**NDCG@10 / MRR on judged relevance**" in text
    for image in ("score_dist.png", "agreement.png", "stability.png"):
        assert (folder / image).stat().st_size > 0 and f"]({image})" in text
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["oracle_used"] is False and summary["judged_holdout"] is False
    assert summary["models"] == list(DAYS)
    # agreement: a method agrees with itself; the matrix is symmetric
    agreement = pd.DataFrame(summary["agreement"])
    assert sorted(agreement.columns) == sorted(METHODS)
    for a in METHODS:
        assert agreement.loc[a, a] == pytest.approx(1.0)
        for b in METHODS:
            assert agreement.loc[a, b] == pytest.approx(agreement.loc[b, a])
    # per-sample stability between the two nights: the second window contains the first night's samples
    stable = pd.DataFrame(summary["sample_stability"])
    assert set(stable["method"]) == set(METHODS) and (stable["previous_ds"] == DAYS[0]).all()
    data = summary["data"]
    assert data["days"] == 2 and data["samples"] == summary["distribution"][0]["n_samples"]
