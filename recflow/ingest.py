"""Ingest: raw files -> Parquet partition of the logical date, every value kept as text.

Nothing is interpreted here, so that validation and cleaning can still show a bad row exactly as
it was in the file.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession

from recflow.config import Settings
from recflow.sources import movielens, resolve_source_dir
from recflow.textfiles import header_fields, read_lines, split_fields


def ingested_layout(settings: Settings, ds: str) -> movielens.Layout:
    """The layout the ingest task of this date detected."""
    from recflow.facts import read_facts

    return movielens.layout_named(read_facts(settings.lake_path("facts", "ingest", ds))["layout"])


def ingest(spark: SparkSession, settings: Settings, ds: str) -> dict:
    source_dir = resolve_source_dir(settings)
    layout = movielens.detect_layout(source_dir)
    counts = {}
    for spec in layout.files:
        file_path = source_dir / spec.filename
        if file_path.stat().st_size == 0:
            raise movielens.SourceError(f"{file_path} is empty")
        lines = read_lines(spark, str(file_path))
        if spec.header is not None:
            found = header_fields(lines, spec)
            if tuple(found) != spec.header:
                raise movielens.SourceError(
                    f"{file_path} line 1: header {found} does not match the {layout.name} layout "
                    f"{list(spec.header)} (wrong delimiter or columns?)"
                )
        target = settings.lake_path("raw", spec.table, ds)
        split_fields(lines, spec).write.mode("overwrite").parquet(target)
        counts[spec.table] = spark.read.parquet(target).count()
        if counts[spec.table] == 0:
            raise movielens.SourceError(f"{file_path} holds no data rows")
    return {"source_dir": str(Path(source_dir).resolve()), "layout": layout.name, "raw_rows": counts}
