"""Train/test splits, deterministic whatever the partitioning of the input.

Every split returns (train, test) with the input's columns unchanged; every input row lands in
exactly one of them. Randomness comes from a hash of (user_idx, item_idx, seed) (xxhash64), never
from randomSplit() or rand(): both depend on how rows fall into partitions, so a re-run on a
differently partitioned lake would move rows between train and test and change the published
metrics. The splits assume one row per (user_idx, item_idx), as in the preferences table.

- `random_split`: each (user, item) pair lands in test with probability test_fraction.
- `stratified_split`: a fixed share of each user's rows goes to test (Microsoft Recommenders'
  python_stratified_split).
- `temporal_split`: each user's latest rows, or every row from a date on, go to test.
- `split`: picks one of them from the run's Settings.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from recflow.config import Settings

_BUCKETS = 1_000_000
# Helper columns, dropped again before the frames are returned.
_POS, _N = "__split_pos", "__split_n"


def random_split(df: DataFrame, test_fraction: float, seed: int) -> tuple[DataFrame, DataFrame]:
    """Each (user, item) lands in test with probability test_fraction.

    A hash of the pair and the seed instead of randomSplit(): randomSplit depends on how rows
    fall into partitions, so a re-run on a differently partitioned lake would move rows between
    train and test and change the published metrics.
    """
    bucket = F.pmod(F.xxhash64("user_idx", "item_idx", F.lit(seed)), F.lit(_BUCKETS))
    in_test = bucket < F.lit(int(test_fraction * _BUCKETS))
    return df.where(~in_test), df.where(in_test)


def stratified_split(df: DataFrame, test_fraction: float, seed: int) -> tuple[DataFrame, DataFrame]:
    """Per user: shuffle the user's rows, the first round((1 - test_fraction) * n) go to train,
    the other rows to test.

    The shuffle is the order of xxhash64(user_idx, item_idx, seed), ties broken by item_idx, so
    the same seed picks the same rows however the input is partitioned, and another seed other
    rows. This mirrors Microsoft Recommenders' python_stratified_split(ratio=1 - test_fraction)
    (per user: shuffle, then split at round(ratio * n)); its "75/25 stratified by user" protocol
    is test_fraction=0.25. The rows picked differ from theirs (another shuffle), the counts
    agree except at exact halves: here round is Spark's (half up), theirs Python's (half to
    even), so a user with 6 rows at 0.25 gets 5 train / 1 test here (round(4.5) = 5) and 4 / 2
    there. Examples at 0.25: 8 rows -> 6 / 2, 3 rows -> round(2.25) = 2 / 1, 2 rows ->
    round(1.5) = 2 / 0.

    A user with one row keeps it in train when round(1 - test_fraction) = 1, that is for any
    test_fraction <= 0.5 (0.5 rounds up), and loses it to test above 0.5. More generally a user
    whose round((1 - f) * n) is n keeps every row in train and has no test rows.
    """
    if not 0 <= test_fraction <= 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    by_user = Window.partitionBy("user_idx")
    shuffled = by_user.orderBy(F.xxhash64("user_idx", "item_idx", F.lit(seed)), "item_idx")
    ranked = df.select(
        "*",
        F.row_number().over(shuffled).alias(_POS),
        F.count(F.lit(1)).over(by_user).alias(_N),
    )
    in_train = F.col(_POS) <= F.round(F.lit(1.0 - test_fraction) * F.col(_N))
    return _sides(ranked, ~in_train, df.columns)


def temporal_split(
    df: DataFrame, last_n: int | None = None, since: str | None = None
) -> tuple[DataFrame, DataFrame]:
    """Test is the recent past; df needs a timestamp column `ts`.

    With `since` (an ISO date, YYYY-MM-DD, read as midnight UTC), every row with ts >= since is
    test, whatever its user, and the rest train; a row without ts is train. `last_n` is then
    ignored.

    Otherwise each user's last `last_n` rows by ts are test. Rows with equal ts are ordered by
    item_idx, the larger item_idx counting as later; rows without ts count as the earliest. A
    user never loses all their rows: a user with last_n rows or fewer keeps every row in train.
    """
    if since is not None:
        start = datetime.datetime.combine(
            datetime.date.fromisoformat(since), datetime.time(), tzinfo=datetime.UTC
        )
        # An aware datetime becomes that instant whatever spark.sql.session.timeZone says.
        in_test = F.coalesce(F.col("ts") >= F.lit(start), F.lit(False))
        return df.where(~in_test), df.where(in_test)
    if last_n is None:
        raise ValueError("temporal_split needs last_n or since")
    if last_n < 1:
        raise ValueError(f"last_n must be at least 1, got {last_n}")
    by_user = Window.partitionBy("user_idx")
    latest_first = by_user.orderBy(F.col("ts").desc_nulls_last(), F.col("item_idx").desc())
    ranked = df.select(
        "*",
        F.row_number().over(latest_first).alias(_POS),
        F.count(F.lit(1)).over(by_user).alias(_N),
    )
    in_test = (F.col(_POS) <= last_n) & (F.col(_N) > last_n)
    return _sides(ranked, in_test, df.columns)


def split(df: DataFrame, settings: Settings) -> tuple[DataFrame, DataFrame]:
    """(train, test) by the run's `settings.split`: "random", "stratified" or "temporal"."""
    if settings.split == "random":
        return random_split(df, settings.test_fraction, settings.seed)
    if settings.split == "stratified":
        return stratified_split(df, settings.test_fraction, settings.seed)
    if settings.split == "temporal":
        return temporal_split(df, last_n=settings.test_last_n, since=settings.test_since)
    raise ValueError(f"Unknown split {settings.split!r}; known: random, stratified, temporal")


def _sides(ranked: DataFrame, in_test, columns: list[str]) -> tuple[DataFrame, DataFrame]:
    return ranked.where(~in_test).select(*columns), ranked.where(in_test).select(*columns)
