"""The simulated world: catalog, queries (intents) with true relevance, users.

Two worlds share one representation (:class:`World`):

* ``synthetic`` — generated from :mod:`sie.simulate.vocab`: a category tree, brands,
  attribute tokens, titles, prices and a latent quality per item; intents built from
  category / brand / attribute combinations; true relevance from the match
  (3 exact, 2 substitute, 1 complement, 0 irrelevant).
* ``esci`` — the real Amazon ESCI subset in ``SimulateConfig.esci_dir``: real products
  as the catalog, real US queries as intents and their real E/S/C/I grades as true
  relevance (E=3, S=2, C=1, I=0; unjudged pairs 0).

Per intent the world keeps a fixed candidate set (what retrieval returns) of width C:
``cand_items[i, c]``, its true grade ``cand_grade[i, c]`` and the production ranker's
base score ``cand_base[i, c]`` (noisy lexical match + popularity). A fixed, documented
share of intents is held out of traffic; their judgments form the benchmark holdout.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from sie.config import SimulateConfig
from sie.simulate import vocab

WORLD_TAGS = {"synthetic": 1, "esci": 2}
ESCI_GRADES = {100: 3, 10: 2, 1: 1, 0: 0}
ESCI_HOLDOUT_SALT = "sie-esci-holdout-v1"

# production ranker: base score = LEX_W * lexical overlap + POP_W * popularity + fixed noise
LEX_W = 2.0
POP_W = 0.6
FIXED_NOISE = 0.4

_TOKEN = re.compile(r"[a-z0-9]+")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]+$")


def tokens(text: str) -> set[str]:
    return set(_TOKEN.findall(text.lower()))


@dataclass
class World:
    name: str
    # items (n_items)
    item_ids: np.ndarray  # object (str)
    titles: list[str]
    item_top: np.ndarray  # int32 top-category index
    item_brand: np.ndarray  # int32 brand index (-1 none)
    price: np.ndarray  # float64
    price_z: np.ndarray  # log price standardised within its (leaf) category
    quality: np.ndarray  # latent quality, ~N(0, 1)
    popularity: np.ndarray  # standardised popularity the production ranker sees
    clickbait: np.ndarray  # bool: attractive but unsatisfying items
    catalog: pa.Table
    tops: list[str]
    brands: list[str]
    # intents (n_intents)
    intent_text: list[str]
    intent_kind: list[str]  # category | attribute | brand | brand_attribute | esci
    intent_top: np.ndarray  # int32
    intent_group: np.ndarray  # int32: intents sharing a product type (for refinements)
    cand_items: np.ndarray  # int32 [n_intents, C]
    cand_grade: np.ndarray  # int8 [n_intents, C]
    cand_base: np.ndarray  # float32 [n_intents, C]
    holdout_mask: np.ndarray  # bool [n_intents]: held out of traffic
    traffic_intents: np.ndarray  # int32: intents in traffic, in popularity-rank order
    traffic_probs: np.ndarray  # float64 Zipf probabilities of traffic_intents
    holdout: pa.Table  # query_text, item_id, grade
    # users (n_users)
    user_segment: np.ndarray  # int8 index into SEGMENT_NAMES
    user_price_sens: np.ndarray
    user_brand_w: np.ndarray
    user_click_bias: np.ndarray
    user_fav_brands: np.ndarray  # int32 [n_users, 3]
    user_pref_top: np.ndarray  # int32 [n_users]
    user_activity: np.ndarray  # float64 probabilities
    user_anonymous: np.ndarray  # bool: logged-out users have no user_id
    user_client: list[str]
    user_ids: list[str]
    meta: dict = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_segment)

    @property
    def width(self) -> int:
        return self.cand_items.shape[1]

    def intent_tier(self) -> np.ndarray:
        """head / torso / tail per traffic rank: top 5% of intents, next 25%, rest."""
        n = len(self.traffic_intents)
        rank = np.arange(n)
        return np.where(rank < max(1, round(0.05 * n)), "head", np.where(rank < round(0.30 * n), "torso", "tail"))


SEGMENT_NAMES = list(vocab.SEGMENTS)


# ---------------------------------------------------------------------------------
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent.parent


def resolve_esci_dir(cfg: SimulateConfig) -> Path:
    """``esci_dir`` as given if absolute, else relative to the cwd, else to the project root."""
    path = Path(cfg.esci_dir).expanduser()
    if path.is_absolute():
        return path
    for base in (Path.cwd(), project_root()):
        if (base / path).is_dir():
            return (base / path).resolve()
    return (project_root() / path).resolve()


def world_rng(cfg: SimulateConfig, purpose: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, WORLD_TAGS[cfg.world], 0, purpose]))


def world_key(cfg: SimulateConfig) -> tuple:
    """The config fields that define the world (everything else is per-day traffic)."""
    if cfg.world not in WORLD_TAGS:
        raise ValueError(f"unknown simulate.world {cfg.world!r}; known: {sorted(WORLD_TAGS)}")
    esci = str(resolve_esci_dir(cfg)) if cfg.world == "esci" else ""
    return (
        cfg.world,
        cfg.seed,
        cfg.n_items,
        cfg.n_users,
        cfg.n_intents,
        cfg.candidates_per_query,
        cfg.holdout_fraction,
        cfg.zipf_exponent,
        cfg.clickbait_item_rate,
        esci,
    )


_WORLDS: dict[tuple, World] = {}


def get_world(cfg: SimulateConfig) -> World:
    """The world for ``cfg`` (built once per process and world-defining settings)."""
    key = world_key(cfg)
    if key not in _WORLDS:
        if len(_WORLDS) >= 4:
            _WORLDS.pop(next(iter(_WORLDS)))
        _WORLDS[key] = build_synthetic_world(cfg) if cfg.world == "synthetic" else build_esci_world(cfg)
    return _WORLDS[key]


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / (sd if sd > 0 else 1.0)


def _zipf_probs(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


# ---------------------------------------------------------------------------------
# synthetic
def build_synthetic_world(cfg: SimulateConfig) -> World:
    rng = world_rng(cfg, 1)
    tops = list(vocab.CATEGORY_TREE)
    leaves = [(t, leaf) for t in tops for leaf in vocab.CATEGORY_TREE[t]]
    leaf_index = {leaf: i for i, (_, leaf) in enumerate(leaves)}
    leaf_top = np.array([tops.index(t) for t, _ in leaves], dtype=np.int32)
    n_leaves = len(leaves)
    complements: dict[int, set[int]] = {i: set() for i in range(n_leaves)}
    for a, b in vocab.COMPLEMENTS:
        complements[leaf_index[a]].add(leaf_index[b])
        complements[leaf_index[b]].add(leaf_index[a])

    # brands: per top category, popularity-skewed
    n_items = cfg.n_items
    per_top = max(4, n_items // (len(tops) * 40))
    brands: list[str] = []
    seen: set[str] = set()
    brand_top: list[int] = []
    syl = vocab.BRAND_SYLLABLES
    for ti in range(len(tops)):
        made = 0
        while made < per_top:
            name = "".join(rng.choice(syl, size=int(rng.integers(2, 4)))).capitalize()
            if name in seen:
                continue
            seen.add(name)
            brands.append(name)
            brand_top.append(ti)
            made += 1
    brand_top_arr = np.array(brand_top, dtype=np.int32)
    brand_pop = rng.normal(0, 0.7, len(brands))

    # items
    item_leaf = rng.integers(0, n_leaves, n_items).astype(np.int32)
    item_top = leaf_top[item_leaf]
    quality = rng.normal(0, 1, n_items)
    item_brand = np.empty(n_items, dtype=np.int32)
    for ti in range(len(tops)):
        idx = np.flatnonzero(item_top == ti)
        cand = np.flatnonzero(brand_top_arr == ti)
        p = np.exp(brand_pop[cand])
        item_brand[idx] = rng.choice(cand, size=len(idx), p=p / p.sum())
    leaf_price = np.exp(rng.normal(3.0, 0.8, n_leaves))
    log_price = np.log(leaf_price[item_leaf]) + rng.normal(0, 0.35, n_items) + 0.15 * quality
    price = np.round(np.exp(log_price)) - 0.01
    price = np.maximum(price, 0.99)
    price_z = np.zeros(n_items)
    for li in range(n_leaves):
        idx = item_leaf == li
        if idx.sum() > 1:
            lp = np.log(price[idx])
            price_z[idx] = (lp - lp.mean()) / (lp.std() or 1.0)
    popularity = _zscore(0.5 * quality + brand_pop[item_brand] + rng.normal(0, 0.8, n_items))

    attr_families = {t: list(vocab.ATTRIBUTES[t]) for t in tops}
    item_attrs: list[dict[str, str]] = []
    titles: list[str] = []
    for i in range(n_items):
        t = tops[item_top[i]]
        attrs = {fam: vals[int(rng.integers(len(vals)))] for fam, vals in vocab.ATTRIBUTES[t].items()}
        item_attrs.append(attrs)
        parts = [brands[item_brand[i]]]
        vals = list(attrs.values())
        if rng.random() < 0.85:  # sometimes a seller leaves an attribute out of the title
            parts += vals
        else:
            parts += vals[:1]
        parts.append(leaves[item_leaf[i]][1])
        if rng.random() < 0.5:
            parts.append(vocab.FILLER[int(rng.integers(len(vocab.FILLER)))])
        parts.append(f"{int(rng.integers(1, 10))}{'abcdefghjk'[int(rng.integers(10))]}")
        titles.append(" ".join(parts))
    item_ids = np.array([f"P{i:06d}" for i in range(n_items)], dtype=object)

    # intents: every leaf as a category query first, then attribute / brand combos of real items
    specs: list[tuple[str, str, int, int, dict[str, str]]] = []  # text, kind, leaf, brand, attrs
    texts: set[str] = set()

    def add(text: str, kind: str, leaf: int, brand: int, attrs: dict[str, str]) -> None:
        if text not in texts and len(specs) < cfg.n_intents:
            texts.add(text)
            specs.append((text, kind, leaf, brand, attrs))

    for li in rng.permutation(n_leaves):
        add(leaves[li][1], "category", int(li), -1, {})
    tries = 0
    while len(specs) < cfg.n_intents and tries < 50 * cfg.n_intents:
        tries += 1
        i = int(rng.integers(n_items))
        li, b = int(item_leaf[i]), int(item_brand[i])
        fam = attr_families[tops[item_top[i]]]
        f = fam[int(rng.integers(len(fam)))]
        a = item_attrs[i][f]
        kind = rng.choice(["attribute", "brand", "brand_attribute"], p=[0.5, 0.3, 0.2])
        leaf = leaves[li][1]
        if kind == "attribute":
            add(f"{a} {leaf}", "attribute", li, -1, {f: a})
        elif kind == "brand":
            add(f"{brands[b].lower()} {leaf}", "brand", li, b, {})
        else:
            add(f"{brands[b].lower()} {a} {leaf}", "brand_attribute", li, b, {f: a})
    n_int = len(specs)

    # candidates and true grades
    fams = sorted({f for t in tops for f in vocab.ATTRIBUTES[t]})
    fam_vals = {f: sorted({v for t in tops for v in vocab.ATTRIBUTES[t].get(f, [])}) for f in fams}
    attr_val = np.full((n_items, len(fams)), -1, dtype=np.int16)
    for i, attrs in enumerate(item_attrs):
        for f, v in attrs.items():
            attr_val[i, fams.index(f)] = fam_vals[f].index(v)
    index = TitleIndex(titles)
    comp_items = {li: np.flatnonzero(np.isin(item_leaf, sorted(complements[li]))) for li in range(n_leaves)}
    C = min(cfg.candidates_per_query, n_items)
    cand_items = np.empty((n_int, C), dtype=np.int32)
    cand_grade = np.empty((n_int, C), dtype=np.int8)
    cand_base = np.empty((n_int, C), dtype=np.float32)
    for qi, (text, kind, li, b, attrs) in enumerate(specs):
        # lexical retrieval (best 4C items sharing a token) + "also bought" complements + random filler
        lex_all = index.overlap_all(text)
        hit = np.flatnonzero(lex_all > 0)
        if len(hit) > 4 * C:
            key = lex_all[hit] + 0.3 * popularity[hit] + rng.normal(0, 0.2, len(hit))
            hit = hit[np.argpartition(-key, 4 * C - 1)[: 4 * C]]
        comp = comp_items[li]
        if len(comp) > C:
            comp = rng.choice(comp, size=C, replace=False)
        pool = np.unique(np.concatenate([hit, comp, rng.choice(n_items, size=min(n_items, C // 2), replace=False)]))
        if len(pool) < C:  # tiny catalogs only
            pool = np.unique(np.concatenate([pool, np.setdiff1d(np.arange(n_items), pool)[: C - len(pool)]]))
        grade = np.zeros(len(pool), dtype=np.int8)
        same = item_leaf[pool] == li
        exact = same.copy()
        if b >= 0:
            exact &= item_brand[pool] == b
        for f, v in attrs.items():
            exact &= attr_val[pool, fams.index(f)] == fam_vals[f].index(v)
        grade[np.isin(item_leaf[pool], sorted(complements[li]))] = 1
        grade[same] = 2
        grade[exact] = 3
        base = _base_scores(lex_all[pool], pool, popularity, rng)
        # retrieval keeps the best C by base score plus retrieval noise
        order = np.argsort(-(base + rng.normal(0, 0.3, len(pool))), kind="stable")[:C]
        cand_items[qi] = pool[order]
        cand_grade[qi] = grade[order]
        cand_base[qi] = base[order]

    catalog = pa.table(
        {
            "item_id": pa.array(item_ids.tolist(), pa.string()),
            "title": pa.array(titles, pa.string()),
            "category": pa.array([tops[t] for t in item_top], pa.string()),
            "subcategory": pa.array([leaves[li][1] for li in item_leaf], pa.string()),
            "brand": pa.array([brands[b] for b in item_brand], pa.string()),
            "price": pa.array(price, pa.float64()),
            "price_imputed": pa.array(np.zeros(n_items, bool), pa.bool_()),
        }
    )
    intent_text = [s[0] for s in specs]
    intent_kind = [s[1] for s in specs]
    intent_group = np.array([s[2] for s in specs], dtype=np.int32)
    intent_top = leaf_top[intent_group]
    holdout_mask = np.zeros(n_int, dtype=bool)
    n_hold = int(round(cfg.holdout_fraction * n_int))
    holdout_mask[world_rng(cfg, 2).permutation(n_int)[:n_hold]] = True
    world = _finish(
        cfg,
        "synthetic",
        item_ids,
        titles,
        item_top,
        item_brand,
        price,
        price_z,
        quality,
        popularity,
        catalog,
        tops,
        brands,
        intent_text,
        intent_kind,
        intent_top,
        intent_group,
        cand_items,
        cand_grade,
        cand_base,
        holdout_mask,
    )
    world.meta["holdout_split"] = f"seeded random {cfg.holdout_fraction:.0%} of intents (world seed {cfg.seed})"
    return world


class TitleIndex:
    """Binary item × token matrix of titles, for lexical retrieval and overlap scores."""

    def __init__(self, titles: list[str]):
        from scipy import sparse

        vocab_: dict[str, int] = {}
        rows, cols = [], []
        for i, t in enumerate(titles):
            for tok in tokens(t):
                rows.append(i)
                cols.append(vocab_.setdefault(tok, len(vocab_)))
        data = np.ones(len(rows), dtype=np.float32)
        shape = (len(titles), max(1, len(vocab_)))
        self.vocab = vocab_
        self.csr = sparse.csr_matrix((data, (rows, cols)), shape=shape)
        self.csc = self.csr.tocsc()

    def _ids(self, text: str) -> tuple[list[int], int]:
        q = tokens(text)
        return [self.vocab[t] for t in sorted(q) if t in self.vocab], len(q)

    def overlap_all(self, text: str) -> np.ndarray:
        """Share of the query's tokens found in every item's title (dense, one per item)."""
        ids, n = self._ids(text)
        if not ids:
            return np.zeros(self.csr.shape[0])
        return np.asarray(self.csc[:, ids].sum(axis=1)).ravel() / n

    def overlap(self, text: str, items: np.ndarray) -> np.ndarray:
        """Share of the query's tokens found in each item's title."""
        ids, n = self._ids(text)
        if not ids:
            return np.zeros(len(items))
        return np.asarray(self.csr[items][:, ids].sum(axis=1)).ravel() / n


def _base_scores(lex: np.ndarray, pool: np.ndarray, popularity: np.ndarray, rng) -> np.ndarray:
    """The production ranker's fixed score per (query, item): noisy lexical match + popularity."""
    return (LEX_W * lex + POP_W * popularity[pool] + rng.normal(0, FIXED_NOISE, len(pool))).astype(np.float32)


# ---------------------------------------------------------------------------------
# ESCI
def load_esci(esci_dir: Path) -> tuple[list[dict], dict[str, dict[str, int]]]:
    """(products, {query: {asin: grade}}) from the ESCI folder; clear error when missing."""
    products_path = esci_dir / "products.jsonl.gz"
    judgments_path = esci_dir / "esci_us_judgments.json"
    if not esci_dir.is_dir():
        raise FileNotFoundError(
            f"ESCI world needs the reference data folder {esci_dir} (SimulateConfig.esci_dir); it does not exist"
        )
    for p in (products_path, judgments_path):
        if not p.is_file():
            raise FileNotFoundError(f"ESCI world needs {p} (SimulateConfig.esci_dir={esci_dir}); it does not exist")
    with gzip.open(products_path, "rt", encoding="utf-8") as fh:
        products = [json.loads(line) for line in fh if line.strip()]
    data = json.loads(judgments_path.read_text(encoding="utf-8"))
    judgments: dict[str, dict[str, int]] = {}
    for entry in data["judgmentRatings"]:
        ratings = judgments.setdefault(entry["query"], {})
        for r in entry["ratings"]:
            ratings[r["docId"]] = ESCI_GRADES[int(round(float(r["rating"])))]
    return products, judgments


def esci_holdout_queries(queries: list[str], fraction: float) -> set[str]:
    """The fixed held-out ESCI queries: the ``fraction`` with the smallest
    sha256(salt + query) — independent of the seed, reproducible anywhere."""
    n = int(round(fraction * len(queries)))
    key = sorted(queries, key=lambda q: hashlib.sha256(f"{ESCI_HOLDOUT_SALT}|{q}".encode()).hexdigest())
    return set(key[:n])


def build_esci_world(cfg: SimulateConfig) -> World:
    esci_dir = resolve_esci_dir(cfg)
    products, judgments = load_esci(esci_dir)
    rng = world_rng(cfg, 1)
    n_items = len(products)
    item_ids = np.array([p["asin"] for p in products], dtype=object)
    bad = [a for a in item_ids if not _SAFE_ID.match(a)]
    if bad:
        raise ValueError(f"ESCI product ids must be plain identifiers, got {bad[:3]}")
    index = {a: i for i, a in enumerate(item_ids)}
    titles = [(p.get("title") or "").strip() or p["asin"] for p in products]
    cats = [p.get("category") or [] for p in products]
    top_names = [c[0] if c else "Unknown" for c in cats]
    tops = sorted(set(top_names))
    item_top = np.array([tops.index(t) for t in top_names], dtype=np.int32)
    brand_names = [(p.get("brand") or "").strip() for p in products]
    brands = sorted({b for b in brand_names if b})
    bidx = {b: i for i, b in enumerate(brands)}
    item_brand = np.array([bidx.get(b, -1) for b in brand_names], dtype=np.int32)
    # price: known where given, otherwise imputed around the top category's median
    known = np.array([p.get("price") if isinstance(p.get("price"), (int, float)) else np.nan for p in products])
    med_all = np.nanmedian(known)
    price = known.copy()
    for ti in range(len(tops)):
        sel = item_top == ti
        med = np.nanmedian(known[sel]) if np.isfinite(known[sel]).any() else med_all
        miss = sel & ~np.isfinite(known)
        price[miss] = np.round(med * np.exp(rng.normal(0, 0.5, miss.sum())), 2)
    price = np.maximum(price, 0.99)
    price_z = np.zeros(n_items)
    for ti in range(len(tops)):
        sel = item_top == ti
        if sel.sum() > 1:
            lp = np.log(price[sel])
            price_z[sel] = (lp - lp.mean()) / (lp.std() or 1.0)
    rating = np.array([p.get("rating") if isinstance(p.get("rating"), (int, float)) else np.nan for p in products])
    rating = np.where(np.isfinite(rating), rating, np.nanmean(rating))
    quality = _zscore(_zscore(rating) + rng.normal(0, 0.5, n_items))
    rcount = np.array([p.get("rating_count") if isinstance(p.get("rating_count"), int) else 0 for p in products])
    popularity = _zscore(np.log1p(rcount) + rng.normal(0, 0.5, n_items))

    queries = list(judgments)
    held = esci_holdout_queries(queries, cfg.holdout_fraction)
    tindex = TitleIndex(titles)
    C = max(cfg.candidates_per_query, max(len(r) for r in judgments.values()))
    n_int = len(queries)
    cand_items = np.empty((n_int, C), dtype=np.int32)
    cand_grade = np.zeros((n_int, C), dtype=np.int8)
    cand_base = np.empty((n_int, C), dtype=np.float32)
    intent_top = np.empty(n_int, dtype=np.int32)
    for qi, q in enumerate(queries):
        judged = [(index[a], g) for a, g in judgments[q].items() if a in index]
        items = np.array([i for i, _ in judged], dtype=np.int64)
        grades = np.array([g for _, g in judged], dtype=np.int8)
        # pad with random unjudged products (irrelevant: grade 0)
        need = C - len(items)
        if need > 0:
            others = rng.choice(n_items, size=need + len(items) + 8, replace=False)
            others = others[~np.isin(others, items)][:need]
            items = np.concatenate([items, others])
            grades = np.concatenate([grades, np.zeros(need, np.int8)])
        cand_items[qi] = items
        cand_grade[qi] = grades
        cand_base[qi] = _base_scores(tindex.overlap(q, items), items, popularity, rng)
        exact_tops = item_top[items[grades == 3]] if (grades == 3).any() else item_top[items[: len(judged)]]
        intent_top[qi] = np.bincount(exact_tops, minlength=len(tops)).argmax()

    catalog = pa.table(
        {
            "item_id": pa.array(item_ids.tolist(), pa.string()),
            "title": pa.array(titles, pa.string()),
            "category": pa.array([top_names[i] for i in range(n_items)], pa.string()),
            "subcategory": pa.array([c[-1] if c else "Unknown" for c in cats], pa.string()),
            "brand": pa.array(brand_names, pa.string()),
            "price": pa.array(price, pa.float64()),
            "price_imputed": pa.array(~np.isfinite(known), pa.bool_()),
        }
    )
    holdout_mask = np.array([q in held for q in queries])
    world = _finish(
        cfg,
        "esci",
        item_ids,
        titles,
        item_top,
        item_brand,
        price,
        price_z,
        quality,
        popularity,
        catalog,
        tops,
        brands,
        queries,
        ["esci"] * n_int,
        intent_top,
        np.arange(n_int, dtype=np.int32),
        cand_items,
        cand_grade,
        cand_base,
        holdout_mask,
        real_judgments=judgments,
    )
    world.meta["holdout_split"] = (
        f"{len(held)} of {n_int} ESCI queries: the {cfg.holdout_fraction:.0%} with the smallest "
        f"sha256('{ESCI_HOLDOUT_SALT}|' + query) (seed-independent)"
    )
    world.meta["esci_dir"] = str(esci_dir)
    return world


# ---------------------------------------------------------------------------------
def _finish(
    cfg,
    name,
    item_ids,
    titles,
    item_top,
    item_brand,
    price,
    price_z,
    quality,
    popularity,
    catalog,
    tops,
    brands,
    intent_text,
    intent_kind,
    intent_top,
    intent_group,
    cand_items,
    cand_grade,
    cand_base,
    holdout_mask,
    real_judgments=None,
) -> World:
    """Clickbait items, traffic popularity, the holdout table and the users."""
    rng = world_rng(cfg, 3)
    n_items = len(item_ids)
    clickbait = np.zeros(n_items, dtype=bool)
    n_cb = int(round(cfg.clickbait_item_rate * n_items))
    clickbait[rng.permutation(n_items)[:n_cb]] = True

    traffic = np.flatnonzero(~holdout_mask).astype(np.int32)
    if len(traffic) == 0:
        raise ValueError("simulate.holdout_fraction leaves no queries for traffic")
    traffic = traffic[rng.permutation(len(traffic))]  # random popularity rank
    probs = _zipf_probs(len(traffic), cfg.zipf_exponent)

    held = np.flatnonzero(holdout_mask)
    q_text, i_id, grade = [], [], []
    for qi in held:
        if real_judgments is not None:  # ESCI: exactly the real judgments of the held-out query
            for asin, g in real_judgments[intent_text[qi]].items():
                q_text.append(intent_text[qi])
                i_id.append(asin)
                grade.append(g)
        else:
            for c in range(cand_items.shape[1]):
                q_text.append(intent_text[qi])
                i_id.append(item_ids[cand_items[qi, c]])
                grade.append(int(cand_grade[qi, c]))
    holdout = pa.table(
        {
            "query_text": pa.array(q_text, pa.string()),
            "item_id": pa.array(i_id, pa.string()),
            "grade": pa.array(grade, pa.int32()),
        }
    )

    # users
    n_users = cfg.n_users
    shares = np.array([s[0] for s in vocab.SEGMENTS.values()])
    seg = rng.choice(len(shares), size=n_users, p=shares / shares.sum()).astype(np.int8)
    params = np.array([s[1:] for s in vocab.SEGMENTS.values()])
    price_sens = params[seg, 0] + rng.normal(0, 0.2, n_users)
    brand_w = params[seg, 1] * rng.uniform(0.5, 1.5, n_users)
    click_bias = params[seg, 2] + rng.normal(0, 0.3, n_users)
    n_brands = max(1, len(brands))
    bcount = np.bincount(item_brand[item_brand >= 0], minlength=n_brands).astype(float) + 1e-3
    fav = rng.choice(n_brands, size=(n_users, 3), p=bcount / bcount.sum()).astype(np.int32)
    top_w = np.bincount(intent_top[traffic], weights=probs, minlength=len(tops)) + 1e-9
    pref_top = rng.choice(len(tops), size=n_users, p=top_w / top_w.sum()).astype(np.int32)
    activity = rng.lognormal(0, 1.0, n_users)
    activity /= activity.sum()
    anonymous = rng.random(n_users) < 0.3
    hexes = rng.bytes(16 * n_users).hex()
    clients = [_uuid(hexes[32 * u : 32 * u + 32]) for u in range(n_users)]
    user_ids = [str(1_000_000 + u * 7 + 3) for u in range(n_users)]

    return World(
        name=name,
        item_ids=item_ids,
        titles=titles,
        item_top=item_top,
        item_brand=item_brand,
        price=price,
        price_z=price_z,
        quality=quality,
        popularity=popularity,
        clickbait=clickbait,
        catalog=catalog,
        tops=tops,
        brands=brands,
        intent_text=list(intent_text),
        intent_kind=list(intent_kind),
        intent_top=np.asarray(intent_top, np.int32),
        intent_group=np.asarray(intent_group, np.int32),
        cand_items=cand_items,
        cand_grade=cand_grade,
        cand_base=cand_base,
        holdout_mask=holdout_mask,
        traffic_intents=traffic,
        traffic_probs=probs,
        holdout=holdout,
        user_segment=seg,
        user_price_sens=price_sens,
        user_brand_w=brand_w,
        user_click_bias=click_bias,
        user_fav_brands=fav,
        user_pref_top=pref_top,
        user_activity=activity,
        user_anonymous=anonymous,
        user_client=clients,
        user_ids=user_ids,
    )


def _uuid(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
