"""Every ranking and catalogue metric by hand, and ranking_metrics against a plain-Python
reference of the Microsoft Recommenders definitions (and Spark's RankingEvaluator)."""

from __future__ import annotations

import math
import random

import pytest
from pyspark.ml.evaluation import RankingEvaluator
from pyspark.sql import functions as F

from recflow.metrics import catalogue_metrics, ranking_metrics, ranking_metrics_by

pytestmark = pytest.mark.spark

NAMES = ("precision", "recall", "f1", "ndcg", "map", "hit_rate", "mrr")


def _lists(spark, rows):
    return spark.createDataFrame(rows, "user_idx int, item_idx int, rank int")


def _pairs(spark, rows):
    return spark.createDataFrame(rows, "user_idx int, item_idx int")


def test_every_ranking_metric_by_hand(spark):
    top_k = _lists(
        spark,
        [
            # user 1: a miss, then hits at ranks 2 and 3 (listed out of order).
            (1, 30, 3), (1, 90, 1), (1, 20, 2),
            # user 2: a hit at rank 1.
            (2, 50, 1), (2, 51, 2), (2, 52, 3),
            # user 4: a list but no test items: not averaged in.
            (4, 70, 1),
            # user 5: the only hit is at rank 4, beyond k = 3.
            (5, 80, 1), (5, 81, 2), (5, 82, 3), (5, 83, 4),
        ],
    )  # fmt: skip
    test = _pairs(
        spark,
        [
            (1, 20), (1, 30), (1, 40), (1, 41),
            (2, 50), (2, 50),  # a repeated test row counts once
            (3, 70),  # user 3 has test items but no list: zeros
            (5, 83),
        ],
    )  # fmt: skip
    metrics = ranking_metrics(top_k, test, k=3)
    assert set(metrics) == {f"{name}@3" for name in NAMES}
    users = 4  # 1, 2, 3 and 5

    precision = (2 / 3 + 1 / 3 + 0 + 0) / users
    recall = (2 / 4 + 1 + 0 + 0) / users
    assert metrics["precision@3"] == pytest.approx(precision)
    assert metrics["recall@3"] == pytest.approx(recall)
    assert metrics["f1@3"] == pytest.approx(2 * precision * recall / (precision + recall))
    # user 1: DCG 1/log2(3) + 1/log2(4); ideal: min(4 relevant, 3) = 3 hits at ranks 1, 2, 3.
    user_1_ndcg = (1 / math.log2(3) + 1 / 2) / (1 + 1 / math.log2(3) + 1 / 2)
    assert metrics["ndcg@3"] == pytest.approx((user_1_ndcg + 1 + 0 + 0) / users)
    # MAP@3: precision at each hit / min(relevant, 3). user 1: (1/2 + 2/3) / 3; user 2: 1 / 1.
    assert metrics["map@3"] == pytest.approx(((1 / 2 + 2 / 3) / 3 + 1 + 0 + 0) / users)
    assert metrics["hit_rate@3"] == pytest.approx(2 / users)
    # first hits at rank 2 (user 1) and rank 1 (user 2).
    assert metrics["mrr@3"] == pytest.approx((1 / 2 + 1 + 0 + 0) / users)

    # At k = 4 user 5's hit counts: precision 1/4, MAP 1/4 / min(1, 4), reciprocal rank 1/4.
    at_4 = ranking_metrics(top_k, test, k=4)
    assert at_4["map@4"] == pytest.approx(((1 / 2 + 2 / 3) / 4 + 1 + 0 + 1 / 4) / users)
    assert at_4["mrr@4"] == pytest.approx((1 / 2 + 1 + 0 + 1 / 4) / users)
    assert at_4["hit_rate@4"] == pytest.approx(3 / users)


def test_ranking_metrics_are_zero_without_hits_or_users(spark):
    top_k = _lists(spark, [(1, 10, 1), (1, 11, 2)])
    no_hits = ranking_metrics(top_k, _pairs(spark, [(1, 12)]), k=2)
    assert no_hits == {f"{name}@2": 0.0 for name in NAMES}
    no_users = ranking_metrics(top_k, _pairs(spark, []), k=2)
    assert no_users == {f"{name}@2": 0.0 for name in NAMES}


def _reference(lists: dict, relevant: dict, k: int) -> dict:
    """The MS definitions in plain Python: averaged over users with test items, no list = 0."""
    sums = dict.fromkeys(("precision", "recall", "ndcg", "map", "hit_rate", "mrr"), 0.0)
    for user, truth in relevant.items():
        ranked = lists.get(user, [])[:k]
        hit_ranks = [rank for rank, item in enumerate(ranked, start=1) if item in truth]
        sums["precision"] += len(hit_ranks) / k
        sums["recall"] += len(hit_ranks) / len(truth)
        ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(len(truth), k) + 1))
        sums["ndcg"] += sum(1 / math.log2(rank + 1) for rank in hit_ranks) / ideal
        # map_at_k: sum of (hits so far / rank) at each hit, over min(|relevant|, k).
        sums["map"] += sum(n / rank for n, rank in enumerate(hit_ranks, start=1)) / min(len(truth), k)
        sums["hit_rate"] += 1.0 if hit_ranks else 0.0
        sums["mrr"] += 1 / hit_ranks[0] if hit_ranks else 0.0
    out = {f"{name}@{k}": total / len(relevant) for name, total in sums.items()}
    p, r = out[f"precision@{k}"], out[f"recall@{k}"]
    out[f"f1@{k}"] = 2 * p * r / (p + r) if p + r else 0.0
    return out


def _spark_evaluator(top_k, test, k: int) -> dict:
    """Spark's RankingEvaluator on the same input (the previous implementation)."""
    predicted = top_k.groupBy("user_idx").agg(
        F.transform(
            F.array_sort(F.collect_list(F.struct("rank", "item_idx"))), lambda s: s["item_idx"].cast("double")
        ).alias("prediction")
    )
    relevant = test.groupBy("user_idx").agg(F.collect_set(F.col("item_idx").cast("double")).alias("label"))
    joined = relevant.join(predicted, "user_idx", "left").select(
        F.coalesce("prediction", F.array().cast("array<double>")).alias("prediction"), "label"
    )
    names = {
        "precision": "precisionAtK",
        "recall": "recallAtK",
        "ndcg": "ndcgAtK",
        "map": "meanAveragePrecisionAtK",
    }
    return {
        f"{name}@{k}": RankingEvaluator(metricName=spark_name, k=k).evaluate(joined)
        for name, spark_name in names.items()
    }


def test_ranking_metrics_match_the_reference_and_spark(spark):
    rng = random.Random(0)
    items = range(30)
    lists = {user: rng.sample(items, 10) for user in range(50) if rng.random() < 0.9}
    # Some users have no test items (left out), some no list (zeros); 40-59 are test-only.
    relevant = {}
    for user in range(60):
        n = rng.randint(0, 8)
        if n:
            relevant[user] = set(rng.sample(items, n))
    top_k = _lists(spark, [(u, i, rank) for u, ranked in lists.items() for rank, i in enumerate(ranked, 1)])
    test = _pairs(spark, [(u, i) for u, truth in relevant.items() for i in sorted(truth)])
    for k in (1, 5, 10):
        metrics = ranking_metrics(top_k, test, k)
        expected = _reference(lists, relevant, k)
        assert metrics == pytest.approx(expected)
        spark_metrics = _spark_evaluator(top_k, test, k)
        assert {name: metrics[name] for name in spark_metrics} == pytest.approx(spark_metrics)
    # Not a degenerate input: some hits, some misses.
    assert 0 < expected["hit_rate@10"] < 1


def test_catalogue_metrics_by_hand(spark):
    # Train popularity: item 1: 5 rows, items 3 and 4: 3 each, items 2, 5..10: 1 each (10 items).
    # Head: ceil(0.2 * 10) = 2 items: 1, then 3 (ties with 4, the lower item_idx wins).
    counts = {1: 5, 2: 1, 3: 3, 4: 3, 5: 1, 6: 1, 7: 1, 8: 1, 9: 1, 10: 1}
    train = _pairs(spark, [(100 + n, item) for item, c in counts.items() for n in range(c)])
    top_k = _lists(
        spark,
        [
            (1, 1, 1), (1, 4, 2),
            (2, 3, 1), (2, 4, 2),
            (3, 4, 1), (3, 99, 2),  # 99 is not in train: long tail
            (4, 9, 3),  # beyond k = 2: not counted
        ],
    )  # fmt: skip
    metrics = catalogue_metrics(top_k, train, k=2)
    # Recommended: 1, 3, 4, 99 -> 4 distinct items over 10 in train.
    assert metrics["coverage@2"] == pytest.approx(4 / 10)
    # Six rows; the tail ones: 4 (three times) and 99.
    assert metrics["long_tail_share@2"] == pytest.approx(4 / 6)
    assert set(metrics) == {"coverage@2", "long_tail_share@2"}


def test_catalogue_metrics_of_empty_lists(spark):
    train = _pairs(spark, [(1, 1), (2, 2)])
    assert catalogue_metrics(_lists(spark, []), train, k=5) == {"coverage@5": 0.0, "long_tail_share@5": 0.0}


def test_metrics_by_variant_and_group_equal_the_single_list_figures(spark):
    """Two variants' lists judged per tier in one job equal ranking_metrics run on each variant's
    lists and each tier's test rows alone (and the reference), n_users included."""
    rng = random.Random(1)
    items = range(30)
    lists = {
        v: {u: rng.sample(items, 10) for u in range(40) if rng.random() < 0.9} for v in ("als", "hybrid")
    }
    relevant = {u: set(rng.sample(items, rng.randint(1, 6))) for u in range(40) if rng.random() < 0.8}
    tier_of = {u: ("cold" if u < 15 else "warm") for u in range(40)}
    rows = [
        (v, u, i, rank)
        for v, by in lists.items()
        for u, ranked in by.items()
        for rank, i in enumerate(ranked, 1)
    ]
    top_k = spark.createDataFrame(rows, "variant string, user_idx int, item_idx int, rank int")
    test = _pairs(spark, [(u, i) for u, truth in relevant.items() for i in sorted(truth)])
    groups = spark.createDataFrame(list(tier_of.items()), "user_idx int, tier string")
    by = ranking_metrics_by(top_k, test, 5, groups)
    assert set(by) == {(v, t) for v in lists for t in ("cold", "warm", "all")}
    for (variant, tier), metrics in by.items():
        users = [u for u in relevant if tier == "all" or tier_of[u] == tier]
        expected = _reference(lists[variant], {u: relevant[u] for u in users}, 5)
        assert metrics.pop("n_users") == len(users)
        assert metrics == pytest.approx(expected), (variant, tier)
