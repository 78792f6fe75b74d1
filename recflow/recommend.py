"""Top-K lists that never contain an item the user has already rated."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def rank_unseen(candidates: DataFrame, seen: DataFrame, k: int) -> DataFrame:
    """candidates(user_idx, item_idx, score) minus seen(user_idx, item_idx) -> top k per user
    as (user_idx, item_idx, score, rank), rank 1 the best; ties broken by item for stable output."""
    return top_ranked(unseen(candidates, seen), k)


def unseen(candidates: DataFrame, seen: DataFrame) -> DataFrame:
    return candidates.join(seen.select("user_idx", "item_idx"), ["user_idx", "item_idx"], "left_anti")


def top_ranked(scored: DataFrame, k: int, keys: tuple[str, ...] = ()) -> DataFrame:
    """The top k rows by score per user (per user and `keys` value: one list per variant), with
    their rank, 1 the best; ties broken by item for stable output."""
    best_first = Window.partitionBy(*keys, "user_idx").orderBy(F.col("score").desc(), F.col("item_idx"))
    return scored.withColumn("rank", F.row_number().over(best_first)).where(F.col("rank") <= k)


@dataclass(frozen=True)
class CandidateGroups:
    """Users grouped by how many top items each must be offered so that k unseen ones remain
    after its seen items are removed: k + what it has seen (+ a margin), rounded up to a power
    of two. A user so fetches at most about twice what it needs, however much the heaviest user
    (a bot with 10,000 events) has seen, and the groups are few: log2 of the longest history.
    `users` (user_idx, n) is cached: build the groups once and reuse them across models."""

    users: DataFrame
    sizes: tuple[int, ...]

    def each(self, n_items: int) -> Iterator[tuple[int, DataFrame]]:
        """(candidates to fetch, users(user_idx)) per group, capped at the catalogue's size."""
        for size in self.sizes:
            yield min(size, n_items), self.users.where(F.col("n") == size).select("user_idx")

    def unpersist(self) -> None:
        self.users.unpersist()


def candidate_groups(users: DataFrame, seen: DataFrame, k: int, margin: int = 0) -> CandidateGroups:
    """Group users(user_idx) by their candidate count (CandidateGroups); seen(user_idx, item_idx)."""
    counts = seen.groupBy("user_idx").agg(F.count("*").alias("seen"))
    need = F.lit(k + margin) + F.coalesce(F.col("seen"), F.lit(0))
    # log2 in floating point may land a hair under an exact power: greatest() keeps n >= need.
    n = F.greatest(F.pow(F.lit(2.0), F.ceil(F.log2(need))), need).cast("long")
    tagged = (
        users.select("user_idx").distinct().join(counts, "user_idx", "left").select("user_idx", n.alias("n"))
    )
    tagged = tagged.cache()
    sizes = tuple(sorted(row[0] for row in tagged.select("n").distinct().collect()))
    return CandidateGroups(tagged, sizes)


def union_all(frames: list[DataFrame]) -> DataFrame:
    return reduce(DataFrame.unionByName, frames)


def popularity_top_k(train: DataFrame, groups: CandidateGroups, seen: DataFrame, k: int) -> DataFrame:
    """The baseline: the most rated items the user has not seen, scored by rating count."""
    popular = train.groupBy("item_idx").agg(F.count("*").cast("double").alias("score"))
    n_items = popular.count()
    best_first = popular.orderBy(F.col("score").desc(), F.col("item_idx"))
    candidates = [users.crossJoin(F.broadcast(best_first.limit(n))) for n, users in groups.each(n_items)]
    return rank_unseen(union_all(candidates), seen, k)
