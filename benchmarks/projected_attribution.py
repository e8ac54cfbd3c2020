"""Projected-gradient attribution (`trak`) against exact TracIn on a small transformer ranker.

A cross-encoder ranker (sie.model.cross_encoder.CrossEncoderRanker over a randomly
initialised BERT: ``--layers`` layers, hidden ``--hidden``, feed-forward 4×hidden,
vocabulary ``--vocab``) is trained briefly (Adam, BCE on clicks, per-epoch checkpoints)
on synthetic samples whose hashed query and title tokens form the pair. Then, over the
same checkpoints, it times

* exact TracIn (``tracin_scores(projection_dim=0)``: ghost dot products, LayerNorm included),
* ``trak`` with the identity kernel (projected TracIn) at each ``--dims`` k,
* ``trak`` with the TRAK kernel at ``--trak-dims``,

and records each one's Spearman correlation with exact TracIn, its stored projection
width per sample, wall and CPU seconds. The identity kernel estimates exact TracIn
(Johnson–Lindenstrauss), so its correlation is the accuracy check; the TRAK kernel is a
different estimator (an inverse-Gram weighting), so its correlation is reported, not checked.

    nice -n 10 .venv/bin/python benchmarks/projected_attribution.py          # ~minutes on 2 cores
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sie.config import SieConfig  # noqa: E402
from sie.dev.synthetic import make_samples  # noqa: E402
from sie.importance.base import ScoringContext  # noqa: E402
from sie.importance.ghost import GhostCapture  # noqa: E402
from sie.importance.tracin import tracin_scores  # noqa: E402
from sie.importance.trak import layer_projections, trak_scores  # noqa: E402
from sie.model.cross_encoder import CrossEncoderRanker  # noqa: E402
from sie.model.features import SampleTensors  # noqa: E402


def small_cross_encoder(args, seed: int) -> CrossEncoderRanker:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=max(1, args.hidden // 32),
        intermediate_size=4 * args.hidden,
        max_position_embeddings=64,
        type_vocab_size=2,
        attn_implementation="eager",
    )
    return CrossEncoderRanker(BertModel(config, add_pooling_layer=False), n_dense=4).eval()


def as_pairs(data: SampleTensors) -> SampleTensors:
    """Hashed (query, title) tokens as one right-padded pair: (ids, segment ids)."""
    ids = torch.cat([data.query_tokens, data.item_tokens], 1)
    segments = torch.cat([torch.zeros_like(data.query_tokens), torch.ones_like(data.item_tokens)], 1)
    order = torch.sort((ids == 0).to(torch.int8), dim=1, stable=True).indices
    ids, segments = ids.gather(1, order), segments.gather(1, order)
    return dataclasses.replace(data, query_tokens=ids, item_tokens=segments * (ids != 0))


@dataclasses.dataclass
class SmallTransformerContext(ScoringContext):
    """Checkpoints of the small cross-encoder (not the configured MiniLM)."""

    build: object = None

    def load_epoch(self, epoch: int):
        model = self.build()
        model.load_state_dict(self.checkpoint_states[epoch])
        return model.to(self.device)


def trained_context(args) -> tuple[SmallTransformerContext, float]:
    cfg = SieConfig.load(
        {
            "train": {"vocab_size": args.vocab, "max_query_tokens": 4, "max_item_tokens": 8, "device": "cpu"},
            "importance": {"batch_size": args.batch_size, "tracin_checkpoints": args.epochs},
        }
    )
    train = as_pairs(make_samples(args.n, cfg.train, seed=0, flip_rate=0.1))
    validation = as_pairs(make_samples(args.n_validation, cfg.train, seed=1000))
    model = small_cross_encoder(args, 0)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(0)
    states = []
    start = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        for idx in torch.randperm(args.n, generator=gen).split(32):
            loss = F.binary_cross_entropy_with_logits(model(*train.inputs("cpu", idx)), train.click[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    train_s = time.perf_counter() - start
    zeros = np.zeros((args.epochs, args.n), dtype=np.float32)
    ctx = SmallTransformerContext(
        cfg=cfg,
        ds="bench",
        model=model.eval(),
        train=train,
        validation=validation,
        dynamics_loss=zeros,
        dynamics_logit=zeros,
        checkpoint_states=states,
        learning_rates=[args.lr] * args.epochs,
        build=lambda: small_cross_encoder(args, 0),
    )
    return ctx, train_s


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2)


def projection_width(ctx, dim: int) -> dict:
    capture = GhostCapture(ctx.load_epoch(0))
    projections = layer_projections(capture, dim, ctx.seed, "cpu", torch.float32)
    widths = [projections[layer.name].width(layer) for layer in capture.layers]
    projected = [
        layer.name for layer, w in zip(capture.layers, widths) if w < sum(p.numel() for p in layer.module.parameters())
    ]
    return {"width": int(sum(widths)), "layers": len(widths), "projected_layers": len(projected)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=240, help="training samples scored")
    parser.add_argument("--n-validation", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=3, help="epochs = checkpoints scored")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=512)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dims", type=int, nargs="+", default=[512, 4096])
    parser.add_argument("--trak-dims", type=int, nargs="*", default=[512])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "projected_attribution.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ctx, train_s = trained_context(args)
    n_params = sum(p.numel() for p in ctx.model.parameters())
    print(f"trained {n_params} params on {args.n} samples in {train_s:.1f}s", flush=True)
    (_, exact), wall, cpu = timed(lambda: tracin_scores(ctx, validation=True, projection_dim=0))
    runs = [{"method": "tracin (exact)", "k": None, "wall_s": wall, "cpu_s": cpu, "spearman_vs_exact": 1.0}]
    print(runs[-1], flush=True)
    for kernel, dims in (("identity", args.dims), ("trak", args.trak_dims)):
        for k in dims:
            scores, wall, cpu = timed(lambda k=k, kernel=kernel: trak_scores(ctx, projection_dim=k, kernel=kernel))
            rho = float(spearmanr(scores, exact)[0])
            runs.append(
                {
                    "method": f"trak ({kernel} kernel)",
                    "k": k,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "spearman_vs_exact": round(rho, 4),
                }
                | projection_width(ctx, k)
            )
            print(runs[-1], flush=True)
    result = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["nice -n 10 .venv/bin/python benchmarks/projected_attribution.py", *sys.argv[1:]]),
        "machine": {"platform": platform.platform(), "cpus": torch.get_num_threads(), "torch": torch.__version__},
        "model": {
            "class": "CrossEncoderRanker (random-init BERT)",
            "layers": args.layers,
            "hidden": args.hidden,
            "vocab": args.vocab,
            "parameters": n_params,
        },
        "samples": {"train": args.n, "validation": args.n_validation, "checkpoints": args.epochs},
        "train_s": round(train_s, 2),
        "note": "wall and CPU seconds on a shared 2-core machine; CPU seconds are the steadier figure",
        "runs": runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
