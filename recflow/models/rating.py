"""The rating model: predicted stars for rating sources, scored by RMSE and MAE.

Explicit ALS and the bias-only baseline make different mistakes (ALS over-fits users with few
ratings, biases ignore taste), so their least-squares blend beats either. The blend weights are
fitted on a validation split carved out of the training rows, never on the test split; then
both parts are refitted on all training rows. Everything is a Spark aggregate: the weights come
from a 3 x 3 normal equation whose entries are sums over the validation rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recflow.facts import read_facts, write_facts
from recflow.models.als import fit_explicit
from recflow.models.baselines import EXACT, BiasModel, clip, fit_biases
from recflow.split import random_split

_PARTS = ("bias", "als")
# Share of the training rows that fits the blend weights; three weights need few rows.
_BLEND_FRACTION = 0.1


@dataclass(frozen=True)
class RatingModel:
    biases: BiasModel
    als: ALSModel
    weights: tuple[float, float, float]  # intercept, bias, als

    def predict(self, pairs: DataFrame, column: str = "prediction") -> DataFrame:
        """pairs(user_idx, item_idx, ...) with `column`: a prediction for every pair (ALS
        falls back to the biases for users or items it has not seen)."""
        return _blend(_parts(self.biases, self.als, pairs), self.weights, self.biases, column)

    def save(self, path: str) -> None:
        """The ALS model, the bias tables and the blend weights under `path`."""
        self.als.write().overwrite().save(f"{path}/als")
        self.biases.user_bias.write.mode("overwrite").parquet(f"{path}/user_bias")
        self.biases.item_bias.write.mode("overwrite").parquet(f"{path}/item_bias")
        meta = {
            "weights": list(self.weights),
            "mean": self.biases.mean,
            "rating_min": self.biases.rating_min,
            "rating_max": self.biases.rating_max,
        }
        write_facts(self.biases.user_bias.sparkSession, f"{path}/meta", meta)

    @classmethod
    def load(cls, spark, path: str) -> RatingModel:
        meta = read_facts(f"{path}/meta")
        biases = BiasModel(
            meta["mean"],
            spark.read.parquet(f"{path}/user_bias"),
            spark.read.parquet(f"{path}/item_bias"),
            meta["rating_min"],
            meta["rating_max"],
        )
        return cls(biases, ALSModel.load(f"{path}/als"), tuple(meta["weights"]))


def fit_rating_model(
    train: DataFrame, params: dict, seed: int, rating_min: float = 1.0, rating_max: float = 5.0
) -> RatingModel:
    # seed + 2: the search's validation carve uses seed + 1, and the same hash would pick the
    # very rows that carve already took out, leaving no blend rows at all.
    fit_rows, blend_rows = random_split(train, _BLEND_FRACTION, seed + 2)
    fit_rows, blend_rows = fit_rows.cache(), blend_rows.cache()
    biases = fit_biases(fit_rows, rating_min=rating_min, rating_max=rating_max)
    als = fit_explicit(fit_rows, params, seed)
    weights = _least_squares(_parts(biases, als, blend_rows))
    fit_rows.unpersist()
    blend_rows.unpersist()
    full_biases = fit_biases(train, rating_min=rating_min, rating_max=rating_max)
    return RatingModel(full_biases, fit_explicit(train, params, seed), weights)


def _parts(biases: BiasModel, als: ALSModel, pairs: DataFrame) -> DataFrame:
    with_bias = biases.predict(pairs, "bias")
    # ALS's coldStartStrategy="drop" would lose rows; keep them and fall back to the biases.
    als_scores = als.transform(with_bias.select("user_idx", "item_idx").distinct()).withColumnRenamed(
        "prediction", "_als"
    )
    return (
        with_bias.join(als_scores, ["user_idx", "item_idx"], "left")
        .withColumn(
            "als",
            clip(
                F.when(F.col("_als").isNull() | F.isnan("_als"), F.col("bias")).otherwise(F.col("_als")),
                biases.rating_min,
                biases.rating_max,
            ),
        )
        .drop("_als")
    )


def _least_squares(parts: DataFrame) -> tuple[float, float, float]:
    """Weights w minimising sum (rating - w0 - w1 * bias - w2 * als)^2, from X'X and X'y."""
    x = [F.lit(1.0), F.col("bias"), F.col("als")]
    sums = parts.agg(
        F.count("*").alias("n"),
        *[F.sum((a * b).cast(EXACT)).alias(f"xx{i}{j}") for i, a in enumerate(x) for j, b in enumerate(x)],
        *[F.sum((a * F.col("rating")).cast(EXACT)).alias(f"xy{i}") for i, a in enumerate(x)],
    ).first()
    if not sums["n"]:
        raise ValueError("No rows to fit the rating blend on: the training split is empty or too small")
    xtx = np.array([[float(sums[f"xx{i}{j}"]) for j in range(3)] for i in range(3)])
    xty = np.array([float(sums[f"xy{i}"]) for i in range(3)])
    # A tiny ridge keeps the solve stable when ALS and the biases agree almost exactly.
    weights = np.linalg.solve(xtx + 1e-6 * np.eye(3), xty)
    return tuple(float(w) for w in weights)


def _blend(parts: DataFrame, weights, biases: BiasModel, column: str) -> DataFrame:
    w0, w1, w2 = weights
    estimate = F.lit(w0) + F.lit(w1) * F.col("bias") + F.lit(w2) * F.col("als")
    return parts.withColumn(column, clip(estimate, biases.rating_min, biases.rating_max)).drop(*_PARTS)
