"""The hybrid recommender: ALS and content scores blended per user tier, business rules, reasons.

Users are scored against the whole catalogue on the executors (`mapInPandas`), with the
catalogue's matrices broadcast: ALS item factors (rank columns), content vectors (sparse TF-IDF,
recflow.content) and a few per-item flags. A block of users is one matrix product per model
(as many users as keep a block's scores near BLOCK_BYTES), where a users x items cross join in
Spark would shuffle every pair; each list then sorts only the best few candidates it needs
(`best_first`), never the whole catalogue.

Per user, with history H (the items the user interacted with, weights w_j):
- als(i)     = u . v_i + blend * popularity(i), the published ALS ranker's score. An item ALS
  never saw (new in the catalogue, or dropped by minimum support) gets a factor folded in from
  its content neighbours (the similarity-weighted mean of their factors), so a new item can be
  recommended from the day it appears;
- content(i) = cos(profile, x_i), the profile being sum_j w_j x_j over H, normalised: the
  user's content profile;
- hybrid(i)  = (1 - a) * minmax(als) + a * minmax(content), `a` the content weight of the
  user's tier, tuned on validation data (recflow.tuning's validation split, `tune_weights`).
  a = 0 is ALS alone, a = 1 content alone; a user ALS has no factor for gets content alone.
Users without history get the popularity of their segment (MovieLens demographics), else the
overall popularity.

The business rules run after scoring, walking each user's candidates best first until k are
accepted; each removed candidate is emitted with the rule that removed it, so the run can log
how many would-be recommendations every rule removed:
  seen (always) -> blocklist (warehouse table, for everyone or one user) -> availability
  (optional: items with an interaction in the data's last N days) -> diversity (at most N per
  category; relaxed, in score order, only when a list cannot otherwise reach k).
Every recommendation keeps the history item that explains it: for ALS the user's own item
closest to it in factor space, for content the closest in content ("because you rated X").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recflow.similarity import block_top_k, default_block_rows
from recflow.spark import share

# Content neighbours a new item's ALS factor is folded in from.
FOLD_IN_NEIGHBOURS = 10
# Bytes of one block of users' dense scores (users x items float64), per model.
BLOCK_BYTES = 16 * 1024 * 1024
# Popularity breaks ties (and orders items no model can score) without changing real orderings.
TIE_BREAK = 1e-9

OUTPUT = T.StructType(
    [
        T.StructField("user_key", T.StringType()),
        T.StructField("variant", T.StringType()),
        T.StructField("rank", T.IntegerType()),
        T.StructField("pos", T.IntegerType()),
        T.StructField("score", T.DoubleType()),
        T.StructField("source", T.StringType()),
        T.StructField("reason_pos", T.IntegerType()),
        T.StructField("removed_by", T.StringType()),
    ]
)


@dataclass
class Catalogue:
    """The items as the scorer sees them, by position 0..n-1 (sorted by item_idx, items without
    one last by item_id). Built on the driver, broadcast to the executors."""

    item_id: np.ndarray  # object: the source's ids
    item_idx: np.ndarray  # int64, -1 for an item no model has an index for
    factors: np.ndarray | None  # n x rank float64 (folded in where missing), None: no ALS
    factor_norm: np.ndarray | None  # unit rows of factors, for the reasons
    content: object  # scipy.sparse CSR n x d, unit rows (zero rows: no attributes)
    popularity: np.ndarray  # float64 in [0, 1]
    category: np.ndarray  # int64 code for the diversity cap, -1 unknown
    available: np.ndarray  # bool
    blocked: np.ndarray  # bool: blocked for every user
    segments: dict = field(default_factory=dict)  # segment -> float64 scores (popularity within it)

    @property
    def size(self) -> int:
        return len(self.item_id)


@dataclass(frozen=True)
class Policy:
    """How lists are cut: k, the ALS popularity blend, and the business rules' settings."""

    k: int
    blend: float
    max_per_category: int = 0  # 0: no diversity cap
    availability: bool = False
    user_blocks: dict = field(default_factory=dict)  # user_key -> positions blocked for that user
    reasons: bool = True


def build_catalogue(
    items: pd.DataFrame,
    content_ids: np.ndarray,
    content_matrix,
    factors: pd.DataFrame | None,
    popularity: pd.DataFrame,
    blocked_ids: set | None = None,
    available_ids: set | None = None,
    segments: dict[str, pd.DataFrame] | None = None,
) -> Catalogue:
    """items(item_id, item_idx nullable, category nullable); the content matrix's rows in
    content_ids order (recflow.similarity.collect_matrix); factors(id, features) of an ALS model;
    popularity(item_idx, popularity); segments: name -> (item_idx, score)."""
    from scipy import sparse

    items = items.assign(_idx=items["item_idx"].fillna(-1).astype("int64"))
    items = items.assign(_missing=items["_idx"] < 0).sort_values(
        ["_missing", "_idx", "item_id"], kind="stable"
    )
    item_id = items["item_id"].to_numpy(dtype=object)
    item_idx = items["_idx"].to_numpy()
    n = len(item_id)
    by_idx = {int(i): p for p, i in enumerate(item_idx) if i >= 0}

    row_of = {key: r for r, key in enumerate(content_ids.tolist())}
    content_matrix = sparse.csr_matrix(content_matrix, dtype=np.float64)
    zero = content_matrix.shape[0]  # an extra all-zero row for items without content
    padded = sparse.vstack([content_matrix, sparse.csr_matrix((1, content_matrix.shape[1]))]).tocsr()
    content = padded[[row_of.get(key, zero) for key in item_id]]

    pop = _by_position(by_idx, popularity["item_idx"], popularity["popularity"], n)[0]

    vectors = vectors_norm = None
    if factors is not None and len(factors):
        vectors, has = _by_position(by_idx, factors["id"], np.stack(factors["features"].to_numpy()), n)
        _fold_in(vectors, has, content)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors_norm = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)

    codes = {value: c for c, value in enumerate(sorted(set(items["category"].dropna())))}
    category = np.array(
        [codes.get(v, -1) if isinstance(v, str) else -1 for v in items["category"]], dtype=np.int64
    )
    available = np.ones(n, dtype=bool) if available_ids is None else np.isin(item_id, list(available_ids))
    blocked = np.isin(item_id, list(blocked_ids or ()))
    segment_scores = {
        name: _by_position(by_idx, frame["item_idx"], frame["score"], n)[0]
        for name, frame in (segments or {}).items()
    }
    return Catalogue(
        item_id, item_idx, vectors, vectors_norm, content, pop, category, available, blocked, segment_scores
    )


def _by_position(by_idx: dict, item_idx, values, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(values laid out by catalogue position, zeros elsewhere; which positions got one), for
    per-item values keyed by item_idx (a vector each, or a number); unknown item_idx are dropped."""
    values = np.asarray(values, dtype=np.float64)
    found = [(by_idx[int(i)], row) for row, i in enumerate(item_idx) if int(i) in by_idx]
    out, has = np.zeros((n, *values.shape[1:])), np.zeros(n, dtype=bool)
    if found:
        at, rows = map(list, zip(*found, strict=True))
        out[at], has[at] = values[rows], True
    return out, has


def _fold_in(vectors: np.ndarray, has: np.ndarray, content) -> None:
    """Give each item without a factor the similarity-weighted mean factor of its
    FOLD_IN_NEIGHBOURS closest items (by content) that have one, in place. Blockwise: one block
    of missing items against the known ones at a time, so memory stays near one block however
    many items are new (all of them missing x known would be 60 GB at 50,000 x 150,000)."""
    missing = np.flatnonzero(~has)
    known = np.flatnonzero(has)
    if not len(missing) or not len(known):
        return
    known_t = content[known].T.tocsr()
    rows_per_block = default_block_rows(len(known))
    for start in range(0, len(missing), rows_per_block):
        block = missing[start : start + rows_per_block]
        sims = (content[block] @ known_t).toarray()
        rows, neighbours, weights, _ = block_top_k(
            sims, np.arange(len(block)), FOLD_IN_NEIGHBOURS, self_scores=False
        )
        total = np.zeros((len(block), vectors.shape[1]))
        np.add.at(total, rows, weights[:, None] * vectors[known[neighbours]])
        weight_sum = np.bincount(rows, weights=weights, minlength=len(block))
        got = weight_sum > 0
        vectors[block[got]] = total[got] / weight_sum[got, None]


def _minmax(scores: np.ndarray) -> np.ndarray:
    low, high = scores.min(), scores.max()
    return (scores - low) / (high - low) if high > low else np.zeros_like(scores)


def user_scores(cat: Catalogue, factor, history: np.ndarray, weights: np.ndarray, blend: float):
    """(als scores or None, content scores) of one user over the catalogue."""
    als, content = block_scores(cat, [factor], [history], [weights], blend)
    return (None if als[0] is None else als[0]), content[0]


def block_scores(cat: Catalogue, factors: list, histories: list, weights: list, blend: float):
    """Scores of a block of users over the catalogue, one matrix product per model ->
    (per user: als scores or None, content scores n x float64 matrix, a row per user)."""
    from scipy import sparse

    b = len(histories)
    als: list = [None] * b
    with_factor = [i for i, f in enumerate(factors) if f is not None]
    if with_factor and cat.factors is not None:
        user_factors = np.asarray([factors[i] for i in with_factor], dtype=np.float64)
        block = user_factors @ cat.factors.T + blend * cat.popularity
        for row, i in enumerate(with_factor):
            als[i] = block[row]
    lengths = [len(h) for h in histories]
    taste = sparse.csr_matrix(
        (
            np.concatenate([np.asarray(w, dtype=np.float64) for w in weights]) if b else np.zeros(0),
            np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
            if b
            else np.zeros(0, np.int64),
            np.concatenate([[0], np.cumsum(lengths)]),
        ),
        shape=(b, cat.size),
    )
    profiles = taste @ cat.content  # sum_j w_j x_j over each history
    norms = np.sqrt(np.asarray(profiles.multiply(profiles).sum(axis=1)).ravel())
    unit = sparse.diags(np.divide(1.0, norms, out=np.zeros(b), where=norms > 0)) @ profiles
    content = np.asarray((unit @ cat.content.T).todense()).reshape(b, cat.size)
    return als, content


def blend_scores(als, content: np.ndarray, weight: float) -> tuple[np.ndarray, str]:
    """(scores, source) of a content weight `weight` in [0, 1]."""
    if als is None or weight >= 1.0:
        return content, "content"
    if weight <= 0.0:
        return als, "als"
    return (1.0 - weight) * _minmax(als) + weight * _minmax(content), "hybrid"


def select(cat: Catalogue, scores: np.ndarray, history: np.ndarray, policy: Policy, user_key: str):
    """Walk the candidates best first through the rules -> (accepted positions, [(pos, rule)] removed)."""
    key = -(scores + TIE_BREAK * cat.popularity)
    seen = set(history.tolist())
    own_blocks = policy.user_blocks.get(user_key, ())
    accepted, removed, deferred = [], [], []
    per_category: dict[int, int] = {}
    wanted = 2 * policy.k + len(seen) + len(own_blocks) + int(cat.blocked.sum())
    for pos in _walk(key, wanted):
        if len(accepted) == policy.k:
            break
        if pos in seen:
            removed.append((pos, "seen"))
        elif cat.blocked[pos] or pos in own_blocks:
            removed.append((pos, "blocklist"))
        elif policy.availability and not cat.available[pos]:
            removed.append((pos, "availability"))
        elif (
            policy.max_per_category
            and cat.category[pos] >= 0
            and per_category.get(cat.category[pos], 0) >= policy.max_per_category
        ):
            deferred.append(pos)
        else:
            accepted.append(pos)
            if cat.category[pos] >= 0:
                per_category[cat.category[pos]] = per_category.get(cat.category[pos], 0) + 1
    # The cap yields rather than leave a list short: the best deferred items fill it, in order.
    shortfall = policy.k - len(accepted)
    refill, dropped = deferred[:shortfall], deferred[shortfall:]
    if refill:
        accepted = sorted(accepted + refill, key=lambda p: -(scores[p] + TIE_BREAK * cat.popularity[p]))
    removed += [(pos, "diversity") for pos in dropped]
    return accepted, removed


def best_first(key: np.ndarray, m: int) -> np.ndarray:
    """The positions of the m smallest keys, ordered by (key, position): the same first m a full
    lexsort gives (ties at the m-th key are all taken, so the order is exact), found in O(n)."""
    if m >= len(key):
        return np.lexsort((np.arange(len(key)), key))
    cut = np.partition(key, m - 1)[m - 1]
    top = np.flatnonzero(key <= cut)
    return top[np.lexsort((top, key[top]))]


def _walk(key: np.ndarray, m: int):
    """Positions in best_first order, sorted m at a time: the rules usually accept k of the
    first k + |history| + a few, and a list that needs more (a blocklist, the availability rule)
    sorts four times as many, and so on."""
    done = 0
    while True:
        order = best_first(key, m)
        yield from order[done:].tolist()
        if len(order) >= len(key):
            return
        done, m = len(order), 4 * m


def reason_item(cat: Catalogue, pos: int, history: np.ndarray, by: str) -> int:
    """The user's own item closest to `pos`: in ALS factor space (by="als") or content, -1 if none."""
    if not len(history):
        return -1
    if by == "als" and cat.factor_norm is not None:
        sims = cat.factor_norm[history] @ cat.factor_norm[pos]
    else:
        sims = np.asarray((cat.content[history] @ cat.content[pos].T).todense()).ravel()
    best = int(np.argmax(sims))
    return int(history[best]) if sims[best] > 0 else -1


def score_user(cat: Catalogue, policy: Policy, row, variants: dict[str, float]) -> list[tuple]:
    """Output rows (OUTPUT without user_key) of one user for each variant (name -> content weight;
    a negative weight names a popularity list: -1 overall, else the user's `segment`)."""
    return score_users(cat, policy, [row], [variants])[0]


def score_users(cat: Catalogue, policy: Policy, rows: list, variants: list[dict[str, float]]) -> list[list]:
    """score_user of a block of users, their scores computed as one matrix product per model."""
    histories = [np.asarray(r.history if r.history is not None else [], dtype=np.int64) for r in rows]
    weights = [np.asarray(r.weights if r.weights is not None else [], dtype=np.float64) for r in rows]
    als, content = block_scores(cat, [r.factor for r in rows], histories, weights, policy.blend)
    return [
        _lists(cat, policy, row, own, histories[i], als[i], content[i])
        for i, (row, own) in enumerate(zip(rows, variants, strict=True))
    ]


def _lists(cat: Catalogue, policy: Policy, row, variants: dict, history, als, content) -> list[tuple]:
    out = []
    for variant, weight in variants.items():
        if not len(history) or weight is None or not weight >= 0:  # no history, NaN, or a popularity list
            segment = getattr(row, "segment", None)
            if isinstance(segment, str) and segment in cat.segments and variant != "popularity":
                scores, source = cat.segments[segment], "segment_popular"
            else:
                scores, source = cat.popularity, "popular"
        else:
            scores, source = blend_scores(als, content, weight)
        accepted, removed = select(cat, scores, history, policy, row.user_key)
        # Which part of each score dominates decides the space the reason is looked up in.
        content_led = None
        if policy.reasons and source == "hybrid":
            content_led = weight * _minmax(content) > (1 - weight) * _minmax(als)
        for rank, pos in enumerate(accepted, start=1):
            why = -1
            if policy.reasons and source in ("als", "hybrid", "content"):
                led = source == "content" or (content_led is not None and content_led[pos])
                why = reason_item(cat, pos, history, "content" if led else "als")
            out.append((variant, rank, pos, float(scores[pos]), source, why, None))
        out += [(variant, None, pos, float(scores[pos]), source, None, rule) for pos, rule in removed]
    return out


def recommend_all(
    users: DataFrame, catalogue: Catalogue, policy: Policy, variants: dict[str, float]
) -> DataFrame:
    """users(user_key string, history array<int> positions, weights array<double>, factor
    array<float> or null, weight double or null, segment string or null) -> OUTPUT rows: each
    user's accepted items (rank 1..k, removed_by null) and the candidates the rules removed
    (rank null, removed_by the rule). A variant weight of None uses the row's own `weight` (its
    tier's tuned content weight)."""
    shared = share(users.sparkSession, (catalogue, policy, variants))
    users_per_block = max(1, BLOCK_BYTES // (8 * max(catalogue.size, 1)))

    def run(batches):
        cat, pol, names = shared.value
        for batch in batches:
            rows = list(batch.itertuples(index=False))
            out = []
            for start in range(0, len(rows), users_per_block):
                block = rows[start : start + users_per_block]
                own = [
                    {name: (row.weight if weight is None else weight) for name, weight in names.items()}
                    for row in block
                ]
                for row, lists in zip(block, score_users(cat, pol, block, own), strict=True):
                    out += [(row.user_key, *r) for r in lists]
            yield pd.DataFrame(out, columns=OUTPUT.fieldNames())

    columns = ["user_key", "history", "weights", "factor", "weight", "segment"]
    present = [F.col(c) if c in users.columns else F.lit(None).alias(c) for c in columns]
    return users.select(*present).mapInPandas(run, OUTPUT)


def positions(catalogue: Catalogue) -> pd.DataFrame:
    """pos -> (item_id, item_idx) of the catalogue, for joining the scorer's output back."""
    return pd.DataFrame(
        {
            "pos": np.arange(catalogue.size, dtype=np.int32),
            "item_id": catalogue.item_id,
            "item_idx": catalogue.item_idx,
        }
    )
