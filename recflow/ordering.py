"""Global orders over a whole frame without putting the frame in one task.

A window without a partition key (`Window.orderBy(...)`) moves every row to a single task: fine
for a thousand rows, a wall at millions of users. The helpers here give the same answers in
parallel: a row number is a range partition sorted within each range plus the sizes of the
ranges before it; a percent rank is read off the (small) histogram of the values.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

_RANGE = "_range"


def number_rows(df: DataFrame, order: list[Column], name: str, start: int = 0) -> DataFrame:
    """df with `name` (long) = start + the row's 0-based position in `order`, which must be a
    total order (ties broken down to a unique key), as row_number over Window.orderBy would give.

    The range partition is cached: its ranges come from a sample that depends on the order rows
    arrive in, so counting the ranges and numbering them must read the same partitioning. The
    cache lives as long as the Spark application (one job); callers write the result."""
    ranged = df.repartitionByRange(*order).withColumn(_RANGE, F.spark_partition_id()).cache()
    sizes = sorted((r[0], r[1]) for r in ranged.groupBy(_RANGE).count().collect())  # a row per range
    before, offsets = start, []
    for part, size in sizes:
        offsets.append((part, before))
        before += size
    if not offsets:
        return ranged.drop(_RANGE).withColumn(name, F.lit(None).cast("long"))
    offset = F.create_map(*[F.lit(x) for pair in offsets for x in pair])[F.col(_RANGE)]
    within = F.row_number().over(Window.partitionBy(_RANGE).orderBy(*order)) - 1
    return ranged.withColumn(name, (within + offset).cast("long")).drop(_RANGE)


def percent_rank(df: DataFrame, column: str, name: str) -> DataFrame:
    """df with `name` = percent_rank() over the whole frame ordered by `column` ((rank - 1) /
    (rows - 1), ties sharing the lowest rank; 0.0 for a single row), from the histogram of the
    column's values: one row per distinct value (a user's interaction count has a few thousand),
    broadcast back."""
    histogram = df.groupBy(column).agg(F.count(F.lit(1)).alias("_n"))
    ascending = Window.orderBy(column).rowsBetween(Window.unboundedPreceding, -1)
    everything = Window.partitionBy()
    below = F.coalesce(F.sum("_n").over(ascending), F.lit(0))
    total = F.sum("_n").over(everything)
    shares = histogram.select(
        column,
        F.when(total > 1, below / (total - 1)).otherwise(F.lit(0.0)).cast("double").alias(name),
    )
    return df.join(F.broadcast(shares), column, "left")
