"""Evaluation metrics, computed in Spark (nothing large is collected to the driver).

Ranking metrics follow the Microsoft Recommenders definitions so figures compare with theirs:
every test item of a user is relevant (binary relevance); Precision@K divides hits by K;
Recall@K by the user's number of test items; NDCG@K uses log2 discounts; averaged over the
users that have test items and were scored.
"""

from __future__ import annotations

from pyspark.ml.evaluation import RankingEvaluator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

RANKING_METRICS = {
    "precision": "precisionAtK",
    "recall": "recallAtK",
    "ndcg": "ndcgAtK",
    "map": "meanAveragePrecisionAtK",
}


def rating_metrics(
    predictions: DataFrame, label: str = "rating", prediction: str = "prediction"
) -> dict[str, float]:
    """RMSE, MSE and MAE in one pass."""
    error = F.col(prediction) - F.col(label)
    row = predictions.agg(
        F.avg(error * error).alias("mse"), F.avg(F.abs(error)).alias("mae"), F.count("*").alias("n")
    ).first()
    if not row["n"]:
        raise ValueError("No predictions to evaluate: the test split shares no users and items with train")
    return {"rmse": row["mse"] ** 0.5, "mse": row["mse"], "mae": row["mae"]}


def item_mean_predictions(train: DataFrame, test: DataFrame) -> DataFrame:
    """The popularity-side rating baseline: each item's mean training rating, the global mean for
    items train has not seen."""
    global_mean = train.agg(F.avg("rating")).first()[0]
    item_means = train.groupBy("item_idx").agg(F.avg("rating").alias("item_mean"))
    return test.join(item_means, "item_idx", "left").withColumn(
        "prediction", F.coalesce("item_mean", F.lit(global_mean))
    )


def ranking_metrics(top_k: DataFrame, test: DataFrame, k: int) -> dict[str, float]:
    """top_k(user_idx, item_idx, rank) against test(user_idx, item_idx)."""
    predicted = top_k.groupBy("user_idx").agg(
        F.transform(
            F.array_sort(F.collect_list(F.struct("rank", "item_idx"))), lambda s: s["item_idx"].cast("double")
        ).alias("prediction")
    )
    relevant = test.groupBy("user_idx").agg(F.collect_set(F.col("item_idx").cast("double")).alias("label"))
    # Users with test items but no list count with zero hits rather than vanishing.
    joined = relevant.join(predicted, "user_idx", "left").select(
        F.coalesce("prediction", F.array().cast("array<double>")).alias("prediction"), "label"
    )
    joined = joined.cache()
    metrics = {}
    for name, spark_name in RANKING_METRICS.items():
        evaluator = RankingEvaluator(metricName=spark_name, k=k, predictionCol="prediction", labelCol="label")
        metrics[f"{name}@{k}"] = evaluator.evaluate(joined)
    joined.unpersist()
    return metrics
