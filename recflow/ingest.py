"""Ingest: raw files -> Parquet partition of the logical date, every value kept as text.

Nothing is interpreted here, so that validation and cleaning can still show a bad row exactly as
it was in the file.
"""

from __future__ import annotations

import re
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession

from recflow.config import Settings
from recflow.sources import SOURCES, resolve_source_path, source_module
from recflow.sources.base import Detected, SourceError, header_of
from recflow.textfiles import read_lines, split_fields


def ingested(settings: Settings, ds: str) -> Detected:
    """The layout and files the ingest task of this date found."""
    from recflow.facts import read_facts

    facts = read_facts(settings.lake_path("facts", "ingest", ds))
    layout = source_module(settings.source).layout_named(facts["layout"])
    return Detected(layout, {table: [Path(p) for p in paths] for table, paths in facts["files"].items()})


def rating_scale(settings: Settings, ds: str) -> tuple[float, float] | None:
    """(min, max) of the ingested rating layout; None for an event source, which has no stars."""
    if not SOURCES[settings.source].explicit:
        return None
    layout = ingested(settings, ds).layout
    return float(layout.rating_min), float(layout.rating_max)


def ingest(spark: SparkSession, settings: Settings, ds: str) -> dict:
    location = resolve_source_path(settings)
    detected = source_module(settings.source).detect(location)
    counts = {}
    for table, paths in detected.files.items():
        spec = detected.layout.file_for(table)
        for path in paths:
            if path.stat().st_size == 0:
                raise SourceError(f"{path} is empty")
        target = settings.lake_path("raw", table, ds)
        try:
            if spec.header is not None:
                _check_headers(paths, spec, detected.layout.name)
            split_fields(read_lines(spark, [str(p) for p in paths]), spec).write.mode("overwrite").parquet(
                target
            )
        except (Py4JJavaError, PySparkException) as exc:
            # A truncated .gz (an interrupted download) fails deep inside Spark with pages of
            # Java stack; say which file and why instead.
            unreadable = _unreadable_file(exc)
            if unreadable is None:
                raise
            raise SourceError(unreadable) from None
        counts[table] = spark.read.parquet(target).count()
        if counts[table] == 0:
            raise SourceError(f"{', '.join(map(str, paths))}: no data rows, only a header")
    return {
        "source_dir": str(Path(location).resolve()),
        "layout": detected.layout.name,
        "files": {table: [str(p.resolve()) for p in paths] for table, paths in detected.files.items()},
        "raw_rows": counts,
    }


def _check_headers(paths: list[Path], spec, layout_name: str) -> None:
    """Header-detected layouts matched already; this catches a file found by name alone
    (MovieLens latest's ratings.csv) whose header is wrong."""
    for file in paths:
        found = header_of(file, spec) or []
        if found != list(spec.header):
            # The expected names only: the file's own line is not echoed (recflow.sources.base._shape).
            missing = [c for c in spec.header if c not in found]
            raise SourceError(
                f"{file} line 1: a header of {len(found)} field(s) split at {spec.sep!r} does not match the "
                f"{layout_name} layout {list(spec.header)}; missing columns {missing} (wrong delimiter or columns?)"
            )


_FAILED_READ = re.compile(r"FAILED_READ_FILE\S*\] Encountered error while reading file (\S+?)\.?\s")


def _unreadable_file(exc: Exception) -> str | None:
    """'<file> cannot be read to the end: <root cause>' for Spark's FAILED_READ_FILE, else None."""
    text = str(exc)
    match = _FAILED_READ.search(text)
    if match is None:
        return None
    path = re.sub(r"^file:(//)?", "", match.group(1))
    # A file read by several stages of one plan (a quoted file's records) fails in each of them:
    # Java then lists the same exception again as "[CIRCULAR REFERENCE: ...]", which names no cause.
    causes = [c for c in re.findall(r"Caused by: ([^\n]+)", text) if not c.startswith("[CIRCULAR REFERENCE")]
    cause = causes[-1].strip() if causes else text.splitlines()[0]
    hint = ""
    if "EOFException" in cause or path.endswith(".gz"):
        hint = " (a truncated or corrupt compressed file, e.g. an interrupted download: fetch it again)"
    return f"{path} cannot be read to the end: {cause}{hint}"
