"""The bias-only baseline by hand, the rating model's save/load, and sums that do not depend on
how rows are partitioned (re-runs must publish the same bits)."""

from __future__ import annotations

import math
import random

import pytest

from recflow.metrics import ranking_metrics, rating_metrics
from recflow.models.baselines import fit_biases, popularity
from recflow.models.rating import RatingModel, fit_rating_model

pytestmark = pytest.mark.spark


def test_biases_by_hand(spark):
    # mean 3.5; item 1 is rated one star above the mean, item 2 one below; user 1 half a
    # star above, user 2 half below. Without regularisation one pass recovers them exactly.
    train = spark.createDataFrame(
        [(1, 1, 5.0), (1, 2, 3.0), (2, 1, 4.0), (2, 2, 2.0)], "user_idx int, item_idx int, rating double"
    )
    model = fit_biases(train, reg_user=0.0, reg_item=0.0, iterations=3)
    assert model.mean == pytest.approx(3.5)
    items = {r["item_idx"]: r["item_bias"] for r in model.item_bias.collect()}
    users = {r["user_idx"]: r["user_bias"] for r in model.user_bias.collect()}
    assert items == pytest.approx({1: 1.0, 2: -1.0})
    assert users == pytest.approx({1: 0.5, 2: -0.5})
    pairs = spark.createDataFrame([(1, 1), (2, 2), (9, 1), (1, 9)], "user_idx int, item_idx int")
    predicted = {(r["user_idx"], r["item_idx"]): r["prediction"] for r in model.predict(pairs).collect()}
    # (1, 1): 3.5 + 0.5 + 1 = 5; an unknown user or item adds no bias.
    assert predicted == pytest.approx({(1, 1): 5.0, (2, 2): 2.0, (9, 1): 4.5, (1, 9): 4.0})


def test_regularisation_shrinks_biases_and_predictions_stay_on_the_scale(spark):
    train = spark.createDataFrame(
        [(1, 1, 5.0), (2, 1, 5.0), (3, 1, 5.0), (1, 2, 1.0)], "user_idx int, item_idx int, rating double"
    )
    loose = fit_biases(train, reg_user=0.0, reg_item=0.0)
    tight = fit_biases(train, reg_user=25.0, reg_item=25.0)
    bias = {r["item_idx"]: r["item_bias"] for r in tight.item_bias.collect()}
    loose_bias = {r["item_idx"]: r["item_bias"] for r in loose.item_bias.collect()}
    assert abs(bias[2]) < abs(loose_bias[2])
    pairs = spark.createDataFrame([(2, 1), (1, 2)], "user_idx int, item_idx int")
    assert all(1.0 <= r["prediction"] <= 5.0 for r in loose.predict(pairs).collect())


def test_popularity_is_log_scaled_to_one(spark):
    train = spark.createDataFrame(
        [(u, 1) for u in range(9)] + [(0, 2), (1, 2), (0, 3)], "user_idx int, item_idx int"
    )
    pop = {r["item_idx"]: r["popularity"] for r in popularity(train).collect()}
    assert pop[1] == pytest.approx(1.0)
    assert pop[2] == pytest.approx(math.log(3) / math.log(10))  # log1p(2) / log1p(9 rows)
    assert pop[3] < pop[2] < pop[1]


def _ratings(spark, seed: int = 0):
    rng = random.Random(seed)
    rows = []
    for user in range(40):
        taste = rng.choice([-1, 1])
        for item in rng.sample(range(30), 12):
            rows.append(
                (
                    user,
                    item,
                    float(min(5, max(1, round(3 + taste * (1 if item % 2 else -1) + rng.gauss(0, 0.7))))),
                )
            )
    return spark.createDataFrame(rows, "user_idx int, item_idx int, rating double")


def test_rating_model_round_trips_through_the_lake(spark, tmp_path):
    ratings = _ratings(spark)
    params = {"rating_rank": 4, "rating_reg_param": 0.1, "rating_max_iter": 5}
    model = fit_rating_model(ratings, params, seed=7)
    pairs = ratings.select("user_idx", "item_idx", "rating")
    before = sorted(model.predict(pairs).collect())
    assert all(1.0 <= r["prediction"] <= 5.0 for r in before)
    model.save(str(tmp_path / "rating"))
    after = sorted(RatingModel.load(spark, str(tmp_path / "rating")).predict(pairs).collect())
    assert after == before


def test_metrics_are_the_same_bits_whatever_the_partitioning(spark):
    rng = random.Random(3)
    top = [(u, i, rank) for u in range(60) for rank, i in enumerate(rng.sample(range(50), 10), start=1)]
    test = [(u, i) for u in range(60) for i in rng.sample(range(50), 7)]
    top_df = spark.createDataFrame(top, "user_idx int, item_idx int, rank int")
    test_df = spark.createDataFrame(test, "user_idx int, item_idx int")
    one = ranking_metrics(top_df.repartition(1), test_df.repartition(1), 10)
    many = ranking_metrics(top_df.repartition(7, "item_idx"), test_df.repartition(5), 10)
    assert one == many  # exact, not approximately

    preds = spark.createDataFrame(
        [(rng.uniform(1, 5), rng.uniform(1, 5)) for _ in range(500)], "rating double, prediction double"
    )
    assert rating_metrics(preds.repartition(1)) == rating_metrics(preds.repartition(9))
    ratings = _ratings(spark, seed=5)
    a, b = fit_biases(ratings.repartition(1)), fit_biases(ratings.repartition(6))
    assert a.mean == b.mean
    assert sorted(a.item_bias.collect()) == sorted(b.item_bias.collect())
