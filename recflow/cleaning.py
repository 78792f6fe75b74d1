"""Row rules, quarantine and de-duplication: pure DataFrame functions shared by every source.

Nothing is lost: a row that breaks a rule goes to quarantine unchanged (`_raw`), with the file,
line, column and reason, so that raw = clean + quarantined + duplicates removed holds exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

QUARANTINE_COLUMNS = ("_file", "_line", "_raw", "column", "reason")


@dataclass(frozen=True)
class RowRule:
    column: str  # the column to name in the message ("_raw" for whole-line problems)
    is_bad: Column  # true when the row breaks the rule; NULL counts as not broken
    reason: str


def split_bad_rows(df: DataFrame, rules: list[RowRule]) -> tuple[DataFrame, DataFrame]:
    """(rows that pass every rule, quarantined rows with the first rule each one broke)."""
    # Rules are checked in order, so a line with too few fields is reported as that, not as
    # the NULL ids that follow from it.
    reason = F.coalesce(*[F.when(F.coalesce(r.is_bad, F.lit(False)), F.lit(r.reason)) for r in rules])
    column = F.coalesce(*[F.when(F.coalesce(r.is_bad, F.lit(False)), F.lit(r.column)) for r in rules])
    flagged = df.withColumn("_reason", reason).withColumn("_column", column)
    good = flagged.where(F.col("_reason").isNull()).drop("_reason", "_column")
    bad = flagged.where(F.col("_reason").isNotNull()).select(
        "_file", "_line", "_raw", F.col("_column").alias("column"), F.col("_reason").alias("reason")
    )
    return good, bad


def keep_latest(df: DataFrame, key: list[str], order: list[Column]) -> DataFrame:
    """One row per key: the first by `order` (e.g. latest timestamp, then last line)."""
    w = Window.partitionBy(*key).orderBy(*order)
    return df.withColumn("_keep", F.row_number().over(w)).where(F.col("_keep") == 1).drop("_keep")


def summarise_quarantine(bad: DataFrame, table: str) -> list[dict]:
    """Rows per reason with the first offending line as a sample (small: one row per reason)."""
    first = Window.partitionBy("reason").orderBy("_file", "_line")
    rows = (
        bad.withColumn("_n", F.count("*").over(Window.partitionBy("reason")))
        .withColumn("_pos", F.row_number().over(first))
        .where(F.col("_pos") == 1)
        .select("reason", "column", "_n", "_file", "_line", "_raw")
        .orderBy("reason")
        .collect()
    )
    return [
        {
            "table_name": table,
            "reason": r["reason"],
            "column_name": r["column"],
            "rows_quarantined": r["_n"],
            "sample_file": r["_file"],
            "sample_line": r["_line"],
            "sample_row": r["_raw"],
        }
        for r in rows
    ]
