"""One day of traffic over a :class:`World`: sessions, ranking, clicks, conversions, noise.

Everything is numpy-vectorised over requests × positions. Randomness comes from
independent streams spawned from ``SeedSequence([seed, world, yyyymmdd])`` so a day is
a pure function of (config, ds), and changing one noise knob does not reshuffle the
streams the others draw from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sie.config import SimulateConfig
from sie.simulate.world import WORLD_TAGS, World, _uuid

NOISE_TYPES = ("none", "bot", "accidental_click", "clickbait", "duplicate", "label_flip")
NOISE_CODE = {n: i for i, n in enumerate(NOISE_TYPES)}
# noise types that make a sample's label misrepresent true relevance after a correct
# ingest; `duplicate` lines are exact copies that a correct ingest drops (see docs)
LABEL_NOISE = ("bot", "accidental_click", "clickbait", "label_flip")
ACTIONS = ("impression", "click", "add_to_cart", "purchase")

# click model constants (documented in docs/SIMULATOR.md)
ATTR_LOGIT = np.array([-3.5, -2.3, -1.0, 0.0])  # attractiveness by true grade 0..3 (≈ .03 .09 .27 .50)
SAT_LOGIT = np.array([-2.5, -1.2, 0.3, 1.5])  # satisfaction after a click by grade (≈ .08 .23 .57 .82)
QUALITY_W = 0.3  # latent item quality in attractiveness (and 0.5 in satisfaction)
PRICE_W = 0.5  # times the user's price sensitivity, per standard deviation of log price
CLICKBAIT_BOOST = 2.0  # logit added to a clickbait item's attractiveness
CLICKBAIT_SAT = 0.15  # satisfaction multiplier of clickbait items
P_CART = 0.4  # add_to_cart given a satisfied click
P_PURCHASE = 0.55  # purchase given add_to_cart
BOT_CLICK_P = 0.35  # a bot clicks any result with this probability, whatever its rank
HUMAN_SESSION_P = 0.5  # session length ~ Geometric(p): mean 2 requests
BOT_SESSION_LEN = (15, 60)
PREF_TOP_P = 0.5  # chance a fresh query comes from the user's preferred category
REFINE_P = 0.5  # chance a later request in a session refines the first query's product type
HOUR_WEIGHTS = np.array(
    [
        1.0,
        0.6,
        0.4,
        0.3,
        0.3,
        0.5,
        1.0,
        2.0,
        3.0,
        3.5,
        4.0,
        4.0,
        4.2,
        4.0,
        3.8,
        3.8,
        4.0,
        4.5,
        5.0,
        5.5,
        5.5,
        4.5,
        3.0,
        2.0,
    ]
)
DAY_S = 86400.0


def ds_int(ds: str) -> int:
    return int(ds.replace("-", ""))


@dataclass
class DayLog:
    ds: str
    K: int
    # sessions (S)
    session_ids: np.ndarray  # object
    session_client: np.ndarray  # object
    session_user_id: np.ndarray  # object (None = logged out / bot)
    session_bot: np.ndarray  # bool
    # requests (R)
    query_ids: np.ndarray  # object
    response_ids: np.ndarray  # object
    req_session: np.ndarray
    req_user: np.ndarray  # -1 for bots
    req_bot: np.ndarray
    req_intent: np.ndarray
    req_index: np.ndarray  # 0-based index within the session
    req_ts: np.ndarray  # seconds since midnight UTC
    # impressions (R, K)
    imp_item: np.ndarray
    imp_grade: np.ndarray
    click: np.ndarray
    cart: np.ndarray
    purchase: np.ndarray
    click_ts: np.ndarray
    cart_ts: np.ndarray
    purchase_ts: np.ndarray
    dwell: np.ndarray
    noise: np.ndarray  # int8 code into NOISE_TYPES
    # event lines in file order, duplicates included
    ev_req: np.ndarray
    ev_pos: np.ndarray  # 0-based
    ev_action: np.ndarray  # index into ACTIONS
    ev_ts: np.ndarray
    ev_copy: np.ndarray  # bool: this line is a logging-retry copy of the line before it

    @property
    def R(self) -> int:
        return len(self.req_ts)

    def label(self) -> np.ndarray:
        """Graded label a correct ingest derives per impression: 0 none .. 3 purchase."""
        return np.maximum.reduce([self.click * 1, self.cart * 2, self.purchase * 3]).astype(np.int32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _split(n: int, lengths: np.ndarray) -> np.ndarray:
    """Session lengths (each ≥ 1) truncated so they sum to exactly n."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    cs = np.cumsum(lengths)
    m = int(np.searchsorted(cs, n)) + 1
    out = lengths[:m].copy()
    out[-1] -= cs[m - 1] - n
    return out


def _hex_ids(g: np.random.Generator, n: int, uuid: bool) -> np.ndarray:
    h = g.bytes(16 * n).hex()
    if uuid:
        return np.array([_uuid(h[32 * i : 32 * i + 32]) for i in range(n)], dtype=object)
    return np.array([h[32 * i : 32 * i + 32] for i in range(n)], dtype=object)


def simulate_traffic(world: World, cfg: SimulateConfig, ds: str) -> DayLog:
    R, K = int(cfg.requests_per_day), int(cfg.impressions_per_request)
    if K > world.width:
        raise ValueError(f"impressions_per_request={K} exceeds the candidate width {world.width}")
    if R < 1:
        raise ValueError("requests_per_day must be >= 1")
    ss = np.random.SeedSequence([cfg.seed, WORLD_TAGS[cfg.world], ds_int(ds)])
    g_sess, g_rank, g_click, g_noise, g_ids, g_time = (np.random.default_rng(s) for s in ss.spawn(6))

    # ---- sessions -----------------------------------------------------------
    n_bot = int(round(cfg.bot_rate * R))
    n_hum = R - n_bot
    h_len = _split(n_hum, g_sess.geometric(HUMAN_SESSION_P, size=max(1, n_hum)))
    b_len = _split(n_bot, g_sess.integers(BOT_SESSION_LEN[0], BOT_SESSION_LEN[1] + 1, size=max(1, n_bot)))
    S_h, S_b = len(h_len), len(b_len)
    sess_len = np.concatenate([h_len, b_len]).astype(np.int64)
    sess_bot = np.concatenate([np.zeros(S_h, bool), np.ones(S_b, bool)])
    sess_user = np.concatenate(
        [g_sess.choice(world.n_users, size=S_h, p=world.user_activity), -np.ones(S_b, np.int64)]
    ).astype(np.int64)
    session_ids = _hex_ids(g_ids, S_h + S_b, uuid=False)
    bot_clients = _hex_ids(g_ids, S_b, uuid=True)
    clients = np.array(world.user_client, dtype=object)
    session_client = np.concatenate([clients[sess_user[:S_h]], bot_clients]).astype(object)
    uid = np.array(world.user_ids, dtype=object)
    hum_uid = np.where(world.user_anonymous[sess_user[:S_h]], None, uid[sess_user[:S_h]])
    session_user_id = np.concatenate([hum_uid, np.full(S_b, None, dtype=object)]).astype(object)

    # ---- requests: timing ----------------------------------------------------
    req_session = np.repeat(np.arange(S_h + S_b), sess_len)
    first = np.concatenate([[0], np.cumsum(sess_len)[:-1]])
    req_index = np.arange(R) - first[req_session]
    req_bot = sess_bot[req_session]
    gap = np.where(req_bot, g_time.uniform(1.0, 4.0, R), 15.0 + g_time.exponential(60.0, R))
    gap[req_index == 0] = 0.0
    cs = np.cumsum(gap)
    offset = cs - cs[first[req_session]]
    dur = np.zeros(S_h + S_b)
    np.maximum.at(dur, req_session, offset)
    hour = g_time.choice(24, size=S_h + S_b, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    start = hour * 3600.0 + g_time.uniform(0, 3600.0, S_h + S_b)
    start = np.clip(np.minimum(start, DAY_S - 1800.0 - dur), 0.0, None)
    req_ts = start[req_session] + offset
    req_user = sess_user[req_session]

    # ---- requests: intents ---------------------------------------------------
    traffic, probs = world.traffic_intents, world.traffic_probs
    cum = np.cumsum(probs)
    cum[-1] = 1.0
    u = g_sess.random(R)
    intent = traffic[np.minimum(np.searchsorted(cum, u, side="right"), len(traffic) - 1)]
    hum = ~req_bot
    # part of human queries come from the user's preferred top category
    pref = hum & (g_sess.random(R) < PREF_TOP_P)
    t_top = world.intent_top[traffic]
    u2 = g_sess.random(R)
    user_top = np.where(req_user >= 0, world.user_pref_top[np.maximum(req_user, 0)], -1)
    for t in np.unique(user_top[pref]):
        members = np.flatnonzero(t_top == t)
        if len(members) == 0:
            continue
        c = np.cumsum(probs[members])
        c /= c[-1]
        rows = np.flatnonzero(pref & (user_top == t))
        intent[rows] = traffic[members[np.minimum(np.searchsorted(c, u2[rows], side="right"), len(members) - 1)]]
    # refinements: a later request re-queries the first request's product type
    grp = world.intent_group[traffic]
    order = np.argsort(grp, kind="stable")
    grp_sorted, members_sorted = grp[order], traffic[order]
    refine = hum & (req_index > 0) & (g_sess.random(R) < REFINE_P)
    base_grp = world.intent_group[intent[first[req_session]]]
    lo = np.searchsorted(grp_sorted, base_grp, side="left")
    hi = np.searchsorted(grp_sorted, base_grp, side="right")
    pick = lo + np.floor(g_sess.random(R) * (hi - lo)).astype(np.int64)
    intent = np.where(refine & (hi > lo), members_sorted[np.minimum(pick, len(members_sorted) - 1)], intent)
    # bots crawl the query space uniformly
    intent = np.where(req_bot, traffic[g_sess.integers(0, len(traffic), R)], intent).astype(np.int32)

    # ---- production ranker ---------------------------------------------------
    scores = world.cand_base[intent]
    scores += g_rank.standard_normal(scores.shape, dtype=np.float32) * np.float32(cfg.ranker_noise)
    top = np.argpartition(-scores, K - 1, axis=1)[:, :K]
    o = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, o, axis=1)
    del scores
    rows = intent[:, None]
    imp_item = world.cand_items[rows, top]
    imp_grade = world.cand_grade[rows, top]

    # ---- click model (humans) -------------------------------------------------
    pos = np.arange(1, K + 1)
    exam = (1.0 / pos) ** cfg.position_bias
    uu = np.maximum(req_user, 0)
    brand_match = (world.user_fav_brands[uu][:, None, :] == world.item_brand[imp_item][:, :, None]).any(-1)
    logit = (
        ATTR_LOGIT[imp_grade]
        + QUALITY_W * world.quality[imp_item]
        + world.user_brand_w[uu][:, None] * brand_match
        - PRICE_W * world.user_price_sens[uu][:, None] * world.price_z[imp_item]
        + world.user_click_bias[uu][:, None]
    )
    cb = world.clickbait[imp_item]
    p_true = exam * _sigmoid(logit)
    p_cb = exam * _sigmoid(logit + CLICKBAIT_BOOST * cb)
    u = g_click.random((R, K))
    H = hum[:, None]
    genuine = H & (u < p_true)
    cb_click = H & cb & ~genuine & (u < p_cb)
    clicked = genuine | cb_click
    p_sat = _sigmoid(SAT_LOGIT[imp_grade] + 0.5 * world.quality[imp_item]) * np.where(cb, CLICKBAIT_SAT, 1.0)
    sat = clicked & (g_click.random((R, K)) < p_sat)
    dwell_sat = g_click.lognormal(np.log(45.0), 0.6, (R, K))
    dwell_unsat = g_click.lognormal(np.log(8.0), 0.5, (R, K))
    dwell = np.where(sat, dwell_sat, dwell_unsat)
    cart = sat & (g_click.random((R, K)) < P_CART)
    purchase = cart & (g_click.random((R, K)) < P_PURCHASE)

    # ---- noise: accidental clicks ---------------------------------------------
    acc = np.zeros((R, K), bool)
    n_gen = int(clicked.sum())
    rate = cfg.accidental_click_rate
    if rate > 0 and n_gen > 0:
        n_acc = int(round(min(rate, 0.99) / (1.0 - min(rate, 0.99)) * n_gen))
        elig = np.flatnonzero((H & ~clicked).ravel())
        if n_acc > 0 and len(elig):
            n_acc = min(n_acc, len(elig))
            w = np.broadcast_to(exam, (R, K)).ravel()[elig]
            keys = g_noise.exponential(1.0, len(elig)) / w  # weighted sampling without replacement
            chosen = elig[np.argpartition(keys, n_acc - 1)[:n_acc]] if n_acc < len(elig) else elig
            acc.ravel()[chosen] = True
    dwell = np.where(acc, g_noise.uniform(0.2, 2.0, (R, K)), dwell)

    # ---- noise: bots ------------------------------------------------------------
    bot_click = req_bot[:, None] & (g_noise.random((R, K)) < BOT_CLICK_P)
    dwell = np.where(bot_click, g_noise.uniform(0.05, 1.5, (R, K)), dwell)
    click = clicked | acc | bot_click

    # ---- timestamps -------------------------------------------------------------
    k0 = np.arange(K)[None, :]
    click_ts = req_ts[:, None] + np.where(
        req_bot[:, None],
        0.5 + 0.3 * k0 + g_time.uniform(0, 0.5, (R, K)),
        2.0 + 1.5 * k0 + g_time.exponential(4.0, (R, K)),
    )
    cart_ts = click_ts + 0.8 * dwell
    purchase_ts = cart_ts + 20.0 + g_time.exponential(40.0, (R, K))

    # ---- noise: misattributed purchases (label flips) ---------------------------
    flip = np.zeros((R, K), bool)
    n_flip = int(round(cfg.label_flip_rate * n_hum))
    if n_flip > 0:
        hum_rows = np.flatnonzero(hum)
        rr = np.sort(g_noise.choice(hum_rows, size=min(n_flip, len(hum_rows)), replace=False))
        elig = ~(click[rr] | cart[rr] | purchase[rr])
        key = np.where(elig, g_noise.random(elig.shape), -1.0)
        tgt = key.argmax(axis=1)
        ok = elig.any(axis=1)
        rr, tgt = rr[ok], tgt[ok]
        has_p = purchase[rr].any(axis=1)
        src = purchase[rr].argmax(axis=1)
        # (a) a real purchase is attributed to another impressed item
        a_r, a_s, a_t = rr[has_p], src[has_p], tgt[has_p]
        cart_ts[a_r, a_t] = cart_ts[a_r, a_s]
        purchase_ts[a_r, a_t] = purchase_ts[a_r, a_s]
        cart[a_r, a_s] = False
        purchase[a_r, a_s] = False
        flip[a_r, a_s] = True
        # (b) a purchase from elsewhere is attributed to an impression nobody engaged with
        b_r, b_t = rr[~has_p], tgt[~has_p]
        cart_ts[b_r, b_t] = req_ts[b_r] + 60.0 + g_noise.exponential(90.0, len(b_r))
        purchase_ts[b_r, b_t] = cart_ts[b_r, b_t] + 20.0 + g_noise.exponential(40.0, len(b_r))
        cart[rr, tgt] = True
        purchase[rr, tgt] = True
        flip[rr, tgt] = True

    noise = np.zeros((R, K), np.int8)
    noise[acc] = NOISE_CODE["accidental_click"]
    noise[cb_click] = NOISE_CODE["clickbait"]
    noise[flip] = NOISE_CODE["label_flip"]
    noise[req_bot] = NOISE_CODE["bot"]

    # ---- event lines, time ordered, with logging-retry duplicates -----------------
    imp_ts = req_ts[:, None] + 0.1 + 0.005 * k0
    parts = [(np.ones((R, K), bool), imp_ts, 0), (click, click_ts, 1), (cart, cart_ts, 2), (purchase, purchase_ts, 3)]
    ev_flat, ev_ts, ev_action = [], [], []
    for mask, ts, a in parts:
        idx = np.flatnonzero(mask.ravel())
        ev_flat.append(idx)
        ev_ts.append(ts.ravel()[idx])
        ev_action.append(np.full(len(idx), a, np.int8))
    ev_flat = np.concatenate(ev_flat)
    ev_ts = np.minimum(np.concatenate(ev_ts), DAY_S - 0.001)
    ev_action = np.concatenate(ev_action)
    order = np.argsort(ev_ts, kind="stable")
    ev_flat, ev_ts, ev_action = ev_flat[order], ev_ts[order], ev_action[order]
    dup = g_noise.random(len(ev_flat)) < cfg.duplicate_event_rate
    reps = 1 + dup.astype(np.int64)
    ev_copy = np.zeros(int(reps.sum()), bool)
    ev_copy[np.cumsum(reps)[dup] - 1] = True
    dup_flat = ev_flat[dup]
    ev_flat, ev_ts, ev_action = np.repeat(ev_flat, reps), np.repeat(ev_ts, reps), np.repeat(ev_action, reps)
    nz = noise.ravel()
    dup_imp = np.zeros(R * K, bool)
    dup_imp[dup_flat] = True
    nz[dup_imp & (nz == 0)] = NOISE_CODE["duplicate"]

    nan = np.nan
    return DayLog(
        ds=ds,
        K=K,
        session_ids=session_ids,
        session_client=session_client,
        session_user_id=session_user_id,
        session_bot=sess_bot,
        query_ids=_hex_ids(g_ids, R, uuid=True),
        response_ids=_hex_ids(g_ids, R, uuid=True),
        req_session=req_session,
        req_user=req_user,
        req_bot=req_bot,
        req_intent=intent,
        req_index=req_index,
        req_ts=req_ts,
        imp_item=imp_item,
        imp_grade=imp_grade,
        click=click,
        cart=cart,
        purchase=purchase,
        click_ts=np.where(click, click_ts, nan),
        cart_ts=np.where(cart, cart_ts, nan),
        purchase_ts=np.where(purchase, purchase_ts, nan),
        dwell=np.where(click, dwell, nan),
        noise=noise,
        ev_req=ev_flat // K,
        ev_pos=ev_flat % K,
        ev_action=ev_action,
        ev_ts=ev_ts,
        ev_copy=ev_copy,
    )
