"""Group-aware importance (`<m>@client`, `<m>@session`), the `ensemble`, and their reuse of base scores."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from fixtures import tiny_config

from sie.importance import REGISTRY, ScoringContext, get_estimator
from sie.model.features import SampleTensors, group_index

# six samples: clients a a b b b c; sessions (a,1) (a,2) (b,1) (b,1) (b,2) (c,1)
CLIENT = [0, 0, 1, 1, 1, 2]
SESSION = [0, 1, 2, 2, 3, 4]
LOSS = [0.5, 1.5, 0.25, 2.0, 3.0, 4.0]  # last-epoch per-sample loss; `loss` scores −loss


def _ctx(cfg=None, client=CLIENT, session=SESSION, loss=LOSS) -> ScoringContext:
    n = len(loss)
    train = SampleTensors(
        query_tokens=torch.zeros(n, 2, dtype=torch.long),
        item_tokens=torch.zeros(n, 2, dtype=torch.long),
        dense=torch.zeros(n, 4),
        click=torch.tensor([1, 0, 1, 0, 1, 0], dtype=torch.float32)[:n],
        label=torch.zeros(n, dtype=torch.long),
        group=torch.arange(n),
        sample_id=np.array([f"s{i}" for i in range(n)], dtype=object),
        client=None if client is None else torch.tensor(client),
        session=None if session is None else torch.tensor(session),
    )
    loss = np.array([loss], dtype=np.float32)
    return ScoringContext(
        cfg=cfg or tiny_config(),
        ds="2024-01-01",
        model=None,
        train=train,
        validation=train.subset(np.arange(0)),
        dynamics_loss=loss,
        dynamics_logit=np.zeros_like(loss),
    )


def test_client_and_session_means_exactly():
    ctx = _ctx()
    by_client = get_estimator("loss@client", ctx.cfg).score(ctx)
    by_session = get_estimator("loss@session", ctx.cfg).score(ctx)
    a, b, c = -(0.5 + 1.5) / 2, -(0.25 + 2.0 + 3.0) / 3, -4.0
    np.testing.assert_array_equal(by_client, [a, a, b, b, b, c])
    np.testing.assert_array_equal(by_session, [-0.5, -1.5, -1.125, -1.125, -3.0, -4.0])


def test_every_method_has_both_group_variants():
    bases = [n for n, cls in REGISTRY.items() if "@" not in n]
    assert {"loss", "aum", "tracin_self", "ensemble", "grad_norm_neg"} <= set(bases)
    for base in bases:
        for level in ("client", "session"):
            cls = REGISTRY[f"{base}@{level}"]
            assert cls.name == f"{base}@{level}" and cls.summary and level in cls.needs
            assert cls(tiny_config()).uses() == (base,)
    assert not any(n.count("@") > 1 for n in REGISTRY)


def test_group_variants_need_ids():
    ctx = _ctx(client=None, session=None)
    with pytest.raises(ValueError, match="client id"):
        get_estimator("loss@client", ctx.cfg).score(ctx)


def test_group_index_from_frame():
    frame = pd.DataFrame(
        {
            "client_id": ["a", "b", "a", None, None, "b"],
            "session_id": ["1", "1", "2", "1", "1", "1"],
        }
    )
    client = group_index(frame, ["client_id"]).numpy()
    session = group_index(frame, ["client_id", "session_id"]).numpy()
    assert client[0] == client[2] and client[1] == client[5] and client[0] != client[1]
    # a sample without a client is a group of its own
    assert len({client[3], client[4]} | {client[0], client[1]}) == 4
    # session ids are only unique within a client: (a,1) != (b,1)
    assert session[0] != session[1] and session[1] == session[5] and session[0] != session[2]
    assert session[3] != session[4]
    assert group_index(frame[["session_id"]], ["client_id"]) is None


@pytest.mark.parametrize("rule", ["mean", "geometric_mean"])
def test_ensemble_combines_rank_percentiles_with_average_ties(rule):
    cfg = tiny_config()
    cfg.importance.ensemble_methods = ["loss", "loss@client"]
    cfg.importance.ensemble_rule = rule
    ctx = _ctx(cfg)
    got = get_estimator("ensemble", cfg).score(ctx)
    # loss scores −LOSS = [-0.5, -1.5, -0.25, -2, -3, -4]: ranks (1 = lowest) 5, 4, 6, 3, 2, 1
    # loss@client = [-1, -1, -1.75, -1.75, -1.75, -4]: ranks 5.5, 5.5, 3, 3, 3, 1
    loss_rank = np.array([5, 4, 6, 3, 2, 1.0])
    client_rank = np.array([5.5, 5.5, 3, 3, 3, 1.0])
    if rule == "mean":
        expected = ((loss_rank - 1) / 5 + (client_rank - 1) / 5) / 2
    else:
        expected = np.sqrt((loss_rank / 6) * (client_rank / 6))
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=1e-15)


def test_geometric_mean_lets_one_member_flag_a_sample():
    # sample 0 is last under member a and first under b: the plain mean puts it in the middle
    # with sample 1 (middle under both); the geometric mean ranks it below sample 1
    cfg = tiny_config()
    cfg.importance.ensemble_methods = ["loss", "loss@session"]
    a, b = np.array([0.0, 1.0, 2.0]), np.array([2.0, 1.0, 0.0])
    ctx = _ctx(cfg, client=[0, 1, 2], session=[0, 1, 2], loss=[0.0, 0.0, 0.0])
    ctx.given_scores.update({"loss": a, "loss@session": b})
    cfg.importance.ensemble_rule = "mean"
    mean = get_estimator("ensemble", cfg).score(ctx)
    cfg.importance.ensemble_rule = "geometric_mean"
    geometric = get_estimator("ensemble", cfg).score(ctx)
    assert mean[0] == mean[1] and geometric[0] < geometric[1]


def test_ensemble_members_are_checked():
    cfg = tiny_config()
    for members, error in (([], ValueError), (["loss", "nope"], KeyError), (["ensemble@client"], ValueError)):
        cfg.importance.ensemble_methods = members
        with pytest.raises(error):
            get_estimator("ensemble", cfg)


def test_derived_methods_reuse_given_scores_and_compute_missing_ones_once():
    ctx = _ctx()
    given = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])  # not −LOSS: proves these were used
    ctx.given_scores["loss"] = given
    np.testing.assert_array_equal(get_estimator("loss@client", ctx.cfg).score(ctx), [5.5, 5.5, 3, 3, 3, 1])
    assert ctx.reused == ["loss"] and not ctx.computed_scores

    fresh = _ctx()
    first = fresh.method_scores("loss@session")
    assert set(fresh.computed_scores) == {"loss@session", "loss"} and fresh.reused == []
    assert fresh.method_scores("loss@session") is first  # kept, not recomputed
    # a replaced context (other dynamics) does not inherit what was computed for the old one
    other = dataclasses.replace(fresh, dynamics_loss=fresh.dynamics_loss * 2)
    assert not other.computed_scores
    np.testing.assert_array_equal(other.method_scores("loss@session"), 2 * first)


def test_scoring_step_reuses_published_base_scores(tmp_path):
    from test_importance_scoring import _samples_frame

    from sie.config import SieConfig
    from sie.ds import Ds
    from sie.steps import daily
    from sie.steps.scoring import read_scores
    from sie.steps.window import load_window
    from sie.store import Warehouse

    cfg = SieConfig.load(
        {
            "warehouse": str(tmp_path / "wh"),
            "train": {"vocab_size": 64, "embedding_dim": 8, "hidden_dim": 16, "epochs": 2, "batch_size": 64},
            "importance": {"batch_size": 128, "ensemble_methods": ["loss", "loss@client"]},
        }
    )
    cfg.train.device = "cpu"
    wh = Warehouse.from_config(cfg)
    ds = Ds("2024-01-01")
    frame = _samples_frame(ds, 40, seed=0)
    request = frame["query_id"].str.rsplit("q", n=1).str[1].astype(int)
    frame["client_id"] = "client" + (request % 5).astype(str)  # 5 clients, 8 requests each
    wh.write_day(ds, {"samples": pa.Table.from_pandas(frame, preserve_index=False)}, run_id="fixture")
    daily.train(cfg, ds)

    scored = daily.score_all(cfg, ds, ["loss", "loss@client", "ensemble", "loss@session"])
    assert scored["loss"].cost["reused"] == []
    assert scored["loss@client"].cost["reused"] == ["loss"]
    assert scored["loss@client"].cost["seconds"] >= scored["loss"].cost["seconds"]
    assert scored["ensemble"].cost["reused"] == ["loss", "loss@client"]

    window = load_window(cfg, ds)
    loss = read_scores(cfg, window, "loss")
    client = window.train_frame["client_id"].to_numpy()
    expected = pd.Series(loss).groupby(client).transform("mean").to_numpy()
    np.testing.assert_allclose(read_scores(cfg, window, "loss@client"), expected, rtol=1e-12)
    assert len(np.unique(read_scores(cfg, window, "loss@client"))) == 5

    # retrained (same ds, so the same model_version string): the published scores are stale, not reused
    cfg.train.seed = 1
    daily.train(cfg, ds)
    again = daily.score_all(cfg, ds, ["loss@client"])["loss@client"]
    assert again.cost["reused"] == []
