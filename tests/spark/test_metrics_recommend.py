"""Metrics, top-K ranking and the train/test split on inputs small enough to check by hand."""

from __future__ import annotations

import math
import statistics

import pytest
from pyspark.sql import functions as F

from recflow.metrics import per_user_metrics, ranking_metrics, ranking_metrics_per, rating_metrics
from recflow.models.als import BLEND_MARGIN, blended_top_k, blended_top_ks, fit_ranker, ranker_candidates
from recflow.recommend import candidate_groups, popularity_top_k, rank_unseen
from recflow.split import random_split

pytestmark = pytest.mark.spark


def test_rating_metrics_by_hand(spark):
    predictions = spark.createDataFrame(
        [(4.0, 3.5), (3.0, 3.0), (5.0, 3.0)], "rating double, prediction double"
    )
    metrics = rating_metrics(predictions)
    # errors -0.5, 0, -2 -> squared 0.25, 0, 4; absolute 0.5, 0, 2
    assert metrics["mse"] == pytest.approx(4.25 / 3)
    assert metrics["rmse"] == pytest.approx(math.sqrt(4.25 / 3))
    assert metrics["mae"] == pytest.approx(2.5 / 3)


def test_rating_metrics_refuse_an_empty_frame(spark):
    empty = spark.createDataFrame([], "rating double, prediction double")
    with pytest.raises(ValueError, match="No predictions"):
        rating_metrics(empty)


def test_ranking_metrics_by_hand(spark):
    top_k = spark.createDataFrame(
        [
            # user 1: rank 1 is a miss (90), rank 2 a hit (20). Listed out of order, and sorting
            # by item instead of rank would put the hit first.
            (1, 20, 2), (1, 90, 1),
            # user 2: a hit at rank 1.
            (2, 50, 1), (2, 60, 2),
            # user 4 has a list but no test items: not averaged in.
            (4, 70, 1), (4, 71, 2),
        ],
        "user_idx int, item_idx int, rank int",
    )  # fmt: skip
    test = spark.createDataFrame(
        [(1, 20), (1, 30), (1, 40), (2, 50), (3, 70)],  # user 3 has test items but no list: all zeros
        "user_idx int, item_idx int",
    )
    metrics = ranking_metrics(top_k, test, k=2)

    # Precision@2 = hits / 2:           user 1: 1/2, user 2: 1/2, user 3: 0
    assert metrics["precision@2"] == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)
    # Recall@2 = hits / test items:     user 1: 1/3, user 2: 1/1, user 3: 0/1
    assert metrics["recall@2"] == pytest.approx((1 / 3 + 1 + 0) / 3)
    # NDCG@2 = DCG / ideal DCG, gain 1/log2(rank + 1):
    #   user 1: hit at rank 2 -> 1/log2(3); ideal (3 relevant, 2 slots) 1/log2(2) + 1/log2(3)
    #   user 2: hit at rank 1 -> 1; ideal (1 relevant) 1
    #   user 3: nothing -> 0
    user_1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert metrics["ndcg@2"] == pytest.approx((user_1 + 1 + 0) / 3)
    # MAP@2 = sum of precision at each hit / min(relevant, 2): user 1: (1/2)/2, user 2: 1/1
    assert metrics["map@2"] == pytest.approx((1 / 4 + 1 + 0) / 3)


def test_rank_unseen_drops_seen_items_and_breaks_ties_by_item(spark):
    candidates = spark.createDataFrame(
        [
            (1, 1, 0.9), (1, 4, 0.5), (1, 2, 0.5), (1, 3, 0.5), (1, 5, 0.1),
            (2, 7, 0.3), (2, 8, 0.8), (2, 9, 0.6),
        ],
        "user_idx int, item_idx int, score double",
    )  # fmt: skip
    seen = spark.createDataFrame([(1, 1), (2, 8), (3, 1)], "user_idx int, item_idx int")
    ranked = rank_unseen(candidates, seen, k=2).orderBy("user_idx", "rank").collect()
    assert [(r["user_idx"], r["item_idx"], r["rank"], r["score"]) for r in ranked] == [
        # item 1 (the best) was seen; items 2, 3, 4 tie at 0.5 and the lowest ids win.
        (1, 2, 1, 0.5),
        (1, 3, 2, 0.5),
        # item 8 was seen by user 2 only, so it is gone for user 2.
        (2, 9, 1, 0.6),
        (2, 7, 2, 0.3),
    ]


def test_rank_unseen_is_stable_across_partitionings(spark):
    rows = [(u, i, float((u * 7 + i) % 3)) for u in range(5) for i in range(20)]
    candidates = spark.createDataFrame(rows, "user_idx int, item_idx int, score double")
    seen = spark.createDataFrame([(u, u) for u in range(5)], "user_idx int, item_idx int")

    def top(df):
        return sorted(
            tuple(r) for r in rank_unseen(df, seen, k=4).select("user_idx", "item_idx", "rank").collect()
        )

    assert top(candidates) == top(candidates.repartition(5, "item_idx").orderBy(F.rand(1)))


def _with_a_bot(spark, n_items=400, bot_seen=300):
    """Twenty users with a few items each, and one bot (user 99) that has seen most items."""
    rows = [(u, (u * 7 + j) % n_items) for u in range(20) for j in range(3)]
    rows += [(99, i) for i in range(bot_seen)]
    rows += [(100 + i % 20, i) for i in range(n_items)]  # every item has someone
    return spark.createDataFrame([(u, i, 1.0) for u, i in rows], "user_idx int, item_idx int, rating double")


def test_one_heavy_user_does_not_raise_other_users_candidate_counts(spark):
    seen = _with_a_bot(spark)
    users = seen.select("user_idx").distinct()
    groups = candidate_groups(users, seen, k=10, margin=5)
    n = {r["user_idx"]: r["n"] for r in groups.users.collect()}
    # A light user needs 10 + 3 (+ 5): rounded up to a power of two, never to the bot's 315.
    assert n[0] == 32
    assert n[99] >= 10 + 300 + 5
    assert n[99] <= 2 * (10 + 300 + 5)
    assert len(groups.sizes) <= 3
    groups.unpersist()


def test_every_user_gets_k_unseen_items_when_one_user_has_seen_most_of_them(spark):
    train = _with_a_bot(spark, n_items=400, bot_seen=390).cache()
    users = train.select("user_idx").distinct()
    k = 10
    groups = candidate_groups(users, train, k, BLEND_MARGIN)
    model = fit_ranker(train, {"rank": 4, "max_iter": 3, "reg_param": 0.1, "alpha": 1.0}, seed=1)
    pop = train.groupBy("item_idx").count().select("item_idx", F.log1p("count").alias("popularity"))
    for top in (
        blended_top_k(ranker_candidates(model, groups), pop, train, 0.5, k),
        popularity_top_k(train, groups, train, k),
    ):
        lists = top.groupBy("user_idx").agg(
            F.count("*").alias("n"), F.collect_list("item_idx").alias("items")
        )
        got = {r["user_idx"]: r for r in lists.collect()}
        assert set(got) == {r["user_idx"] for r in users.collect()}
        assert {r["n"] for r in got.values()} == {k}
        assert not set(got[99]["items"]) & set(range(390))  # the bot's list holds only unseen items
    groups.unpersist()


def test_every_blend_scored_in_one_job_equals_each_blend_scored_alone(spark):
    # The search scores all its blends in one job (blended_top_ks, ranking_metrics_per): the same
    # lists and the same figures as one blend at a time, a blend nobody's list has included.
    train, test = random_split(_with_a_bot(spark, n_items=200, bot_seen=150), 0.2, seed=3)
    train, test = train.cache(), test.cache()
    k, blends = 5, [0, 0.4, 2.0]
    groups = candidate_groups(train.select("user_idx").distinct(), train, k, BLEND_MARGIN)
    model = fit_ranker(train, {"rank": 4, "max_iter": 3, "reg_param": 0.1, "alpha": 1.0}, seed=1)
    pop = train.groupBy("item_idx").count().select("item_idx", F.log1p("count").alias("popularity"))
    candidates = ranker_candidates(model, groups).cache()
    together = blended_top_ks(candidates, pop, train, blends, k).cache()
    by_blend = ranking_metrics_per(together, test, k, "blend", [*blends, 9.0])
    columns = ["user_idx", "item_idx", "rank", "score", "als_score", "popularity_score"]
    for blend in blends:
        alone = blended_top_k(candidates, pop, train, blend, k)
        assert sorted(together.where(F.col("blend") == blend).select(columns).collect()) == sorted(
            alone.select(columns).collect()
        )
        figures = dict(by_blend[blend])
        error = figures.pop(f"ndcg_se@{k}")
        assert figures == ranking_metrics(alone, test, k)
        # The standard error of the mean NDCG over the test users, by hand from each user's.
        ndcg = [r["ndcg"] for r in per_user_metrics(alone, test, k, keys=[]).collect()]
        assert error == pytest.approx(statistics.stdev(ndcg) / math.sqrt(len(ndcg)), rel=1e-9)
        assert error > 0
    assert by_blend[0] != by_blend[2.0]  # the blend changes the lists, so the test can tell
    assert set(by_blend[9.0].values()) == {0.0}  # no list at that blend
    groups.unpersist()


def _pairs(spark, n=10_000):
    return spark.range(n).select(
        (F.col("id") % 100).cast("int").alias("user_idx"), (F.col("id") / 100).cast("int").alias("item_idx")
    )


def _ids(df):
    return {(r["user_idx"], r["item_idx"]) for r in df.collect()}


def test_random_split_is_deterministic_for_a_seed(spark):
    pairs = _pairs(spark)
    train, test = random_split(pairs, 0.2, seed=42)
    train_again, test_again = random_split(pairs.repartition(7), 0.2, seed=42)
    test_ids = _ids(test)
    # Same seed: the same rows, however the input is partitioned.
    assert _ids(test_again) == test_ids
    assert _ids(train_again) == _ids(train)
    # Every row lands in exactly one side.
    assert len(test_ids) + train.count() == 10_000
    assert test_ids.isdisjoint(_ids(train))
    # Roughly the requested share: the binomial sd is 40 rows, allow 5 of them.
    assert abs(len(test_ids) - 2_000) < 200


def test_random_split_changes_with_the_seed(spark):
    pairs = _pairs(spark)
    a = _ids(random_split(pairs, 0.2, seed=1)[1])
    b = _ids(random_split(pairs, 0.2, seed=2)[1])
    # Independent draws share about 20% of each other's rows, nowhere near all of them.
    assert len(a & b) < 0.5 * len(a)
