"""Statistics of a simulated day: what the world looks like and whether the knobs hold."""

from __future__ import annotations

from typing import Any

import numpy as np

from sie.config import SimulateConfig
from sie.simulate.behaviour import NOISE_CODE, NOISE_TYPES, DayLog
from sie.simulate.world import World


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


def world_stats(world: World, log: DayLog, cfg: SimulateConfig | None = None) -> dict[str, Any]:
    hum = ~log.req_bot
    R, K = log.R, log.K
    n_clicks = int(log.click.sum())
    hum_clicks = int(log.click[hum].sum())
    acc = int((log.noise == NOISE_CODE["accidental_click"]).sum())
    flipped_reqs = int((log.noise == NOISE_CODE["label_flip"]).any(axis=1)[hum].sum())
    ctr = log.click.mean(axis=0)
    ctr_h = log.click[hum].mean(axis=0) if hum.any() else np.zeros(K)
    tiers = world.intent_tier()
    rank_of = np.full(len(world.intent_text), -1)
    rank_of[world.traffic_intents] = np.arange(len(world.traffic_intents))
    req_tier = tiers[rank_of[log.req_intent[hum]]]
    stats: dict[str, Any] = {
        "world": world.name,
        "ds": log.ds,
        "counts": {
            "items": int(world.n_items),
            "users_in_world": int(world.n_users),
            "users_active": int(len(np.unique(log.req_user[hum]))),
            "queries_in_traffic": int(len(world.traffic_intents)),
            "queries_held_out": int(world.holdout_mask.sum()),
            "distinct_queries_today": int(len(np.unique(log.req_intent))),
            "holdout_judgments": int(world.holdout.num_rows),
            "sessions": int(len(log.session_ids)),
            "requests": int(R),
            "impressions": int(R * K),
            "clicks": n_clicks,
            "add_to_cart": int(log.cart.sum()),
            "purchases": int(log.purchase.sum()),
            "event_lines": int(len(log.ev_ts)),
        },
        "ctr_by_position": [_r(x) for x in ctr],
        "ctr_by_position_humans": [_r(x) for x in ctr_h],
        "mean_true_grade_by_position": [_r(x, 3) for x in log.imp_grade.mean(axis=0)],
        "ctr": _r(n_clicks / (R * K)),
        "purchases_per_request_humans": _r(log.purchase[hum].sum() / max(1, hum.sum())),
        "traffic_share_by_tier": {t: _r(np.mean(req_tier == t)) for t in ("head", "torso", "tail")},
        "true_grade_share_of_impressions": {str(g): _r(np.mean(log.imp_grade == g)) for g in range(4)},
        "noise_share_of_samples": {n: _r(np.mean(log.noise == NOISE_CODE[n])) for n in NOISE_TYPES},
        "noise_realised": {
            "bot_share_of_requests": _r(log.req_bot.mean()),
            "accidental_share_of_human_clicks": _r(acc / max(1, hum_clicks)),
            "clickbait_share_of_items": _r(world.clickbait.mean()),
            "clickbait_share_of_human_clicks": _r((log.noise == NOISE_CODE["clickbait"]).sum() / max(1, hum_clicks)),
            "duplicate_share_of_event_lines": _r(log.ev_copy.mean() if len(log.ev_copy) else 0.0),
            "label_flip_share_of_human_requests": _r(flipped_reqs / max(1, hum.sum())),
        },
    }
    if cfg is not None:
        stats["noise_configured"] = {
            "bot_rate": cfg.bot_rate,
            "accidental_click_rate": cfg.accidental_click_rate,
            "clickbait_item_rate": cfg.clickbait_item_rate,
            "duplicate_event_rate": cfg.duplicate_event_rate,
            "label_flip_rate": cfg.label_flip_rate,
        }
    return stats


def markdown_table(stats: dict[str, Any]) -> str:
    """A compact Markdown rendering (CTR by position, noise shares, counts)."""
    K = len(stats["ctr_by_position"])
    lines = [
        f"**{stats['world']}** world, ds {stats['ds']}",
        "",
        "| position | " + " | ".join(str(k + 1) for k in range(K)) + " |",
        "|---|" + "---|" * K,
        "| CTR (all) | " + " | ".join(f"{x:.3f}" for x in stats["ctr_by_position"]) + " |",
        "| CTR (humans) | " + " | ".join(f"{x:.3f}" for x in stats["ctr_by_position_humans"]) + " |",
        "| mean true grade | " + " | ".join(f"{x:.2f}" for x in stats["mean_true_grade_by_position"]) + " |",
        "",
        "| noise type | share of samples |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.4f} |" for k, v in stats["noise_share_of_samples"].items()]
    lines += ["", "| realised noise rate | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in stats["noise_realised"].items()]
    lines += ["", "| count | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in stats["counts"].items()]
    return "\n".join(lines) + "\n"
