"""One day of traffic over a :class:`World`: sessions, ranking, clicks, conversions, noise.

Everything is numpy-vectorised over requests × positions. Randomness comes from
independent streams spawned from ``SeedSequence([seed, world, yyyymmdd])`` so a day is
a pure function of (config, ds), and changing one noise knob does not reshuffle the
streams the others draw from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sie.config import SimulateConfig
from sie.ds import Ds
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


def ds_int(ds: Ds) -> int:
    """The day as the integer YYYYMMDD: the per-day component of every seed."""
    day = ds.date
    return day.year * 10_000 + day.month * 100 + day.day


@dataclass
class DayLog:
    ds: Ds
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


@dataclass(frozen=True)
class _Streams:
    """The day's independent random streams, one per concern (field order = spawn order)."""

    sess: np.random.Generator  # sessions and query intents
    rank: np.random.Generator  # production ranker noise
    click: np.random.Generator  # human click model
    noise: np.random.Generator  # accidental clicks, bots, label flips, duplicates
    ids: np.random.Generator  # session / client / query / response ids
    time: np.random.Generator  # timestamps

    @classmethod
    def of_day(cls, cfg: SimulateConfig, ds: Ds) -> _Streams:
        ss = np.random.SeedSequence([cfg.seed, WORLD_TAGS[cfg.world], ds_int(ds)])
        return cls(*(np.random.default_rng(s) for s in ss.spawn(6)))


@dataclass(frozen=True)
class _Sessions:
    """Per session (S): human sessions first, then bot sessions."""

    length: np.ndarray  # requests in the session (≥ 1)
    bot: np.ndarray  # bool
    user: np.ndarray  # user index, -1 for bots
    ids: np.ndarray  # object
    client: np.ndarray  # object
    user_id: np.ndarray  # object (None = logged out / bot)


@dataclass(frozen=True)
class _Requests:
    """Per request (R), in session order."""

    session: np.ndarray  # session index
    session_first: np.ndarray  # per session (S): row of its first request
    index: np.ndarray  # 0-based index within the session
    bot: np.ndarray  # bool
    user: np.ndarray  # user index, -1 for bots
    ts: np.ndarray  # seconds since midnight UTC

    @property
    def human(self) -> np.ndarray:
        return ~self.bot

    @property
    def first(self) -> np.ndarray:
        """Per request: the row of its session's first request."""
        return self.session_first[self.session]


@dataclass(frozen=True)
class _Shown:
    """What the production ranker showed per impression (R, K)."""

    item: np.ndarray
    grade: np.ndarray


@dataclass(frozen=True)
class _HumanClicks:
    """The click model's outcome per impression (R, K), before noise is added."""

    clicked: np.ndarray  # genuine clicks and clickbait clicks
    clickbait: np.ndarray  # clicks that happened only because the item is clickbait
    dwell: np.ndarray
    cart: np.ndarray
    purchase: np.ndarray


@dataclass(frozen=True)
class _Engagement:
    """The final per-impression (R, K) outcome: flags and their timestamps."""

    click: np.ndarray
    cart: np.ndarray
    purchase: np.ndarray
    click_ts: np.ndarray
    cart_ts: np.ndarray
    purchase_ts: np.ndarray
    dwell: np.ndarray


@dataclass(frozen=True)
class _EventLines:
    """Event lines in file order, logging-retry copies included."""

    flat: np.ndarray  # impression r * K + k
    action: np.ndarray  # index into ACTIONS
    ts: np.ndarray
    copy: np.ndarray  # bool: this line is a retry copy of the line before it
    retried: np.ndarray  # flat impressions that have a retried line


def _sessions(world: World, n_requests: int, bot_rate: float, g: _Streams) -> _Sessions:
    """Geometric human sessions of logged-in or anonymous users, long uniform bot sessions."""
    n_bot = int(round(bot_rate * n_requests))
    n_hum = n_requests - n_bot
    h_len = _split(n_hum, g.sess.geometric(HUMAN_SESSION_P, size=max(1, n_hum)))
    b_len = _split(n_bot, g.sess.integers(BOT_SESSION_LEN[0], BOT_SESSION_LEN[1] + 1, size=max(1, n_bot)))
    S_h, S_b = len(h_len), len(b_len)
    user = np.concatenate(
        [g.sess.choice(world.n_users, size=S_h, p=world.user_activity), -np.ones(S_b, np.int64)]
    ).astype(np.int64)
    ids = _hex_ids(g.ids, S_h + S_b, uuid=False)
    bot_clients = _hex_ids(g.ids, S_b, uuid=True)
    hum_user = user[:S_h]
    clients = np.array(world.user_client, dtype=object)
    uid = np.array(world.user_ids, dtype=object)
    hum_uid = np.where(world.user_anonymous[hum_user], None, uid[hum_user])
    return _Sessions(
        length=np.concatenate([h_len, b_len]).astype(np.int64),
        bot=np.concatenate([np.zeros(S_h, bool), np.ones(S_b, bool)]),
        user=user,
        ids=ids,
        client=np.concatenate([clients[hum_user], bot_clients]).astype(object),
        user_id=np.concatenate([hum_uid, np.full(S_b, None, dtype=object)]).astype(object),
    )


def _request_times(sessions: _Sessions, n_requests: int, g_time: np.random.Generator) -> _Requests:
    """Sessions start at an hour drawn from the daily profile; requests follow after think-time gaps."""
    R, S = n_requests, len(sessions.length)
    session = np.repeat(np.arange(S), sessions.length)
    session_first = np.concatenate([[0], np.cumsum(sessions.length)[:-1]])
    index = np.arange(R) - session_first[session]
    bot = sessions.bot[session]
    gap = np.where(bot, g_time.uniform(1.0, 4.0, R), 15.0 + g_time.exponential(60.0, R))
    gap[index == 0] = 0.0
    cs = np.cumsum(gap)
    offset = cs - cs[session_first[session]]
    dur = np.zeros(S)
    np.maximum.at(dur, session, offset)
    hour = g_time.choice(24, size=S, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    start = hour * 3600.0 + g_time.uniform(0, 3600.0, S)
    start = np.clip(np.minimum(start, DAY_S - 1800.0 - dur), 0.0, None)
    return _Requests(
        session=session,
        session_first=session_first,
        index=index,
        bot=bot,
        user=sessions.user[session],
        ts=start[session] + offset,
    )


def _zipf_intents(world: World, n_requests: int, g_sess: np.random.Generator) -> np.ndarray:
    """Each request's query drawn from the traffic intents' Zipf popularity."""
    traffic = world.traffic_intents
    cum = np.cumsum(world.traffic_probs)
    cum[-1] = 1.0
    u = g_sess.random(n_requests)
    return traffic[np.minimum(np.searchsorted(cum, u, side="right"), len(traffic) - 1)]


def _prefer_user_category(world: World, req: _Requests, intent: np.ndarray, g_sess: np.random.Generator) -> None:
    """Part of human queries come from the user's preferred top category (changes ``intent`` in place)."""
    R = len(intent)
    traffic, probs = world.traffic_intents, world.traffic_probs
    pref = req.human & (g_sess.random(R) < PREF_TOP_P)
    t_top = world.intent_top[traffic]
    u2 = g_sess.random(R)
    user_top = np.where(req.user >= 0, world.user_pref_top[np.maximum(req.user, 0)], -1)
    for t in np.unique(user_top[pref]):
        members = np.flatnonzero(t_top == t)
        if len(members) == 0:
            continue
        c = np.cumsum(probs[members])
        c /= c[-1]
        rows = np.flatnonzero(pref & (user_top == t))
        intent[rows] = traffic[members[np.minimum(np.searchsorted(c, u2[rows], side="right"), len(members) - 1)]]


def _refinements(world: World, req: _Requests, intent: np.ndarray, g_sess: np.random.Generator) -> np.ndarray:
    """A later request in a human session may re-query the first request's product type."""
    R = len(intent)
    traffic = world.traffic_intents
    grp = world.intent_group[traffic]
    order = np.argsort(grp, kind="stable")
    grp_sorted, members_sorted = grp[order], traffic[order]
    refine = req.human & (req.index > 0) & (g_sess.random(R) < REFINE_P)
    base_grp = world.intent_group[intent[req.first]]
    lo = np.searchsorted(grp_sorted, base_grp, side="left")
    hi = np.searchsorted(grp_sorted, base_grp, side="right")
    pick = lo + np.floor(g_sess.random(R) * (hi - lo)).astype(np.int64)
    return np.where(refine & (hi > lo), members_sorted[np.minimum(pick, len(members_sorted) - 1)], intent)


def _intents(world: World, req: _Requests, g_sess: np.random.Generator) -> np.ndarray:
    """The intent (query) of every request."""
    R = len(req.ts)
    intent = _zipf_intents(world, R, g_sess)
    _prefer_user_category(world, req, intent, g_sess)
    intent = _refinements(world, req, intent, g_sess)
    # bots crawl the query space uniformly
    traffic = world.traffic_intents
    return np.where(req.bot, traffic[g_sess.integers(0, len(traffic), R)], intent).astype(np.int32)


def _production_ranking(
    world: World, intent: np.ndarray, K: int, noise_sd: float, g_rank: np.random.Generator
) -> _Shown:
    """The top K candidates by base score plus per-request ranker noise."""
    scores = world.cand_base[intent]
    scores += g_rank.standard_normal(scores.shape, dtype=np.float32) * np.float32(noise_sd)
    top = np.argpartition(-scores, K - 1, axis=1)[:, :K]
    o = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, o, axis=1)
    del scores
    rows = intent[:, None]
    return _Shown(item=world.cand_items[rows, top], grade=world.cand_grade[rows, top])


def _attractiveness_logit(world: World, req: _Requests, shown: _Shown) -> np.ndarray:
    """Grade, latent quality, brand affinity, price sensitivity and the user's click bias."""
    uu = np.maximum(req.user, 0)
    item = shown.item
    brand_match = (world.user_fav_brands[uu][:, None, :] == world.item_brand[item][:, :, None]).any(-1)
    return (
        ATTR_LOGIT[shown.grade]
        + QUALITY_W * world.quality[item]
        + world.user_brand_w[uu][:, None] * brand_match
        - PRICE_W * world.user_price_sens[uu][:, None] * world.price_z[item]
        + world.user_click_bias[uu][:, None]
    )


def _human_clicks(
    world: World, req: _Requests, shown: _Shown, exam: np.ndarray, g_click: np.random.Generator
) -> _HumanClicks:
    """Position-biased examination × attractiveness; satisfied clicks may convert."""
    R, K = shown.item.shape
    logit = _attractiveness_logit(world, req, shown)
    cb = world.clickbait[shown.item]
    p_true = exam * _sigmoid(logit)
    p_cb = exam * _sigmoid(logit + CLICKBAIT_BOOST * cb)
    u = g_click.random((R, K))
    H = req.human[:, None]
    genuine = H & (u < p_true)
    cb_click = H & cb & ~genuine & (u < p_cb)
    clicked = genuine | cb_click
    quality = world.quality[shown.item]
    p_sat = _sigmoid(SAT_LOGIT[shown.grade] + 0.5 * quality) * np.where(cb, CLICKBAIT_SAT, 1.0)
    sat = clicked & (g_click.random((R, K)) < p_sat)
    dwell_sat = g_click.lognormal(np.log(45.0), 0.6, (R, K))
    dwell_unsat = g_click.lognormal(np.log(8.0), 0.5, (R, K))
    cart = sat & (g_click.random((R, K)) < P_CART)
    purchase = cart & (g_click.random((R, K)) < P_PURCHASE)
    return _HumanClicks(
        clicked=clicked, clickbait=cb_click, dwell=np.where(sat, dwell_sat, dwell_unsat), cart=cart, purchase=purchase
    )


def _accidental_clicks(
    clicks: _HumanClicks, human: np.ndarray, exam: np.ndarray, rate: float, g_noise: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(accidental click mask, dwell): ``rate`` of human clicks, on unclicked impressions, by examination."""
    R, K = clicks.clicked.shape
    acc = np.zeros((R, K), bool)
    n_gen = int(clicks.clicked.sum())
    if rate > 0 and n_gen > 0:
        n_acc = int(round(min(rate, 0.99) / (1.0 - min(rate, 0.99)) * n_gen))
        elig = np.flatnonzero((human[:, None] & ~clicks.clicked).ravel())
        if n_acc > 0 and len(elig):
            n_acc = min(n_acc, len(elig))
            w = np.broadcast_to(exam, (R, K)).ravel()[elig]
            keys = g_noise.exponential(1.0, len(elig)) / w  # weighted sampling without replacement
            chosen = elig[np.argpartition(keys, n_acc - 1)[:n_acc]] if n_acc < len(elig) else elig
            acc.ravel()[chosen] = True
    return acc, np.where(acc, g_noise.uniform(0.2, 2.0, (R, K)), clicks.dwell)


def _bot_clicks(bot: np.ndarray, dwell: np.ndarray, g_noise: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(bot click mask, dwell): bots click any result with BOT_CLICK_P, whatever its rank, and leave fast."""
    shape = dwell.shape
    bot_click = bot[:, None] & (g_noise.random(shape) < BOT_CLICK_P)
    return bot_click, np.where(bot_click, g_noise.uniform(0.05, 1.5, shape), dwell)


def _engagement_times(
    req: _Requests, click: np.ndarray, clicks: _HumanClicks, dwell: np.ndarray, g_time: np.random.Generator
) -> _Engagement:
    """Click, add_to_cart and purchase timestamps for every impression (used where the flag is set)."""
    R, K = click.shape
    k0 = np.arange(K)[None, :]
    click_ts = req.ts[:, None] + np.where(
        req.bot[:, None],
        0.5 + 0.3 * k0 + g_time.uniform(0, 0.5, (R, K)),
        2.0 + 1.5 * k0 + g_time.exponential(4.0, (R, K)),
    )
    cart_ts = click_ts + 0.8 * dwell
    purchase_ts = cart_ts + 20.0 + g_time.exponential(40.0, (R, K))
    return _Engagement(
        click=click,
        cart=clicks.cart,
        purchase=clicks.purchase,
        click_ts=click_ts,
        cart_ts=cart_ts,
        purchase_ts=purchase_ts,
        dwell=dwell,
    )


def _misattribute_purchases(
    eng: _Engagement, req: _Requests, rate: float, g_noise: np.random.Generator
) -> tuple[_Engagement, np.ndarray]:
    """(engagement, flipped mask): ``rate`` of human requests get a purchase on the wrong impression."""
    cart, purchase = eng.cart.copy(), eng.purchase.copy()
    cart_ts, purchase_ts = eng.cart_ts.copy(), eng.purchase_ts.copy()
    flip = np.zeros(cart.shape, bool)
    hum_rows = np.flatnonzero(req.human)
    n_flip = int(round(rate * len(hum_rows)))
    if n_flip > 0:
        rr = np.sort(g_noise.choice(hum_rows, size=min(n_flip, len(hum_rows)), replace=False))
        elig = ~(eng.click[rr] | cart[rr] | purchase[rr])
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
        cart_ts[b_r, b_t] = req.ts[b_r] + 60.0 + g_noise.exponential(90.0, len(b_r))
        purchase_ts[b_r, b_t] = cart_ts[b_r, b_t] + 20.0 + g_noise.exponential(40.0, len(b_r))
        cart[rr, tgt] = True
        purchase[rr, tgt] = True
        flip[rr, tgt] = True
    flipped = replace(eng, cart=cart, purchase=purchase, cart_ts=cart_ts, purchase_ts=purchase_ts)
    return flipped, flip


def _time_ordered_events(eng: _Engagement, req_ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat impression, timestamp, action) of every event, in time order (impressions first on ties)."""
    R, K = eng.click.shape
    imp_ts = req_ts[:, None] + 0.1 + 0.005 * np.arange(K)[None, :]
    parts = [
        (np.ones((R, K), bool), imp_ts, 0),
        (eng.click, eng.click_ts, 1),
        (eng.cart, eng.cart_ts, 2),
        (eng.purchase, eng.purchase_ts, 3),
    ]
    flat, ts, action = [], [], []
    for mask, when, a in parts:
        idx = np.flatnonzero(mask.ravel())
        flat.append(idx)
        ts.append(when.ravel()[idx])
        action.append(np.full(len(idx), a, np.int8))
    flat_all = np.concatenate(flat)
    ts_all = np.minimum(np.concatenate(ts), DAY_S - 0.001)
    action_all = np.concatenate(action)
    order = np.argsort(ts_all, kind="stable")
    return flat_all[order], ts_all[order], action_all[order]


def _event_lines(
    eng: _Engagement, req_ts: np.ndarray, duplicate_rate: float, g_noise: np.random.Generator
) -> _EventLines:
    """Time-ordered event lines; ``duplicate_rate`` of them are logged twice (a logging retry)."""
    flat, ts, action = _time_ordered_events(eng, req_ts)
    dup = g_noise.random(len(flat)) < duplicate_rate
    reps = 1 + dup.astype(np.int64)
    copy = np.zeros(int(reps.sum()), bool)
    copy[np.cumsum(reps)[dup] - 1] = True
    return _EventLines(
        flat=np.repeat(flat, reps),
        action=np.repeat(action, reps),
        ts=np.repeat(ts, reps),
        copy=copy,
        retried=flat[dup],
    )


def _noise_codes(
    accidental: np.ndarray, clickbait: np.ndarray, flip: np.ndarray, bot: np.ndarray, retried: np.ndarray
) -> np.ndarray:
    """One NOISE_CODE per impression; later kinds win, ``duplicate`` only marks otherwise clean impressions."""
    noise = np.zeros(accidental.shape, np.int8)
    noise[accidental] = NOISE_CODE["accidental_click"]
    noise[clickbait] = NOISE_CODE["clickbait"]
    noise[flip] = NOISE_CODE["label_flip"]
    noise[bot] = NOISE_CODE["bot"]
    nz = noise.ravel()
    dup_imp = np.zeros(nz.size, bool)
    dup_imp[retried] = True
    nz[dup_imp & (nz == 0)] = NOISE_CODE["duplicate"]
    return noise


def _day_size(world: World, cfg: SimulateConfig) -> tuple[int, int]:
    """(requests R, impressions per request K), validated against the world."""
    R, K = int(cfg.requests_per_day), int(cfg.impressions_per_request)
    if K > world.width:
        raise ValueError(f"impressions_per_request={K} exceeds the candidate width {world.width}")
    if R < 1:
        raise ValueError("requests_per_day must be >= 1")
    return R, K


def simulate_traffic(world: World, cfg: SimulateConfig, ds: str | Ds) -> DayLog:
    """One day of traffic over ``world``: a pure function of (config, ds)."""
    ds = Ds(ds)
    R, K = _day_size(world, cfg)
    g = _Streams.of_day(cfg, ds)
    sessions = _sessions(world, R, cfg.bot_rate, g)
    req = _request_times(sessions, R, g.time)
    intent = _intents(world, req, g.sess)
    shown = _production_ranking(world, intent, K, cfg.ranker_noise, g.rank)
    exam = (1.0 / np.arange(1, K + 1)) ** cfg.position_bias
    clicks = _human_clicks(world, req, shown, exam, g.click)
    accidental, dwell = _accidental_clicks(clicks, req.human, exam, cfg.accidental_click_rate, g.noise)
    bot_click, dwell = _bot_clicks(req.bot, dwell, g.noise)
    eng = _engagement_times(req, clicks.clicked | accidental | bot_click, clicks, dwell, g.time)
    eng, flip = _misattribute_purchases(eng, req, cfg.label_flip_rate, g.noise)
    events = _event_lines(eng, req.ts, cfg.duplicate_event_rate, g.noise)
    nan = np.nan
    return DayLog(
        ds=ds,
        K=K,
        session_ids=sessions.ids,
        session_client=sessions.client,
        session_user_id=sessions.user_id,
        session_bot=sessions.bot,
        query_ids=_hex_ids(g.ids, R, uuid=True),
        response_ids=_hex_ids(g.ids, R, uuid=True),
        req_session=req.session,
        req_user=req.user,
        req_bot=req.bot,
        req_intent=intent,
        req_index=req.index,
        req_ts=req.ts,
        imp_item=shown.item,
        imp_grade=shown.grade,
        click=eng.click,
        cart=eng.cart,
        purchase=eng.purchase,
        click_ts=np.where(eng.click, eng.click_ts, nan),
        cart_ts=np.where(eng.cart, eng.cart_ts, nan),
        purchase_ts=np.where(eng.purchase, eng.purchase_ts, nan),
        dwell=np.where(eng.click, eng.dwell, nan),
        noise=_noise_codes(accidental, clicks.clickbait, flip, req.bot, events.retried),
        ev_req=events.flat // K,
        ev_pos=events.flat % K,
        ev_action=events.action,
        ev_ts=events.ts,
        ev_copy=events.copy,
    )
