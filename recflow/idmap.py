"""Stable int32 ids for the source's string ids, kept in the lake across runs.

ALS needs int32 user and item ids; shops and broadcasters use strings or 64-bit numbers. The
mapping is a table per dataset and kind (`lake/idmap/<dataset>/<kind>/dt=<ds>`): each run
starts from the latest mapping written before its date, gives new ids the next numbers in sorted
order, and writes the result as its own date's snapshot. An id therefore keeps its number across
runs, and re-running a date rebuilds the identical snapshot (it never reads its own output).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recflow.config import Settings
from recflow.facts import previous_partition
from recflow.ordering import number_rows

INT32_MAX = 2**31 - 1
KINDS = {"user": "user_id", "item": "item_id"}


class IdSpaceExhausted(RuntimeError):
    pass


def extend_mapping(ids: DataFrame, previous: DataFrame | None, id_col: str, idx_col: str) -> DataFrame:
    """previous(id, idx) plus every id of `ids` it lacks, numbered from max(idx) + 1 in id order."""
    seen = ids.select(id_col).distinct()
    if previous is None:
        start, new = 0, seen
    else:
        start = (previous.agg(F.max(idx_col)).first()[0] or -1) + 1
        new = seen.join(previous.select(id_col), id_col, "left_anti")
    # One global order is what makes numbering deterministic (numbered in parallel, not in one task).
    numbered = number_rows(new, [F.col(id_col)], idx_col, start)
    mapping = numbered if previous is None else previous.select(id_col, idx_col).unionByName(numbered)
    return mapping


def mapping_path(settings: Settings, kind: str, ds: str) -> str:
    return settings.lake_path("idmap", kind, ds)


def assign_ids(spark: SparkSession, settings: Settings, interactions: DataFrame, ds: str) -> DataFrame:
    """interactions + user_idx, item_idx (int32); writes this date's mapping snapshots."""
    for kind, id_col in KINDS.items():
        idx_col = f"{kind}_idx"
        before = previous_partition(settings, "idmap", kind, ds)
        previous = spark.read.parquet(before) if before else None
        mapping = extend_mapping(interactions, previous, id_col, idx_col)
        target = mapping_path(settings, kind, ds)
        mapping.write.mode("overwrite").parquet(target)
        mapping = spark.read.parquet(target)
        top = mapping.agg(F.max(idx_col)).first()[0]
        if top is not None and top > INT32_MAX:
            raise IdSpaceExhausted(
                f"{settings.dataset_name}: {top + 1} distinct {id_col}s exceed the int32 ids ALS can use"
            )
        interactions = interactions.join(
            mapping.select(id_col, F.col(idx_col).cast("int").alias(idx_col)), id_col
        )
    return interactions
