"""Importance-estimator throughput benchmark.

For each size N (default 100k and 1M synthetic samples, the default ranker config) it
measures every method's ``score(ctx)`` wall time and samples/s, and for ``grad_norm``:

* ``ratio_to_train_pass``: grad_norm time / one training forward+backward pass
  (BCE mean, ``loss.backward()`` into parameter gradients, no optimiser step) over the
  same N samples at the same batch size (target ≤ 1.2×); also reported against the
  pass at the training batch size;
* ``speedup_vs_vmap``: ghost-norm samples/s ÷ torch.func vmap(grad) samples/s (the v0
  implementation, batch 512, timed on the first ``--vmap-samples`` samples; target ≥ 50×),
  plus the max relative difference between the two on those samples.

The ranker is trained (cfg.train.epochs, checkpoints kept) on the first
``--train-samples`` samples; for larger N, the per-epoch dynamics of all N samples are
obtained by evaluating each epoch's checkpoint (scoring throughput does not depend on
how the weights were obtained). Validation set: N/10 synthetic held-out samples.

Runs on CUDA when available (``--device``), CPU otherwise. Results: JSON at ``--out``
(default benchmarks/results/importance.json).

    .venv/bin/python benchmarks/importance.py                      # 100k and 1M
    .venv/bin/python benchmarks/importance.py --sizes 20000 --out /tmp/imp.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sie.config import SieConfig  # noqa: E402
from sie.dev.synthetic import make_samples  # noqa: E402
from sie.importance import REGISTRY, ScoringContext, get_estimator  # noqa: E402
from sie.importance.base import batches  # noqa: E402
from sie.importance.grad_norm import ghost_grad_norms, vmap_grad_norms  # noqa: E402
from sie.model.features import SampleTensors  # noqa: E402
from sie.model.ranker import NeuralRanker, resolve_device  # noqa: E402
from sie.model.training import train_ranker  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device):
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - start


def train_pass(model: NeuralRanker, data: SampleTensors, device: torch.device, batch_size: int) -> None:
    """One training forward+backward pass (parameter gradients), no optimiser step."""
    model.train()
    for sl in batches(len(data), batch_size):
        q, i, d = data.inputs(device, sl)
        y = data.click[sl].to(device)
        loss = F.binary_cross_entropy_with_logits(model(q, i, d), y)
        model.zero_grad(set_to_none=True)
        loss.backward()
    model.zero_grad(set_to_none=True)
    model.eval()


@torch.no_grad()
def eval_dynamics(cfg: SieConfig, states: list[dict], data: SampleTensors, device: torch.device, batch_size: int):
    """[epochs, N] logits and losses of every checkpoint (stand-in for recorded dynamics)."""
    logits = np.zeros((len(states), len(data)), dtype=np.float32)
    for e, state in enumerate(states):
        model = NeuralRanker.from_config(cfg.train)
        model.load_state_dict(state)
        model.to(device).eval()
        for sl in batches(len(data), batch_size):
            logits[e, sl] = model(*data.inputs(device, sl)).float().cpu().numpy()
    click = data.click.numpy()[None, :]
    z = torch.from_numpy(logits)
    losses = F.binary_cross_entropy_with_logits(
        z, torch.from_numpy(np.broadcast_to(click, logits.shape).copy()), reduction="none"
    )
    return logits, losses.numpy()


def bench_size(cfg: SieConfig, n: int, trained, methods: list[str], args, device: torch.device) -> dict:
    print(f"== N={n:,} on {device}", flush=True)
    result, n_trained, train_seconds, train_data = trained
    data = train_data if n == n_trained else make_samples(n, cfg.train, seed=1)
    validation = make_samples(max(n // 10, 1000), cfg.train, seed=2)
    if n == n_trained:
        dyn_logit, dyn_loss = result.dynamics_logit, result.dynamics_loss
        dynamics = "recorded during training"
    else:
        (dyn_logit, dyn_loss), secs = timed(
            lambda: eval_dynamics(cfg, result.checkpoints, data, device, cfg.importance.batch_size), device
        )
        dynamics = f"evaluated from the {len(result.checkpoints)} checkpoints ({secs:.1f}s)"
    ctx = ScoringContext(
        cfg=cfg,
        ds="bench",
        model=result.model,
        train=data,
        validation=validation,
        dynamics_loss=dyn_loss,
        dynamics_logit=dyn_logit,
        learning_rates=list(result.learning_rates),
        device=device,
        seed=0,
        checkpoint_states=list(result.checkpoints),
    )
    out: dict = {
        "n_samples": n,
        "n_validation": len(validation),
        "model_trained_on": n_trained,
        "dynamics": dynamics,
        "train_epoch_seconds": train_seconds / cfg.train.epochs * n / n_trained,
        "train_epoch_seconds_note": "measured" if n == n_trained else "extrapolated linearly from the trained size",
        "methods": {},
    }
    for method in methods:
        estimator = get_estimator(method, cfg)
        scores, secs = timed(lambda: estimator.score(ctx), device)
        scores = np.asarray(scores)
        assert scores.shape == (n,) and np.isfinite(scores).all(), method
        out["methods"][method] = {
            "seconds": round(secs, 3),
            "samples_per_second": round(n / secs, 1),
            "relative_to_train_epoch": round(secs / out["train_epoch_seconds"], 4),
        }
        print(f"  {method:18s} {secs:8.2f}s  {n / secs:12,.0f} samples/s", flush=True)

    # grad_norm against one training forward+backward pass: interleaved repeats, best of each
    bs = cfg.importance.batch_size
    model = NeuralRanker.from_config(cfg.train).to(device)
    model.load_state_dict(result.model.state_dict())
    pass_same, pass_train_bs, ghost = [], [], []
    for _ in range(args.repeats):
        pass_same.append(timed(lambda: train_pass(model, data, device, bs), device)[1])
        ghost.append(timed(lambda: ghost_grad_norms(result.model, data, device, bs), device)[1])
        pass_train_bs.append(timed(lambda: train_pass(model, data, device, cfg.train.batch_size), device)[1])
    pass_same, pass_train_bs, ghost_secs = min(pass_same), min(pass_train_bs), min(ghost)
    # torch.func vmap reference (v0: batches of 512) on a prefix, after a warm-up batch
    m = min(args.vmap_samples, n)
    prefix = data.subset(np.arange(m))
    ghost_prefix = ghost_grad_norms(result.model, prefix, device, bs)

    def run_vmap():
        vals = []
        for sl in batches(m, 512):
            q, i, d = prefix.inputs(device, sl)
            vals.append(vmap_grad_norms(result.model, q, i, d, prefix.click[sl].to(device)).double().cpu())
        return torch.cat(vals).numpy()

    warm = prefix.subset(np.arange(min(64, m)))
    vmap_grad_norms(result.model, *warm.inputs(device), warm.click.to(device))
    vmap_runs = [timed(run_vmap, device) for _ in range(max(1, min(args.repeats, 2)))]
    vmap_vals, vmap_secs = vmap_runs[0][0], min(t for _, t in vmap_runs)
    rel = np.abs(ghost_prefix - vmap_vals) / np.maximum(np.abs(vmap_vals), 1e-12)
    out["grad_norm"] = {
        "batch_size": bs,
        "repeats": args.repeats,
        "ghost_seconds": round(ghost_secs, 3),
        "ghost_samples_per_second": round(n / ghost_secs, 1),
        "train_pass_seconds_same_batch": round(pass_same, 3),
        "train_pass_seconds_train_batch": round(pass_train_bs, 3),
        "train_batch_size": cfg.train.batch_size,
        "ratio_to_train_pass": round(ghost_secs / pass_same, 3),
        "ratio_to_train_pass_at_train_batch": round(ghost_secs / pass_train_bs, 3),
        "vmap_samples": m,
        "vmap_seconds": round(vmap_secs, 3),
        "vmap_samples_per_second": round(m / vmap_secs, 1),
        "speedup_vs_vmap": round((n / ghost_secs) / (m / vmap_secs), 1),
        "max_rel_diff_vs_vmap": float(rel.max()),
        "targets": {"ratio_to_train_pass": "<= 1.2", "speedup_vs_vmap": ">= 50"},
    }
    g = out["grad_norm"]
    print(
        f"  grad_norm: {g['ratio_to_train_pass']}x a train fwd+bwd pass (batch {bs}), "
        f"{g['ratio_to_train_pass_at_train_batch']}x at batch {cfg.train.batch_size}; "
        f"{g['speedup_vs_vmap']}x faster than vmap (max rel diff {g['max_rel_diff_vs_vmap']:.1e})",
        flush=True,
    )
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--methods", default="", help="comma-separated (default: every registered method)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--train-samples", type=int, default=100_000)
    parser.add_argument("--vmap-samples", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=0, help="importance batch size (0 = config default)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="interleaved repeats of the grad_norm comparison (best is kept)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "importance.json"))
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides: dict = {"train": {"device": args.device}}
    if args.batch_size:
        overrides["importance"] = {"batch_size": args.batch_size}
    cfg = SieConfig.load(overrides)
    device = resolve_device(cfg.train.device)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] or sorted(REGISTRY)

    n_trained = min(args.train_samples, min(sizes))
    print(
        f"training the default ranker on {n_trained:,} synthetic samples ({cfg.train.epochs} epochs) on {device}",
        flush=True,
    )
    train_data = make_samples(n_trained, cfg.train, seed=1)
    result, secs = timed(lambda: train_ranker(train_data, cfg.train), device)
    print(
        f"  trained in {secs:.1f}s ({n_trained * cfg.train.epochs / secs:,.0f} samples/s incl. dynamics recording)",
        flush=True,
    )
    trained = (result, n_trained, secs, train_data)

    report = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "train_config": {
            k: getattr(cfg.train, k)
            for k in (
                "vocab_size",
                "embedding_dim",
                "hidden_dim",
                "max_query_tokens",
                "max_item_tokens",
                "epochs",
                "batch_size",
            )
        },
        "importance_config": {k: v for k, v in vars(cfg.importance).items() if k != "methods"},
        "train_seconds": round(secs, 2),
        "train_samples": n_trained,
        "sizes": {},
    }
    for n in sizes:
        report["sizes"][str(n)] = bench_size(cfg, n, trained, methods, args, device)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=2))
        tmp.replace(out)  # written after every size, so a long 1M run leaves the 100k result
    print(f"wrote {args.out}", flush=True)
    return report


if __name__ == "__main__":
    main()
