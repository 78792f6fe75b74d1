"""Spark MLlib ALS as RecFlow trains it.

Two models, each a pure function of a training frame and a hyperparameter dict:
- the ranker: implicit ALS (Hu, Koren, Volinsky 2008), ratings or event weights read as
  confidence 1 + alpha * r, its scores blended with log-scaled popularity (`blend`). On
  MovieLens 100K the blend alone lifts NDCG@10 by about 0.01-0.04 (benchmarks/quality.py): ALS
  spends its rank on taste and under-weights how much everybody likes the head of the catalogue;
- the rating model: explicit ALS for predicted stars, blended with the bias-only baseline by
  least squares on a validation split (recflow.models.rating).

Hyperparameters travel as plain dicts (Param names: rank, reg_param, alpha, max_iter, blend;
rating_rank, rating_reg_param, rating_max_iter) so that what the search chose is recorded with
the model as it is.
"""

from __future__ import annotations

from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recflow.recommend import CandidateGroups, top_ranked, union_all, unseen
from recflow.spark import cores

RANKER_KEYS = ("rank", "reg_param", "alpha", "max_iter", "blend")
RATING_KEYS = ("rating_rank", "rating_reg_param", "rating_max_iter")
# Items scored per user beyond k + what that user has seen: the blend can only re-order the
# candidates ALS proposes, so it gets some room to lift a popular item into the top k.
BLEND_MARGIN = 100


def blocks(spark) -> int:
    """ALS's user and item blocks: one per core Spark runs tasks on. ALS's own default is 10
    whatever the cluster, which on 2 cores runs each iteration as 10 x 10 small block pairs
    that wait for each other: on 1M generated ratings (rank 64, 15 iterations, local[2]) a fit
    took 21.5 s with 10 blocks and 15.3 s with 2 (16.7 s with 4)."""
    return cores(spark)


def _als(spark, **settings) -> ALS:
    n = blocks(spark)
    return ALS(
        userCol="user_idx",
        itemCol="item_idx",
        ratingCol="rating",
        # Users or items only in the test split get NaN predictions; drop them so the
        # evaluation metrics are not NaN.
        coldStartStrategy="drop",
        # Truncates the lineage every few iterations (needs the checkpoint directory that
        # recflow.spark.get_spark sets), else long runs die with StackOverflowError.
        checkpointInterval=5,
        numUserBlocks=n,
        numItemBlocks=n,
        **settings,
    )


def fit_ranker(prefs: DataFrame, params: dict, seed: int, implicit: bool = True) -> ALSModel:
    """ALS on prefs(user_idx, item_idx, rating). implicit=False fits the rating values instead
    (the `feedback="explicit"` Param), which ranks far worse but is what some users ask for."""
    return _als(
        prefs.sparkSession,
        rank=int(params["rank"]),
        maxIter=int(params["max_iter"]),
        regParam=float(params["reg_param"]),
        alpha=float(params["alpha"]),
        implicitPrefs=implicit,
        seed=seed,
    ).fit(prefs)


def fit_explicit(ratings: DataFrame, params: dict, seed: int) -> ALSModel:
    """Explicit ALS (ALS-WR: regParam scaled by each user's and item's rating count)."""
    return _als(
        ratings.sparkSession,
        rank=int(params["rating_rank"]),
        maxIter=int(params["rating_max_iter"]),
        regParam=float(params["rating_reg_param"]),
        seed=seed,
    ).fit(ratings)


def ranker_candidates(model: ALSModel, groups: CandidateGroups) -> DataFrame:
    """(user_idx, item_idx, als_score) for each user's best ALS items, enough of them that k
    unseen ones remain after the blend re-orders them (groups: recflow.recommend.candidate_groups
    with margin BLEND_MARGIN). recommendForUserSubset scores with blocked matrix products in the
    JVM, far cheaper than a users x items cross join; one call per group."""
    n_items = model.itemFactors.count()
    scored = union_all(
        [
            model.recommendForUserSubset(users, n).select("user_idx", F.explode("recommendations").alias("r"))
            for n, users in groups.each(n_items)
        ]
    )
    return scored.select(
        "user_idx", F.col("r.item_idx").alias("item_idx"), F.col("r.rating").alias("als_score")
    )


def blended_top_k(
    candidates: DataFrame, popularity: DataFrame, seen: DataFrame, blend: float, k: int
) -> DataFrame:
    """score = als_score + blend * popularity -> top k unseen per user (user_idx, item_idx,
    score, rank, als_score, popularity_score), the last two being the score's parts. Items
    without a popularity (not in train) add nothing."""
    return blended_top_ks(candidates, popularity, seen, [blend], k).drop("blend")


def blended_top_ks(
    candidates: DataFrame, popularity: DataFrame, seen: DataFrame, blends: list[float], k: int
) -> DataFrame:
    """blended_top_k at every blend of `blends` in one job, each row tagged with its `blend`.
    The seen items go once, before the lists multiply. The search scores five blends per trial;
    at 20M ratings (2.1M in the fit rows of the 20,000-user sample) one job took 85 s against
    106 s for five (medians of 2, one fitted model), more than the trial's ALS fit either way."""
    blend = F.explode(F.array(*[F.lit(float(b)) for b in blends])).alias("blend")
    tagged = (
        unseen(candidates, seen)
        .join(F.broadcast(popularity), "item_idx", "left")
        .select(
            "user_idx", "item_idx", "als_score", F.coalesce("popularity", F.lit(0.0)).alias("_pop"), blend
        )
    )
    popularity_score = F.col("blend") * F.col("_pop")
    scored = tagged.select(
        "blend",
        "user_idx",
        "item_idx",
        (F.col("als_score") + popularity_score).alias("score"),
        "als_score",
        popularity_score.alias("popularity_score"),
    )
    return top_ranked(scored, k, keys=("blend",))
