"""Train/test splits, deterministic whatever the partitioning of the input."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

_BUCKETS = 1_000_000


def random_split(df: DataFrame, test_fraction: float, seed: int) -> tuple[DataFrame, DataFrame]:
    """Each (user, item) lands in test with probability test_fraction.

    A hash of the pair and the seed instead of randomSplit(): randomSplit depends on how rows
    fall into partitions, so a re-run on a differently partitioned lake would move rows between
    train and test and change the published metrics.
    """
    bucket = F.pmod(F.xxhash64("user_idx", "item_idx", F.lit(seed)), F.lit(_BUCKETS))
    in_test = bucket < F.lit(int(test_fraction * _BUCKETS))
    return df.where(~in_test), df.where(in_test)
