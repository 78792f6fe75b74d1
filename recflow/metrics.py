"""Evaluation metrics, computed in Spark (only the final aggregate row reaches the driver).

Ranking metrics (`ranking_metrics`) follow the Microsoft Recommenders definitions
(recommenders.evaluation.python_evaluation) so figures compare with theirs. Relevance is binary:
every test item of a user is relevant. Only the first K positions of a list count (rank <= K,
rank being the 1-based position in the user's list). The averages run over the users that have
test items; such a user without a list scores 0 on everything, and users with a list but no
test items are left out. (MS averages over the users present in both frames instead; the two
agree when every test user has a list, as the evaluate job ensures.) For a user with relevant
set R (|R| > 0) and hits H = the list's items within the top K that are in R:

- precision@K = |H| / K (K, not the list's length: a short list cannot reach 1).
- recall@K = |H| / |R|.
- ndcg@K = DCG / IDCG with DCG = sum over hits of 1 / log2(rank + 1) and IDCG the same sum
  over ranks 1..min(|R|, K) (the best list's DCG).
- map@K = (sum over hits, in rank order, of (hits so far) / rank) / min(|R|, K): MS's
  `map_at_k`, which since recommenders PR #2004 (fixing issue #1702; current
  recommenders-team/recommenders main, python_evaluation.py) divides by min(|R|, K), like
  Spark's RankingEvaluator "meanAveragePrecisionAtK". (MS's other function `map` divides by |R|.)
- hit_rate@K = share of users with at least one hit (|H| > 0).
- mrr@K = mean of 1 / (rank of the first hit), 0 for a user with no hit in the top K.
- f1@K = 2 P R / (P + R) from the averaged precision@K (P) and recall@K (R), 0 when both are 0.

All of these come out of one Spark job (`ranking_metrics`), cross-checked in the tests against
Spark's RankingEvaluator for precision, recall, NDCG and MAP.

Catalogue metrics (`catalogue_metrics`) judge the lists as a whole against the training data:

- coverage@K = distinct items in the top-K lists / distinct items in train (as MS's
  catalog_coverage): the share of the catalogue (what the model could recommend) that it does
  recommend. Above 1 only if the lists hold items train lacks.
- long_tail_share@K = share of the top-K recommendation rows whose item is in the long tail.
  The head is the most popular ceil(0.2 * n) of the n train items by number of train rows (ties:
  the lower item_idx is more popular); every other item, including one absent from train, is
  long tail.
"""

from __future__ import annotations

import math

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recflow.models.baselines import EXACT
from recflow.ordering import number_rows

# Share of the train items, the most popular ones, that make up the head in catalogue_metrics.
HEAD_SHARE = 0.2


def rating_metrics(
    predictions: DataFrame, label: str = "rating", prediction: str = "prediction"
) -> dict[str, float]:
    """RMSE, MSE and MAE in one pass."""
    error = F.col(prediction) - F.col(label)
    row = predictions.agg(
        _exact_sum(error * error).alias("se"), _exact_sum(F.abs(error)).alias("ae"), F.count("*").alias("n")
    ).first()
    if not row["n"]:
        raise ValueError("No predictions to evaluate: the test split shares no users and items with train")
    mse = float(row["se"]) / row["n"]
    return {"rmse": mse**0.5, "mse": mse, "mae": float(row["ae"]) / row["n"]}


def _exact_sum(column):
    """A sum that does not depend on the order rows arrive in: floating-point addition is not
    associative, and a shuffle's fetch order varies, so a plain sum can differ in its last bits
    between two runs on the same data. That would break idempotent re-runs (the published
    metrics change) and let a near-tie in the search go either way. Decimal addition is exact."""
    return F.sum(column.cast(EXACT))


def scorable(train: DataFrame, test: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(users, their test rows): the test users a model trained on `train` can score. Ranking
    metrics average over these, so every model of a run is judged on the same users."""
    users = test.select("user_idx").distinct().join(train.select("user_idx").distinct(), "user_idx")
    return users, test.join(users, "user_idx")


RANKING_NAMES = ("precision", "recall", "f1", "ndcg", "map", "hit_rate", "mrr")
_PER_USER = ("precision", "recall", "ndcg", "ap", "hit", "rr")


def ranking_metrics(top_k: DataFrame, test: DataFrame, k: int) -> dict[str, float]:
    """top_k(user_idx, item_idx, rank) against test(user_idx, item_idx): precision@k, recall@k,
    f1@k, ndcg@k, map@k, hit_rate@k and mrr@k as defined in the module docstring.

    One job, one shuffle: the list rows (rank <= k) and the test rows are unioned and
    partitioned by user, then grouped by (user, item) (a test item with its rank in the list, if
    listed; duplicates collapse), then by user (relevant count, hits, DCG, the hits' ranks),
    then into one row of averages.
    """
    per_user = _per_user_metrics(top_k, test, k, keys=[])
    return _averages(per_user.agg(*_sums()).first().asDict(), k)


def ranking_metrics_per(top_k: DataFrame, test: DataFrame, k: int, key: str, values: list) -> dict:
    """{value: ranking_metrics} for each of `values` of top_k's `key` column (one list per user
    and value: a blend, say), in one job. Every value is judged against every test user, so each
    figure equals ranking_metrics on that value's lists alone; a value without any list scores 0,
    as ranking_metrics on an empty top_k does. Each also has ndcg_se@k, the standard error of
    its NDCG (what the search's one-standard-error rule needs)."""
    # One row per value: a handful of blends, whatever the data's size.
    squares = _exact_sum(F.col("ndcg") * F.col("ndcg")).alias("ndcg_squares")
    per_user = per_user_metrics(top_k, test, k, keys=[key], values=values)
    rows = per_user.groupBy(key).agg(*_sums(), squares).collect()
    found = {row[key]: _averages(row.asDict(), k) | _ndcg_error(row, k) for row in rows}
    return {value: found.get(value, _averages({"n_users": 0}, k) | {f"ndcg_se@{k}": 0.0}) for value in values}


def _ndcg_error(row, k: int) -> dict[str, float]:
    """The standard error of the mean NDCG@k over the users (the sample standard deviation over
    the root of their count; 0 for fewer than two users): how far the mean could move on
    another draw of users, which tells a real difference between two settings from noise."""
    n = row["n_users"]
    if n < 2:
        return {f"ndcg_se@{k}": 0.0}
    total, squares = float(row["ndcg"]), float(row["ndcg_squares"])
    variance = max(squares - total * total / n, 0.0) / (n - 1)
    return {f"ndcg_se@{k}": math.sqrt(variance / n)}


def _sums() -> list:
    """What _averages divides: the exact per-user sums and the user count."""
    return [*[_exact_sum(F.col(c)).alias(c) for c in _PER_USER], F.count("*").alias("n_users")]


def ranking_metrics_by(
    top_k: DataFrame,
    test: DataFrame,
    k: int,
    groups: DataFrame,
    variant: str = "variant",
    group: str = "tier",
) -> dict[tuple[str, str], dict[str, float]]:
    """ranking_metrics for several lists at once, per user group, in one job.

    top_k(`variant`, user_idx, item_idx, rank) holds one list per user for every variant (model);
    groups(user_idx, `group`) puts each test user in one group (a tier). Returns
    {(variant, group): metrics} plus {(variant, "all"): metrics} over every test user, each with
    `n_users`, the users averaged over. Figures equal ranking_metrics run on one variant's lists
    and one group's test rows: every variant is judged against every test user."""
    per_user = per_user_metrics(top_k, test, k, keys=[variant])
    grouped = per_user.join(
        groups.select("user_idx", F.col(group).cast("string").alias("_group")), "user_idx"
    )
    stacked = grouped.unionByName(per_user.withColumn("_group", F.lit("all")))
    rows = stacked.groupBy(variant, "_group").agg(*_sums())
    return {
        (row[variant], row["_group"]): _averages(row.asDict(), k) | {"n_users": float(row["n_users"])}
        for row in rows.collect()
    }


def per_user_metrics(
    top_k: DataFrame, test: DataFrame, k: int, keys: list[str], values: list | None = None
) -> DataFrame:
    """One row per (keys..., user) with test items, the list's precision, recall, ndcg, ap (map),
    hit and rr at k: what ranking_metrics averages. top_k has the `keys` columns (a variant, say),
    and every key value is judged against every test user.

    `values` (one key only) names the key's values where the caller knows them. Taken from
    top_k's distinct values instead, an uncached top_k is computed twice in the one job: once
    for the values, once for the lists."""
    if values is not None:
        (key,) = keys
        kind = top_k.schema[key].dataType
        literal = F.explode(F.array(*[F.lit(v).cast(kind) for v in values])).alias(key)
        test = test.crossJoin(F.broadcast(top_k.sparkSession.range(1).select(literal)))
    elif keys:
        test = test.crossJoin(F.broadcast(top_k.select(*keys).distinct()))
    return _per_user_metrics(top_k, test, k, keys)


def _per_user_metrics(top_k: DataFrame, test: DataFrame, k: int, keys: list[str]) -> DataFrame:
    """One row per (keys..., user) with test items: its precision, recall, ndcg, ap, hit, rr."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    listed = top_k.where(F.col("rank") <= k).select(
        *keys, "user_idx", "item_idx", F.col("rank").cast("int").alias("rank"), F.lit(False).alias("relevant")
    )
    relevant = test.select(
        *keys, "user_idx", "item_idx", F.lit(None).cast("int").alias("rank"), F.lit(True).alias("relevant")
    )
    pairs = (
        listed.unionByName(relevant)
        # Partitioned by user, both groupBys below need no further shuffle.
        .repartition("user_idx")
        .groupBy(*keys, "user_idx", "item_idx")
        .agg(F.max("relevant").alias("relevant"), F.min("rank").alias("rank"))
    )
    hit_rank = F.when(F.col("relevant"), F.col("rank"))  # null unless a relevant item is listed
    users = (
        pairs.groupBy(*keys, "user_idx")
        .agg(
            F.count_if("relevant").alias("n_relevant"),
            F.count(hit_rank).alias("hits"),
            F.min(hit_rank).alias("first_hit"),
            F.array_sort(F.collect_list(hit_rank)).alias("hit_ranks"),
        )
        .where(F.col("n_relevant") > 0)
    )
    # IDCG for m = min(|R|, k) relevant items: sum of 1/log2(i + 1) for i = 1..m, looked up.
    ideal = F.array(*[F.lit(v) for v in _ideal_dcg(k)])
    cutoff = F.least(F.col("n_relevant"), F.lit(k)).cast("int")
    # Average precision: the i-th hit (1-based) at rank r adds i / r.
    precision_sum = F.aggregate(
        F.transform("hit_ranks", lambda r, i: (i + 1) / r), F.lit(0.0), lambda acc, x: acc + x
    )
    # Summed over the sorted hit ranks, so each user's DCG is the same whatever the row order.
    dcg = F.aggregate(
        F.transform("hit_ranks", lambda r: 1.0 / F.log2(r + 1.0)), F.lit(0.0), lambda acc, x: acc + x
    )
    return users.select(
        *keys,
        "user_idx",
        (F.col("hits") / k).alias("precision"),
        (F.col("hits") / F.col("n_relevant")).alias("recall"),
        (dcg / F.element_at(ideal, cutoff)).alias("ndcg"),
        (precision_sum / cutoff).alias("ap"),
        (F.col("hits") > 0).cast("double").alias("hit"),
        F.coalesce(1.0 / F.col("first_hit"), F.lit(0.0)).alias("rr"),
    )


def _averages(sums: dict, k: int) -> dict[str, float]:
    """The metrics at k from the exact per-user sums and the user count (all 0 without users)."""
    if not sums["n_users"]:
        return {f"{name}@{k}": 0.0 for name in RANKING_NAMES}
    row = {c: float(sums[c]) / sums["n_users"] for c in _PER_USER}
    p, r = row["precision"], row["recall"]
    return {
        f"precision@{k}": p,
        f"recall@{k}": r,
        f"f1@{k}": 2 * p * r / (p + r) if p + r > 0 else 0.0,
        f"ndcg@{k}": row["ndcg"],
        f"map@{k}": row["ap"],
        f"hit_rate@{k}": row["hit"],
        f"mrr@{k}": row["rr"],
    }


def catalogue_metrics(top_k: DataFrame, train: DataFrame, k: int) -> dict[str, float]:
    """coverage@k and long_tail_share@k of the lists top_k(user_idx, item_idx, rank), rank <= k,
    against train(user_idx, item_idx), as defined in the module docstring. One job; 0.0 for
    either when its denominator is empty.

    The train items are ranked by popularity in parallel (recflow.ordering), not in one task."""
    popularity = train.groupBy("item_idx").agg(F.count(F.lit(1)).alias("train_rows"))
    ranked = number_rows(popularity, [F.desc("train_rows"), F.col("item_idx")], "_position")
    head_size = math.ceil(popularity.count() * HEAD_SHARE)
    catalogue = ranked.select(
        "item_idx", F.lit(True).alias("in_train"), (F.col("_position") < head_size).alias("in_head")
    )
    recommended = top_k.where(F.col("rank") <= k).groupBy("item_idx").agg(F.count(F.lit(1)).alias("rec_rows"))
    row = (
        recommended.join(catalogue, "item_idx", "full_outer")
        .agg(
            F.count_if(F.col("in_train")).alias("n_items"),
            F.count("rec_rows").alias("n_recommended"),
            F.sum("rec_rows").alias("rec_rows"),
            F.sum(F.when(~F.coalesce(F.col("in_head"), F.lit(False)), F.col("rec_rows"))).alias("tail_rows"),
        )
        .first()
    )
    rec_rows = row["rec_rows"] or 0
    return {
        f"coverage@{k}": row["n_recommended"] / row["n_items"] if row["n_items"] else 0.0,
        f"long_tail_share@{k}": (row["tail_rows"] or 0) / rec_rows if rec_rows else 0.0,
    }


def _ideal_dcg(k: int) -> list[float]:
    """[IDCG with m relevant items for m = 1..k]: cumulative sums of 1 / log2(i + 1)."""
    sums, total = [], 0.0
    for i in range(1, k + 1):
        total += 1.0 / math.log2(i + 1)
        sums.append(total)
    return sums
