"""Small JSON facts (counts, metrics, validation results) kept in the lake beside the data.

Spark writes them, so they land wherever the lake is (local folder, s3a://, hdfs://); the
publish step reads them back with pyarrow's filesystems, without a SparkSession.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pyarrow import fs as pafs


def write_facts(spark, uri: str, facts: dict[str, Any]) -> None:
    text = json.dumps(facts, sort_keys=True, default=str)
    spark.createDataFrame([(text,)], "value string").coalesce(1).write.mode("overwrite").text(uri)


def lake_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem for a lake URI; a bare path is a local folder."""
    return pafs.FileSystem.from_uri(uri if "://" in uri else f"file://{uri}")


def is_directory(uri: str) -> bool:
    filesystem, path = lake_filesystem(uri)
    return filesystem.get_file_info(path).type == pafs.FileType.Directory


def read_lake_table(uri: str, columns: list[str] | None = None):
    """A Parquet table of the lake (all columns when ``columns`` is None) as a pyarrow Table."""
    import pyarrow.parquet as pq

    filesystem, path = lake_filesystem(uri)
    return pq.read_table(path, filesystem=filesystem, columns=columns)


def read_facts(uri: str) -> dict[str, Any]:
    filesystem, root = lake_filesystem(uri)
    parts = [
        info.path
        for info in filesystem.get_file_info(pafs.FileSelector(root))
        if info.type == pafs.FileType.File and info.base_name.startswith("part-")
    ]
    if len(parts) != 1:
        raise FileNotFoundError(f"Expected one facts file under {uri}, found {len(parts)}: has the task run?")
    with filesystem.open_input_stream(parts[0]) as stream:
        return json.loads(stream.read().decode("utf-8"))


_PARTITION = re.compile(r"dt=(\d{4}-\d{2}-\d{2})")


def previous_partition(settings, stage: str, table: str, ds: str) -> str | None:
    """URI of the latest complete `dt=` partition of a lake table before `ds`, or None."""
    earlier = partitions_before(settings, stage, table, ds)
    return earlier[0] if earlier else None


def partitions_before(settings, stage: str, table: str, ds: str) -> list[str]:
    """URIs of the complete `dt=` partitions of a lake table before `ds`, newest first."""
    parent = settings.lake_path(stage, table, ds).rsplit("/", 1)[0]
    filesystem, root = lake_filesystem(parent)
    if filesystem.get_file_info(root).type != pafs.FileType.Directory:
        return []
    dates = sorted(
        (
            match[1]
            for info in filesystem.get_file_info(pafs.FileSelector(root))
            if info.type == pafs.FileType.Directory
            and (match := _PARTITION.fullmatch(info.base_name))
            and match[1] < ds
            and filesystem.get_file_info(f"{info.path}/_SUCCESS").type == pafs.FileType.File
        ),
        reverse=True,
    )
    return [f"{parent}/dt={date}" for date in dates]


def write_facts_file(uri: str, facts: dict[str, Any]) -> None:
    """write_facts without Spark (the Airflow worker): the same layout, a part file and _SUCCESS."""
    filesystem, root = lake_filesystem(uri)
    filesystem.create_dir(root, recursive=True)
    with filesystem.open_output_stream(f"{root}/part-00000.json") as stream:
        stream.write(json.dumps(facts, sort_keys=True, default=str).encode("utf-8"))
    with filesystem.open_output_stream(f"{root}/_SUCCESS"):
        pass
