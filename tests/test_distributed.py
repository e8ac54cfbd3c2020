"""Data parallelism under `torchrun` on CPU (2 gloo processes): row-sharded scoring and DDP training
give what one process gives (sie.model.distributed, sie.steps.sharded, sie.model.training)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_score_evaluate import small_warehouse  # noqa: F401  (a fixture: two hand-built days)

from sie.config import SieConfig
from sie.ds import Ds
from sie.model.distributed import shard_rows, split_batch

ROOT = Path(__file__).resolve().parent.parent
DS = Ds("2026-11-20")
SCORED = ["loss", "grad_norm", "tracin"]


def settings(warehouse: str) -> dict:
    return {
        "warehouse": warehouse,
        "train": {"epochs": 2, "window_days": 2, "batch_size": 128, "device": "cpu"},
        "importance": {"batch_size": 100, "tracin_checkpoints": 2},
    }


def torchrun(job: str, tree: dict, tmp_path: Path, *args: str) -> None:
    """``torchrun --nproc_per_node=2 jobs/<job> --ds DS ...`` with ``tree`` as the config file."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tree))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += [str(ROOT / "jobs" / job), "--ds", DS, "--config", str(config), *args]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_shard_rows_cover_every_row_once_on_batch_boundaries():
    for n, world, align in [(0, 2, 1), (1, 2, 1), (10, 3, 1), (1000, 2, 128), (1001, 4, 100), (5, 4, 100)]:
        shards = [shard_rows(n, r, world, align) for r in range(world)]
        assert np.array_equal(np.concatenate([np.arange(n)[s] for s in shards]), np.arange(n))
        assert all(s.start % align == 0 for s in shards if s.start < n)
    assert [shard_rows(1000, r, 2, 128) for r in range(2)] == [slice(0, 512), slice(512, 1000)]


def test_a_training_batch_is_split_between_ranks_on_request_boundaries():
    batch = torch.arange(10)
    group = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    parts = [split_batch(batch, group, r, 2) for r in range(2)]
    assert parts[0].tolist() == [0, 1, 2, 3, 4] and parts[1].tolist() == [5, 6, 7, 8, 9]
    parts = [split_batch(batch, None, r, 3) for r in range(3)]
    assert torch.equal(torch.cat(parts), batch) and [len(p) for p in parts] == [3, 3, 4]


def test_methods_that_need_all_samples_are_refused(cfg):
    from sie.steps.sharded import score_sharded

    for method in ["knn_shapley", "data_oob", "random", "input_grad_share", "forgetting"]:
        with pytest.raises(ValueError, match=f"{method} cannot be scored sharded by rows"):
            score_sharded(cfg, DS, [method])


def test_sharded_scoring_under_torchrun_equals_one_process(small_warehouse, tmp_path):  # noqa: F811
    from sie.steps import daily
    from sie.steps.scoring import read_scores
    from sie.steps.window import load_window

    tree = settings(str(small_warehouse.root))
    cfg = SieConfig.load(tree)
    daily.train(cfg, DS)
    single = {m: daily.score_all(cfg, DS, [m])[m].scores for m in SCORED}
    published = {m: _partition(small_warehouse, m) for m in SCORED}

    torchrun("score_sharded.py", tree, tmp_path, "--methods", ",".join(SCORED))

    window = load_window(cfg, DS)
    for method in SCORED:
        # each shard meets exactly the batches one process forms: the same numbers, not just close ones
        assert np.array_equal(read_scores(cfg, window, method), single[method]), method
        assert _partition(small_warehouse, method).equals(published[method]), method
        files = small_warehouse.data_files("importance_scores", {"ds": [DS], "method": [method]})
        assert sorted(f.path.name for f in files) == ["part-00000.parquet", "part-00001.parquet"]
        assert sum(f.rows for f in files) == len(window.train)
        cost = json.loads(small_warehouse.cost_path(DS, method).read_text())
        assert cost["world_size"] == 2 and cost["n"] == len(window.train)


def test_ddp_training_under_torchrun_matches_one_process(small_warehouse, tmp_path):  # noqa: F811
    from sie.model.training import predict
    from sie.steps import daily
    from sie.steps.models import load_model
    from sie.steps.window import load_window

    tree = settings(str(small_warehouse.root))
    cfg = SieConfig.load(tree)
    daily.train(cfg, DS)
    one = load_model(cfg, DS)
    window = load_window(cfg, DS)

    torchrun("train.py", tree, tmp_path)

    ddp = load_model(cfg, DS)
    assert ddp.meta["n_train"] == one.meta["n_train"] == len(window.train)
    # the same batches from the same initial weights; the gradient of each global batch is summed
    # in two parts and all-reduced, so everything agrees to float32 rounding carried through Adam
    weights = max(
        float(np.abs(ours[name].numpy() - theirs[name].numpy()).max())
        for ours, theirs in zip(ddp.checkpoint_states, one.checkpoint_states, strict=True)
        for name in ours
    )
    predictions = np.abs(predict(ddp.model, window.validation) - predict(one.model, window.validation)).max()
    logits = np.abs(ddp.dynamics_logit - one.dynamics_logit).max()
    losses = np.abs(ddp.dynamics_loss - one.dynamics_loss).max()
    print(
        f"DDP vs one process, max |difference|: weight {weights:.2g}, validation prediction {predictions:.2g}, "
        f"recorded logit {logits:.2g}, recorded loss {losses:.2g}"
    )
    assert max(weights, predictions, logits, losses) < 2e-5
    # every sample's dynamics were recorded by one rank and gathered
    assert np.all(ddp.dynamics_loss > 0)
    # epoch 0's first batch ran on identical weights: its samples' logits agree exactly
    assert (one.dynamics_logit[0] == ddp.dynamics_logit[0]).sum() >= cfg.train.batch_size // 2


def _partition(wh, method: str):
    frame = wh.read_table("importance_scores", {"ds": [DS], "method": [method]}).to_pandas()
    return frame.sort_values(["sample_id", "sample_ds"]).reset_index(drop=True)


@pytest.mark.parametrize("objective", ["listwise", "pairwise"])
def test_with_a_group_objective_shards_hold_whole_requests(small_warehouse, objective):  # noqa: F811
    """In one process, rank by rank: a request-coupled score needs the whole request on one rank."""
    from sie.importance.base import checked_scores, get_estimator
    from sie.model.distributed import World
    from sie.steps import daily
    from sie.steps.models import load_model
    from sie.steps.scoring import scoring_context
    from sie.steps.sharded import shard_indices
    from sie.steps.window import load_window

    tree = settings(str(small_warehouse.root))
    tree["train"] |= {"objective": objective, "epochs": 1}
    cfg = SieConfig.load(tree)
    daily.train(cfg, DS)
    window, loaded = load_window(cfg, DS), load_model(cfg, DS)
    group = window.train.group.numpy()
    for method in ["el2n", "grad_norm"]:
        single = checked_scores(get_estimator(method, cfg), scoring_context(cfg, window, loaded))
        sharded = np.full(len(window.train), np.nan)
        shards = [shard_indices(cfg, method, window.train, World(rank, 2)) for rank in range(2)]
        for rows in shards:
            sharded[rows] = checked_scores(get_estimator(method, cfg), scoring_context(cfg, window, loaded, rows))
        assert not set(group[shards[0]]) & set(group[shards[1]])
        assert abs(len(shards[0]) - len(shards[1])) < 0.2 * len(window.train)
        # other batches than one process's: equal up to float32 rounding of the batched arithmetic
        np.testing.assert_allclose(sharded, single, rtol=1e-5, atol=1e-7, err_msg=method)
