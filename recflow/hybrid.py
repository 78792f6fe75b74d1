"""The hybrid recommender: ALS and content scores blended per user tier, business rules, reasons.

Every user is scored against the whole catalogue at once on the executors (`mapInPandas`), with
the catalogue's matrices broadcast: ALS item factors (rank columns), content vectors (sparse
TF-IDF, recflow.content) and a few per-item flags. That is one matrix-vector product per user
and model, where a users x items cross join in Spark would shuffle every pair.

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

# Content neighbours a new item's ALS factor is folded in from.
FOLD_IN_NEIGHBOURS = 10
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
    FOLD_IN_NEIGHBOURS closest items (by content) that have one, in place."""
    missing = np.flatnonzero(~has)
    known = np.flatnonzero(has)
    if not len(missing) or not len(known):
        return
    sims = (content[missing] @ content[known].T).toarray()
    for row, item in enumerate(missing):
        top = np.argsort(-sims[row], kind="stable")[:FOLD_IN_NEIGHBOURS]
        weights = sims[row, top]
        top, weights = top[weights > 0], weights[weights > 0]
        if len(top):
            vectors[item] = weights @ vectors[known[top]] / weights.sum()


def _minmax(scores: np.ndarray) -> np.ndarray:
    low, high = scores.min(), scores.max()
    return (scores - low) / (high - low) if high > low else np.zeros_like(scores)


def user_scores(cat: Catalogue, factor, history: np.ndarray, weights: np.ndarray, blend: float):
    """(als scores or None, content scores) of one user over the catalogue."""
    als = None
    if factor is not None and cat.factors is not None:
        als = cat.factors @ np.asarray(factor, dtype=np.float64) + blend * cat.popularity
    content = np.zeros(cat.size)
    if len(history):
        profile = np.asarray(cat.content[history].T @ weights).ravel()
        norm = np.linalg.norm(profile)
        if norm > 0:
            content = np.asarray(cat.content @ (profile / norm)).ravel()
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
    order = np.lexsort((np.arange(cat.size), -(scores + TIE_BREAK * cat.popularity)))
    seen = set(history.tolist())
    own_blocks = policy.user_blocks.get(user_key, ())
    accepted, removed, deferred = [], [], []
    per_category: dict[int, int] = {}
    for pos in order.tolist():
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
    history = np.asarray(row.history if row.history is not None else [], dtype=np.int64)
    weights = np.asarray(row.weights if row.weights is not None else [], dtype=np.float64)
    als, content = user_scores(cat, row.factor, history, weights, policy.blend)
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
    shared = users.sparkSession.sparkContext.broadcast((catalogue, policy, variants))

    def run(batches):
        cat, pol, names = shared.value
        for batch in batches:
            rows = []
            for row in batch.itertuples(index=False):
                own = {name: (row.weight if weight is None else weight) for name, weight in names.items()}
                rows += [(row.user_key, *r) for r in score_user(cat, pol, row, own)]
            yield pd.DataFrame(rows, columns=OUTPUT.fieldNames())

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
