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
        cfg.holdout_folds,
        cfg.holdout_fold,
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
# the parts both worlds are built from
@dataclass(frozen=True)
class _Items:
    """A world's catalog: per-item arrays (n_items) and the catalog table."""

    ids: np.ndarray  # object (str)
    titles: list[str]
    top: np.ndarray  # int32 top-category index
    brand: np.ndarray  # int32 brand index (-1 none)
    price: np.ndarray
    price_z: np.ndarray
    quality: np.ndarray
    popularity: np.ndarray
    catalog: pa.Table
    tops: list[str]
    brands: list[str]


@dataclass(frozen=True)
class _Candidates:
    """Per intent, the fixed candidate set retrieval returns: [n_intents, C]."""

    items: np.ndarray  # int32
    grade: np.ndarray  # int8 true grade
    base: np.ndarray  # float32 production ranker's base score


@dataclass(frozen=True)
class _Intents:
    """A world's queries (n_intents) with their candidates and the held-out share."""

    text: list[str]
    kind: list[str]
    top: np.ndarray  # int32
    group: np.ndarray  # int32
    candidates: _Candidates
    holdout_mask: np.ndarray  # bool


@dataclass(frozen=True)
class _Users:
    """The simulated users (n_users); see :class:`World`."""

    segment: np.ndarray
    price_sens: np.ndarray
    brand_w: np.ndarray
    click_bias: np.ndarray
    fav_brands: np.ndarray
    pref_top: np.ndarray
    activity: np.ndarray
    anonymous: np.ndarray
    client: list[str]
    ids: list[str]


def _log_price_z(price: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Log price standardised within each group (groups of one item stay 0)."""
    price_z = np.zeros(len(price))
    for gi in range(n_groups):
        sel = group == gi
        if sel.sum() > 1:
            lp = np.log(price[sel])
            price_z[sel] = (lp - lp.mean()) / (lp.std() or 1.0)
    return price_z


# ---------------------------------------------------------------------------------
# synthetic
@dataclass(frozen=True)
class _CategoryTree:
    """The synthetic category tree of :mod:`sie.simulate.vocab`."""

    tops: list[str]
    leaves: list[tuple[str, str]]  # (top, leaf name)
    leaf_top: np.ndarray  # int32 top index per leaf
    complements: dict[int, set[int]]  # leaf -> leaves bought with it

    @property
    def n_leaves(self) -> int:
        return len(self.leaves)


def _category_tree() -> _CategoryTree:
    tops = list(vocab.CATEGORY_TREE)
    leaves = [(t, leaf) for t in tops for leaf in vocab.CATEGORY_TREE[t]]
    leaf_index = {leaf: i for i, (_, leaf) in enumerate(leaves)}
    complements: dict[int, set[int]] = {i: set() for i in range(len(leaves))}
    for a, b in vocab.COMPLEMENTS:
        complements[leaf_index[a]].add(leaf_index[b])
        complements[leaf_index[b]].add(leaf_index[a])
    leaf_top = np.array([tops.index(t) for t, _ in leaves], dtype=np.int32)
    return _CategoryTree(tops=tops, leaves=leaves, leaf_top=leaf_top, complements=complements)


@dataclass(frozen=True)
class _Brands:
    names: list[str]
    top: np.ndarray  # int32 top category of each brand
    popularity: np.ndarray


def _synthetic_brands(tops: list[str], n_items: int, rng: np.random.Generator) -> _Brands:
    """Distinct made-up brand names per top category, popularity-skewed."""
    per_top = max(4, n_items // (len(tops) * 40))
    names: list[str] = []
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
            names.append(name)
            brand_top.append(ti)
            made += 1
    return _Brands(names=names, top=np.array(brand_top, dtype=np.int32), popularity=rng.normal(0, 0.7, len(names)))


@dataclass(frozen=True)
class _SyntheticItems:
    items: _Items
    leaf: np.ndarray  # int32 leaf-category index
    attrs: list[dict[str, str]]  # attribute family -> value


def _item_brands(item_top: np.ndarray, brands: _Brands, n_tops: int, rng: np.random.Generator) -> np.ndarray:
    """Each item's brand: one of its top category's brands, by brand popularity."""
    item_brand = np.empty(len(item_top), dtype=np.int32)
    for ti in range(n_tops):
        idx = np.flatnonzero(item_top == ti)
        cand = np.flatnonzero(brands.top == ti)
        p = np.exp(brands.popularity[cand])
        item_brand[idx] = rng.choice(cand, size=len(idx), p=p / p.sum())
    return item_brand


def _synthetic_prices(
    item_leaf: np.ndarray, quality: np.ndarray, n_leaves: int, rng: np.random.Generator
) -> np.ndarray:
    """Log-normal around a per-leaf price level, a little higher for better items; ends in .99."""
    leaf_price = np.exp(rng.normal(3.0, 0.8, n_leaves))
    log_price = np.log(leaf_price[item_leaf]) + rng.normal(0, 0.35, len(item_leaf)) + 0.15 * quality
    price = np.round(np.exp(log_price)) - 0.01
    return np.maximum(price, 0.99)


def _attrs_and_title(top: str, brand: str, leaf: str, rng: np.random.Generator) -> tuple[dict[str, str], str]:
    """One item's attribute values and its seller-written title."""
    attrs = {fam: vals[int(rng.integers(len(vals)))] for fam, vals in vocab.ATTRIBUTES[top].items()}
    parts = [brand]
    vals = list(attrs.values())
    if rng.random() < 0.85:  # sometimes a seller leaves an attribute out of the title
        parts += vals
    else:
        parts += vals[:1]
    parts.append(leaf)
    if rng.random() < 0.5:
        parts.append(vocab.FILLER[int(rng.integers(len(vocab.FILLER)))])
    parts.append(f"{int(rng.integers(1, 10))}{'abcdefghjk'[int(rng.integers(10))]}")
    return attrs, " ".join(parts)


def _synthetic_items(tree: _CategoryTree, brands: _Brands, n_items: int, rng: np.random.Generator) -> _SyntheticItems:
    item_leaf = rng.integers(0, tree.n_leaves, n_items).astype(np.int32)
    item_top = tree.leaf_top[item_leaf]
    quality = rng.normal(0, 1, n_items)
    item_brand = _item_brands(item_top, brands, len(tree.tops), rng)
    price = _synthetic_prices(item_leaf, quality, tree.n_leaves, rng)
    popularity = _zscore(0.5 * quality + brands.popularity[item_brand] + rng.normal(0, 0.8, n_items))
    described = [
        _attrs_and_title(tree.tops[item_top[i]], brands.names[item_brand[i]], tree.leaves[item_leaf[i]][1], rng)
        for i in range(n_items)
    ]
    titles = [title for _, title in described]
    item_ids = np.array([f"P{i:06d}" for i in range(n_items)], dtype=object)
    catalog = pa.table(
        {
            "item_id": pa.array(item_ids.tolist(), pa.string()),
            "title": pa.array(titles, pa.string()),
            "category": pa.array([tree.tops[t] for t in item_top], pa.string()),
            "subcategory": pa.array([tree.leaves[li][1] for li in item_leaf], pa.string()),
            "brand": pa.array([brands.names[b] for b in item_brand], pa.string()),
            "price": pa.array(price, pa.float64()),
            "price_imputed": pa.array(np.zeros(n_items, bool), pa.bool_()),
        }
    )
    items = _Items(
        ids=item_ids,
        titles=titles,
        top=item_top,
        brand=item_brand,
        price=price,
        price_z=_log_price_z(price, item_leaf, tree.n_leaves),
        quality=quality,
        popularity=popularity,
        catalog=catalog,
        tops=tree.tops,
        brands=brands.names,
    )
    return _SyntheticItems(items=items, leaf=item_leaf, attrs=[attrs for attrs, _ in described])


@dataclass(frozen=True)
class _IntentSpec:
    """A synthetic query: its text, kind and what an exact match must have."""

    text: str
    kind: str  # category | attribute | brand | brand_attribute
    leaf: int
    brand: int  # -1: any brand
    attrs: dict[str, str]  # attribute family -> required value


def _synthetic_intent_specs(
    n_intents: int, tree: _CategoryTree, syn: _SyntheticItems, rng: np.random.Generator
) -> list[_IntentSpec]:
    """Every leaf as a category query first, then attribute / brand combos of real items."""
    specs: list[_IntentSpec] = []
    texts: set[str] = set()

    def add(text: str, kind: str, leaf: int, brand: int, attrs: dict[str, str]) -> None:
        if text not in texts and len(specs) < n_intents:
            texts.add(text)
            specs.append(_IntentSpec(text, kind, leaf, brand, attrs))

    for li in rng.permutation(tree.n_leaves):
        add(tree.leaves[li][1], "category", int(li), -1, {})
    attr_families = {t: list(vocab.ATTRIBUTES[t]) for t in tree.tops}
    brands = syn.items.brands
    tries = 0
    while len(specs) < n_intents and tries < 50 * n_intents:
        tries += 1
        i = int(rng.integers(len(syn.leaf)))
        li, b = int(syn.leaf[i]), int(syn.items.brand[i])
        fam = attr_families[tree.tops[syn.items.top[i]]]
        f = fam[int(rng.integers(len(fam)))]
        a = syn.attrs[i][f]
        kind = rng.choice(["attribute", "brand", "brand_attribute"], p=[0.5, 0.3, 0.2])
        leaf = tree.leaves[li][1]
        if kind == "attribute":
            add(f"{a} {leaf}", "attribute", li, -1, {f: a})
        elif kind == "brand":
            add(f"{brands[b].lower()} {leaf}", "brand", li, b, {})
        else:
            add(f"{brands[b].lower()} {a} {leaf}", "brand_attribute", li, b, {f: a})
    return specs


@dataclass(frozen=True)
class _SyntheticRetrieval:
    """Candidates of a synthetic query and their true grades (3 exact, 2 substitute, 1 complement, 0 else)."""

    index: TitleIndex
    syn: _SyntheticItems
    complements: dict[int, set[int]]  # leaf -> leaves bought with it
    complement_items: dict[int, np.ndarray]  # leaf -> items of its complement leaves
    families: list[str]  # every attribute family, sorted
    family_values: dict[str, list[str]]  # family -> its values, sorted
    attr_code: np.ndarray  # int16 [n_items, families]: value index, -1 where the item has no such attribute
    width: int  # C

    @classmethod
    def build(cls, tree: _CategoryTree, syn: _SyntheticItems, width: int) -> _SyntheticRetrieval:
        fams = sorted({f for t in tree.tops for f in vocab.ATTRIBUTES[t]})
        fam_vals = {f: sorted({v for t in tree.tops for v in vocab.ATTRIBUTES[t].get(f, [])}) for f in fams}
        attr_code = np.full((len(syn.leaf), len(fams)), -1, dtype=np.int16)
        for i, attrs in enumerate(syn.attrs):
            for f, v in attrs.items():
                attr_code[i, fams.index(f)] = fam_vals[f].index(v)
        comp = tree.complements
        comp_items = {li: np.flatnonzero(np.isin(syn.leaf, sorted(comp[li]))) for li in range(tree.n_leaves)}
        return cls(
            index=TitleIndex(syn.items.titles),
            syn=syn,
            complements=comp,
            complement_items=comp_items,
            families=fams,
            family_values=fam_vals,
            attr_code=attr_code,
            width=width,
        )

    def _pool(self, spec: _IntentSpec, lex_all: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Lexical retrieval (best 4C items sharing a token) + "also bought" complements + random filler."""
        C, n_items = self.width, len(self.syn.leaf)
        hit = np.flatnonzero(lex_all > 0)
        if len(hit) > 4 * C:
            key = lex_all[hit] + 0.3 * self.syn.items.popularity[hit] + rng.normal(0, 0.2, len(hit))
            hit = hit[np.argpartition(-key, 4 * C - 1)[: 4 * C]]
        comp = self.complement_items[spec.leaf]
        if len(comp) > C:
            comp = rng.choice(comp, size=C, replace=False)
        pool = np.unique(np.concatenate([hit, comp, rng.choice(n_items, size=min(n_items, C // 2), replace=False)]))
        if len(pool) < C:  # tiny catalogs only
            pool = np.unique(np.concatenate([pool, np.setdiff1d(np.arange(n_items), pool)[: C - len(pool)]]))
        return pool

    def _grades(self, spec: _IntentSpec, pool: np.ndarray) -> np.ndarray:
        leaf = self.syn.leaf[pool]
        grade = np.zeros(len(pool), dtype=np.int8)
        same = leaf == spec.leaf
        exact = same.copy()
        if spec.brand >= 0:
            exact &= self.syn.items.brand[pool] == spec.brand
        for f, v in spec.attrs.items():
            exact &= self.attr_code[pool, self.families.index(f)] == self.family_values[f].index(v)
        grade[np.isin(leaf, sorted(self.complements[spec.leaf]))] = 1
        grade[same] = 2
        grade[exact] = 3
        return grade

    def candidates(self, specs: list[_IntentSpec], rng: np.random.Generator) -> _Candidates:
        n_int, C = len(specs), self.width
        cand_items = np.empty((n_int, C), dtype=np.int32)
        cand_grade = np.empty((n_int, C), dtype=np.int8)
        cand_base = np.empty((n_int, C), dtype=np.float32)
        for qi, spec in enumerate(specs):
            lex_all = self.index.overlap_all(spec.text)
            pool = self._pool(spec, lex_all, rng)
            grade = self._grades(spec, pool)
            base = _base_scores(lex_all[pool], pool, self.syn.items.popularity, rng)
            # retrieval keeps the best C by base score plus retrieval noise
            order = np.argsort(-(base + rng.normal(0, 0.3, len(pool))), kind="stable")[:C]
            cand_items[qi] = pool[order]
            cand_grade[qi] = grade[order]
            cand_base[qi] = base[order]
        return _Candidates(items=cand_items, grade=cand_grade, base=cand_base)


def _random_holdout(cfg: SimulateConfig, n_intents: int) -> np.ndarray:
    """A seeded random ``holdout_fraction`` of the intents (own stream: independent of the catalog);
    with ``holdout_folds`` = k >= 2, fold ``holdout_fold`` of the same permutation cut into k folds."""
    holdout_mask = np.zeros(n_intents, dtype=bool)
    order = world_rng(cfg, 2).permutation(n_intents)
    if cfg.holdout_folds >= 2:
        holdout_mask[order[cfg.holdout_fold :: cfg.holdout_folds]] = True
    else:
        holdout_mask[order[: int(round(cfg.holdout_fraction * n_intents))]] = True
    return holdout_mask


def holdout_split(cfg: SimulateConfig) -> str:
    """Which share of the queries is held out, in words (world metadata)."""
    if cfg.holdout_folds >= 2:
        return f"fold {cfg.holdout_fold} of {cfg.holdout_folds}"
    return f"{cfg.holdout_fraction:.0%}"


def build_synthetic_world(cfg: SimulateConfig) -> World:
    rng = world_rng(cfg, 1)
    tree = _category_tree()
    brands = _synthetic_brands(tree.tops, cfg.n_items, rng)
    syn = _synthetic_items(tree, brands, cfg.n_items, rng)
    specs = _synthetic_intent_specs(cfg.n_intents, tree, syn, rng)
    retrieval = _SyntheticRetrieval.build(tree, syn, min(cfg.candidates_per_query, cfg.n_items))
    candidates = retrieval.candidates(specs, rng)
    intent_group = np.array([s.leaf for s in specs], dtype=np.int32)
    intents = _Intents(
        text=[s.text for s in specs],
        kind=[s.kind for s in specs],
        top=tree.leaf_top[intent_group],
        group=intent_group,
        candidates=candidates,
        holdout_mask=_random_holdout(cfg, len(specs)),
    )
    world = _finish(cfg, "synthetic", syn.items, intents)
    world.meta["holdout_split"] = f"seeded random {holdout_split(cfg)} of intents (world seed {cfg.seed})"
    return world


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


def esci_holdout_queries(queries: list[str], fraction: float, folds: int = 0, fold: int = 0) -> set[str]:
    """The fixed held-out ESCI queries: the ``fraction`` with the smallest
    sha256(salt + query) — independent of the seed, reproducible anywhere. With ``folds``
    = k >= 2: fold ``fold`` of k, every k-th query in that order (the k folds partition the queries)."""
    key = sorted(queries, key=lambda q: hashlib.sha256(f"{ESCI_HOLDOUT_SALT}|{q}".encode()).hexdigest())
    if folds >= 2:
        return set(key[fold::folds])
    return set(key[: int(round(fraction * len(queries)))])


def _product_numbers(products: list[dict], field: str, kind: type | tuple[type, ...], missing: float) -> np.ndarray:
    """``product[field]`` where it is a ``kind`` number, else ``missing``."""
    return np.array([p.get(field) if isinstance(p.get(field), kind) else missing for p in products])


def _esci_prices(known: np.ndarray, item_top: np.ndarray, n_tops: int, rng: np.random.Generator) -> np.ndarray:
    """Known prices where given, otherwise imputed around the top category's median."""
    med_all = np.nanmedian(known)
    price = known.copy()
    for ti in range(n_tops):
        sel = item_top == ti
        med = np.nanmedian(known[sel]) if np.isfinite(known[sel]).any() else med_all
        miss = sel & ~np.isfinite(known)
        price[miss] = np.round(med * np.exp(rng.normal(0, 0.5, miss.sum())), 2)
    return np.maximum(price, 0.99)


def _esci_item_ids(products: list[dict]) -> np.ndarray:
    item_ids = np.array([p["asin"] for p in products], dtype=object)
    bad = [a for a in item_ids if not _SAFE_ID.match(a)]
    if bad:
        raise ValueError(f"ESCI product ids must be plain identifiers, got {bad[:3]}")
    return item_ids


def _esci_items(products: list[dict], rng: np.random.Generator) -> _Items:
    """The real products as the catalog; latent quality from ratings, popularity from rating counts."""
    n_items = len(products)
    item_ids = _esci_item_ids(products)
    titles = [(p.get("title") or "").strip() or p["asin"] for p in products]
    cats = [p.get("category") or [] for p in products]
    top_names = [c[0] if c else "Unknown" for c in cats]
    tops = sorted(set(top_names))
    item_top = np.array([tops.index(t) for t in top_names], dtype=np.int32)
    brand_names = [(p.get("brand") or "").strip() for p in products]
    brands = sorted({b for b in brand_names if b})
    bidx = {b: i for i, b in enumerate(brands)}
    known = _product_numbers(products, "price", (int, float), np.nan)
    price = _esci_prices(known, item_top, len(tops), rng)
    rating = _product_numbers(products, "rating", (int, float), np.nan)
    rating = np.where(np.isfinite(rating), rating, np.nanmean(rating))
    quality = _zscore(_zscore(rating) + rng.normal(0, 0.5, n_items))
    rcount = _product_numbers(products, "rating_count", int, 0)
    popularity = _zscore(np.log1p(rcount) + rng.normal(0, 0.5, n_items))
    catalog = pa.table(
        {
            "item_id": pa.array(item_ids.tolist(), pa.string()),
            "title": pa.array(titles, pa.string()),
            "category": pa.array(top_names, pa.string()),
            "subcategory": pa.array([c[-1] if c else "Unknown" for c in cats], pa.string()),
            "brand": pa.array(brand_names, pa.string()),
            "price": pa.array(price, pa.float64()),
            "price_imputed": pa.array(~np.isfinite(known), pa.bool_()),
        }
    )
    return _Items(
        ids=item_ids,
        titles=titles,
        top=item_top,
        brand=np.array([bidx.get(b, -1) for b in brand_names], dtype=np.int32),
        price=price,
        price_z=_log_price_z(price, item_top, len(tops)),
        quality=quality,
        popularity=popularity,
        catalog=catalog,
        tops=tops,
        brands=brands,
    )


def _pad_with_unjudged(
    items: np.ndarray, grades: np.ndarray, n_items: int, width: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Judged items first, then random unjudged products (irrelevant: grade 0) up to ``width``."""
    need = width - len(items)
    if need > 0:
        others = rng.choice(n_items, size=need + len(items) + 8, replace=False)
        others = others[~np.isin(others, items)][:need]
        items = np.concatenate([items, others])
        grades = np.concatenate([grades, np.zeros(need, np.int8)])
    return items, grades


def _esci_candidates(
    queries: list[str], judgments: dict[str, dict[str, int]], items: _Items, width: int, rng: np.random.Generator
) -> tuple[_Candidates, np.ndarray]:
    """(candidates, intent_top): each query's judged products padded with unjudged ones; its top
    category is the most common one among its exact matches (else among its judged products)."""
    row_of = {a: i for i, a in enumerate(items.ids)}
    tindex = TitleIndex(items.titles)
    n_int, n_items = len(queries), len(items.ids)
    cand_items = np.empty((n_int, width), dtype=np.int32)
    cand_grade = np.zeros((n_int, width), dtype=np.int8)
    cand_base = np.empty((n_int, width), dtype=np.float32)
    intent_top = np.empty(n_int, dtype=np.int32)
    for qi, q in enumerate(queries):
        judged = [(row_of[a], g) for a, g in judgments[q].items() if a in row_of]
        judged_items = np.array([i for i, _ in judged], dtype=np.int64)
        judged_grades = np.array([g for _, g in judged], dtype=np.int8)
        row, grades = _pad_with_unjudged(judged_items, judged_grades, n_items, width, rng)
        cand_items[qi] = row
        cand_grade[qi] = grades
        cand_base[qi] = _base_scores(tindex.overlap(q, row), row, items.popularity, rng)
        exact_tops = items.top[row[grades == 3]] if (grades == 3).any() else items.top[row[: len(judged)]]
        intent_top[qi] = np.bincount(exact_tops, minlength=len(items.tops)).argmax()
    return _Candidates(items=cand_items, grade=cand_grade, base=cand_base), intent_top


def build_esci_world(cfg: SimulateConfig) -> World:
    esci_dir = resolve_esci_dir(cfg)
    products, judgments = load_esci(esci_dir)
    rng = world_rng(cfg, 1)
    items = _esci_items(products, rng)
    queries = list(judgments)
    held = esci_holdout_queries(queries, cfg.holdout_fraction, cfg.holdout_folds, cfg.holdout_fold)
    width = max(cfg.candidates_per_query, max(len(r) for r in judgments.values()))
    candidates, intent_top = _esci_candidates(queries, judgments, items, width, rng)
    n_int = len(queries)
    intents = _Intents(
        text=queries,
        kind=["esci"] * n_int,
        top=intent_top,
        group=np.arange(n_int, dtype=np.int32),
        candidates=candidates,
        holdout_mask=np.array([q in held for q in queries]),
    )
    world = _finish(cfg, "esci", items, intents, real_judgments=judgments)
    world.meta["holdout_split"] = (
        f"{len(held)} of {n_int} ESCI queries: {holdout_split(cfg)} in the order of "
        f"sha256('{ESCI_HOLDOUT_SALT}|' + query) (seed-independent)"
    )
    world.meta["esci_dir"] = str(esci_dir)
    return world


# ---------------------------------------------------------------------------------
# both worlds: clickbait, traffic, holdout table, users
def _clickbait_items(n_items: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    clickbait = np.zeros(n_items, dtype=bool)
    n_cb = int(round(rate * n_items))
    clickbait[rng.permutation(n_items)[:n_cb]] = True
    return clickbait


def _traffic_popularity(
    holdout_mask: np.ndarray, zipf_exponent: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(traffic intents in popularity-rank order, their Zipf probabilities); held-out intents get none."""
    traffic = np.flatnonzero(~holdout_mask).astype(np.int32)
    if len(traffic) == 0:
        raise ValueError("simulate.holdout_fraction leaves no queries for traffic")
    traffic = traffic[rng.permutation(len(traffic))]  # random popularity rank
    return traffic, _zipf_probs(len(traffic), zipf_exponent)


def _holdout_table(
    intents: _Intents, item_ids: np.ndarray, real_judgments: dict[str, dict[str, int]] | None
) -> pa.Table:
    """query_text, item_id, grade of every held-out intent's judgments."""
    q_text, i_id, grade = [], [], []
    cand = intents.candidates
    for qi in np.flatnonzero(intents.holdout_mask):
        text = intents.text[qi]
        if real_judgments is not None:  # ESCI: exactly the real judgments of the held-out query
            for asin, g in real_judgments[text].items():
                q_text.append(text)
                i_id.append(asin)
                grade.append(g)
        else:
            for c in range(cand.items.shape[1]):
                q_text.append(text)
                i_id.append(item_ids[cand.items[qi, c]])
                grade.append(int(cand.grade[qi, c]))
    return pa.table(
        {
            "query_text": pa.array(q_text, pa.string()),
            "item_id": pa.array(i_id, pa.string()),
            "grade": pa.array(grade, pa.int32()),
        }
    )


def _users(n_users: int, items: _Items, top_weight: np.ndarray, rng: np.random.Generator) -> _Users:
    """Users by segment; favourite brands by catalog share, preferred top category by traffic share."""
    shares = np.array([s[0] for s in vocab.SEGMENTS.values()])
    seg = rng.choice(len(shares), size=n_users, p=shares / shares.sum()).astype(np.int8)
    params = np.array([s[1:] for s in vocab.SEGMENTS.values()])
    price_sens = params[seg, 0] + rng.normal(0, 0.2, n_users)
    brand_w = params[seg, 1] * rng.uniform(0.5, 1.5, n_users)
    click_bias = params[seg, 2] + rng.normal(0, 0.3, n_users)
    n_brands = max(1, len(items.brands))
    bcount = np.bincount(items.brand[items.brand >= 0], minlength=n_brands).astype(float) + 1e-3
    fav = rng.choice(n_brands, size=(n_users, 3), p=bcount / bcount.sum()).astype(np.int32)
    pref_top = rng.choice(len(items.tops), size=n_users, p=top_weight / top_weight.sum()).astype(np.int32)
    activity = rng.lognormal(0, 1.0, n_users)
    activity /= activity.sum()
    anonymous = rng.random(n_users) < 0.3
    hexes = rng.bytes(16 * n_users).hex()
    return _Users(
        segment=seg,
        price_sens=price_sens,
        brand_w=brand_w,
        click_bias=click_bias,
        fav_brands=fav,
        pref_top=pref_top,
        activity=activity,
        anonymous=anonymous,
        client=[_uuid(hexes[32 * u : 32 * u + 32]) for u in range(n_users)],
        ids=[str(1_000_000 + u * 7 + 3) for u in range(n_users)],
    )


def _finish(
    cfg: SimulateConfig,
    name: str,
    items: _Items,
    intents: _Intents,
    real_judgments: dict[str, dict[str, int]] | None = None,
) -> World:
    """Clickbait items, traffic popularity, the holdout table and the users; the assembled world."""
    rng = world_rng(cfg, 3)
    clickbait = _clickbait_items(len(items.ids), cfg.clickbait_item_rate, rng)
    traffic, probs = _traffic_popularity(intents.holdout_mask, cfg.zipf_exponent, rng)
    top_weight = np.bincount(intents.top[traffic], weights=probs, minlength=len(items.tops)) + 1e-9
    users = _users(cfg.n_users, items, top_weight, rng)
    cand = intents.candidates
    return World(
        name=name,
        item_ids=items.ids,
        titles=items.titles,
        item_top=items.top,
        item_brand=items.brand,
        price=items.price,
        price_z=items.price_z,
        quality=items.quality,
        popularity=items.popularity,
        clickbait=clickbait,
        catalog=items.catalog,
        tops=items.tops,
        brands=items.brands,
        intent_text=list(intents.text),
        intent_kind=list(intents.kind),
        intent_top=np.asarray(intents.top, np.int32),
        intent_group=np.asarray(intents.group, np.int32),
        cand_items=cand.items,
        cand_grade=cand.grade,
        cand_base=cand.base,
        holdout_mask=intents.holdout_mask,
        traffic_intents=traffic,
        traffic_probs=probs,
        holdout=_holdout_table(intents, items.ids, real_judgments),
        user_segment=users.segment,
        user_price_sens=users.price_sens,
        user_brand_w=users.brand_w,
        user_click_bias=users.click_bias,
        user_fav_brands=users.fav_brands,
        user_pref_top=users.pref_top,
        user_activity=users.activity,
        user_anonymous=users.anonymous,
        user_client=users.client,
        user_ids=users.ids,
    )


def _uuid(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
