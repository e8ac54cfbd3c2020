"""The simulated world's behaviour: noise rates, position bias, the ESCI mode."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from sie.config import SieConfig
from sie.simulate import get_world, simulate_day, simulate_traffic
from sie.simulate.behaviour import NOISE_CODE
from sie.simulate.stats import world_stats
from sie.simulate.world import ESCI_GRADES
from sie.store import Warehouse

DS = "2024-02-01"


def _sim(cfg, **changes):
    return dataclasses.replace(cfg.simulate, **changes)


def test_noise_rates_within_tolerance(cfg):
    sim = _sim(
        cfg,
        requests_per_day=6000,
        bot_rate=0.1,
        accidental_click_rate=0.08,
        clickbait_item_rate=0.05,
        duplicate_event_rate=0.03,
        label_flip_rate=0.04,
    )
    world = get_world(sim)
    log = simulate_traffic(world, sim, DS)
    real = world_stats(world, log, sim)["noise_realised"]
    assert real["bot_share_of_requests"] == pytest.approx(0.1, abs=0.002)
    assert real["accidental_share_of_human_clicks"] == pytest.approx(0.08, abs=0.005)
    assert real["clickbait_share_of_items"] == pytest.approx(0.05, abs=0.002)
    assert real["duplicate_share_of_event_lines"] == pytest.approx(0.03, abs=0.004)
    assert real["label_flip_share_of_human_requests"] == pytest.approx(0.04, abs=0.004)

    noise = log.noise
    bot_rows = log.req_bot
    assert (noise[bot_rows] == NOISE_CODE["bot"]).all() and not log.purchase[bot_rows].any()
    acc = noise == NOISE_CODE["accidental_click"]
    assert acc.any() and log.click[acc].all() and (log.dwell[acc] < 2.0).all() and not log.cart[acc].any()
    cb = noise == NOISE_CODE["clickbait"]
    assert cb.any() and world.clickbait[log.imp_item[cb]].all() and log.click[cb].all()
    # clickbait clicks satisfy less: fewer purchases per click than clean clicks
    clean_click = (noise == NOISE_CODE["none"]) & log.click
    assert log.purchase[cb].mean() < 0.5 * log.purchase[clean_click].mean()
    flip = noise == NOISE_CODE["label_flip"]
    assert flip.any() and (log.purchase[flip] | log.click[flip]).all()


def test_zero_rates_mean_clean_logs(cfg):
    sim = _sim(
        cfg, bot_rate=0, accidental_click_rate=0, clickbait_item_rate=0, duplicate_event_rate=0, label_flip_rate=0
    )
    log = simulate_traffic(get_world(sim), sim, DS)
    assert (log.noise == NOISE_CODE["none"]).all() and not log.ev_copy.any()


def test_position_bias_visible(cfg):
    sim = _sim(cfg, requests_per_day=6000)
    log = simulate_traffic(get_world(sim), sim, DS)
    hum = ~log.req_bot
    ctr = log.click[hum].mean(axis=0)
    assert ctr[0] > ctr[1] > ctr[2] > ctr[4] > ctr[9]
    # not just a better ranking at the top: among exact matches, CTR still falls with rank
    exact = (log.imp_grade == 3) & hum[:, None]
    by_pos = [log.click[:, k][exact[:, k]].mean() for k in (0, 4, 9)]
    assert by_pos[0] > by_pos[1] > by_pos[2]
    # and relevance matters at a fixed position
    g = log.imp_grade[:, 0][hum]
    c = log.click[:, 0][hum]
    assert c[g == 3].mean() > 2 * c[g == 0].mean()


def test_more_requests_scale_linearly_and_users_persist(cfg):
    sim = _sim(cfg, requests_per_day=500)
    world = get_world(sim)
    a = simulate_traffic(world, sim, DS)
    b = simulate_traffic(world, sim, "2024-02-02")
    assert a.R == b.R == 500
    assert len(set(a.req_user[a.req_user >= 0]) & set(b.req_user[b.req_user >= 0])) > 0
    assert not set(a.query_ids) & set(b.query_ids)


# ---- ESCI -----------------------------------------------------------------------
@pytest.fixture
def esci_cfg(cfg, shared_data):
    return SieConfig.load(
        {
            "warehouse": cfg.warehouse,
            "simulate": {"world": "esci", "esci_dir": str(shared_data / "esci"), "requests_per_day": 800},
        }
    )


def test_esci_holdout_is_the_real_judgments(esci_cfg, shared_data):
    summary = simulate_day(esci_cfg, DS)
    wh = Warehouse.from_config(esci_cfg)
    raw = json.loads((shared_data / "esci" / "esci_us_judgments.json").read_text())
    real = {
        (e["query"], r["docId"]): ESCI_GRADES[int(round(float(r["rating"])))]
        for e in raw["judgmentRatings"]
        for r in e["ratings"]
    }
    holdout = pq.read_table(wh.holdout_path).to_pylist()
    held = {h["query_text"] for h in holdout}
    assert len(held) == round(0.3 * len(raw["judgmentRatings"]))
    assert {(h["query_text"], h["item_id"]): h["grade"] for h in holdout} == {
        k: g for k, g in real.items() if k[0] in held
    }
    # the held-out queries never appear in the logs
    import gzip

    with gzip.open(summary["paths"]["queries"], "rt") as fh:
        logged = [json.loads(line) for line in fh]
    texts = {q["user_query"] for q in logged}
    assert texts and not texts & held
    # true relevance in traffic = the real grade of the judged pair, 0 when unjudged
    oracle = pq.read_table(wh.oracle_path(DS)).to_pylist()
    text_of = {q["query_id"]: q["user_query"] for q in logged}
    judged = 0
    for row in oracle:
        key = (text_of[row["query_id"]], row["item_id"])
        assert row["true_grade"] == real.get(key, 0)
        judged += key in real
    assert judged > 0.8 * len(oracle)
    catalog = pq.read_table(wh.catalog_path)
    assert catalog.num_rows == 6764


def test_esci_holdout_split_is_fixed_across_seeds(esci_cfg):
    other = dataclasses.replace(esci_cfg.simulate, seed=esci_cfg.simulate.seed + 1)
    a, b = get_world(esci_cfg.simulate), get_world(other)
    assert a.holdout.equals(b.holdout)


def test_esci_without_data_names_the_missing_path(cfg, tmp_path):
    missing = tmp_path / "no-esci-here"
    bad = SieConfig.load({"warehouse": cfg.warehouse, "simulate": {"world": "esci", "esci_dir": str(missing)}})
    with pytest.raises(FileNotFoundError, match=str(missing)):
        simulate_day(bad, DS)
    assert not (Warehouse.from_config(bad).root / "raw").exists()


def test_unknown_world_is_rejected(cfg):
    with pytest.raises(ValueError, match="unknown simulate.world"):
        get_world(_sim(cfg, world="mars"))


def test_world_stats_shape(cfg):
    log = simulate_traffic(get_world(cfg.simulate), cfg.simulate, DS)
    stats = world_stats(get_world(cfg.simulate), log, cfg.simulate)
    assert len(stats["ctr_by_position"]) == cfg.simulate.impressions_per_request
    assert sum(stats["noise_share_of_samples"].values()) == pytest.approx(1.0, abs=1e-3)
    assert np.isclose(sum(stats["traffic_share_by_tier"].values()), 1.0, atol=1e-3)


def test_query_k_fold_holds_out_every_query_exactly_once(cfg, esci_cfg, shared_data):
    """simulate.holdout_folds = k: the k folds' held-out queries partition all queries (both worlds);
    a fold's holdout is the judgments of exactly its queries and they get no traffic."""
    from sie.simulate.world import esci_holdout_queries, load_esci, resolve_esci_dir

    k = 5
    synthetic = [get_world(_sim(cfg, holdout_folds=k, holdout_fold=f)) for f in range(k)]
    counts = np.sum([w.holdout_mask for w in synthetic], axis=0)
    assert counts.tolist() == [1] * cfg.simulate.n_intents
    assert not synthetic[0].holdout_mask[synthetic[0].traffic_intents].any()

    _, judgments = load_esci(resolve_esci_dir(esci_cfg.simulate))
    queries = list(judgments)
    folds = [esci_holdout_queries(queries, 0.3, k, f) for f in range(k)]
    assert len(queries) == 150 and sorted(q for fold in folds for q in fold) == sorted(queries)
    assert [len(fold) for fold in folds] == [30] * k
    world = get_world(_sim(esci_cfg, holdout_folds=k, holdout_fold=2))
    held = {str(q) for q in world.holdout.column("query_text").to_pylist()}
    assert held == folds[2]
    assert {world.intent_text[i] for i in world.traffic_intents}.isdisjoint(held)
