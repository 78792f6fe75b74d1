"""Read delimited text files into string columns, keeping each row's file and line number.

A user who feeds RecFlow a bad file needs to hear "ratings.dat line 18,204, column rating"; Spark's
CSV reader can say neither (it skips blank lines and has no line numbers), so raw files are read
as text lines and split with built-in functions, all inside the JVM.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

# Bits of monotonically_increasing_id() that hold the row's position inside its partition.
_ROW_BITS = (1 << 33) - 1


@dataclass(frozen=True)
class TableFile:
    """One raw file of a source layout."""

    table: str  # canonical table it feeds: interactions, items, users
    filename: str
    sep: str  # literal separator, may be several characters ("::")
    columns: tuple[str, ...]
    encoding: str = "UTF-8"
    header: tuple[str, ...] | None = None  # expected header line, if the file has one
    quoted: bool = False  # CSV double-quote rules (fields with commas in quotes)


def read_lines(spark: SparkSession, path: str | list[str]) -> DataFrame:
    """Lines of one or more text files with `_file` and 1-based `_line`.

    monotonically_increasing_id() is contiguous inside a partition and a file block is read in
    order by one partition, so a line's number is its block's first line number plus its offset
    in the block. Block sizes are counted once (a small aggregate) to get those first numbers.
    """
    lines = spark.read.text(path).select(
        F.col("value").alias("_bytes_as_text"),
        F.col("_metadata.file_path").alias("_file"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_mid"),
    )
    blocks = lines.groupBy("_file", "_block").agg(F.count("*").alias("_n"), F.min("_mid").alias("_first_mid"))
    in_file_order = Window.partitionBy("_file").orderBy("_block")
    offsets = blocks.select(
        "_file",
        "_block",
        # 1-based number of the block's first line minus the id of that line.
        (F.sum("_n").over(in_file_order) - F.col("_n") + 1 - F.col("_first_mid")).alias("_delta"),
    )
    return lines.join(F.broadcast(offsets), ["_file", "_block"]).select(
        "_bytes_as_text", "_file", (F.col("_mid") + F.col("_delta")).alias("_line")
    )


def split_fields(lines: DataFrame, spec: TableFile) -> DataFrame:
    """Decode and split lines into the spec's columns (strings, trimmed), keeping `_raw`,
    `_n_fields` and `_valid_utf8` so later steps can say what was wrong with a row."""
    utf8 = _is_utf8(spec)
    # Windows line endings would otherwise stick to the last field.
    text = F.regexp_replace(_decoded(spec), r"\r$", "")
    pattern = _split_pattern(spec)
    df = lines.select(
        "_file",
        "_line",
        text.alias("_raw"),
        (F.is_valid_utf8("_bytes_as_text") if utf8 else F.lit(True)).alias("_valid_utf8"),
    ).withColumn("_fields", F.split("_raw", pattern, -1))
    if spec.header is not None:
        df = df.where(F.col("_line") > 1)
    columns = [_field(i, spec.quoted).alias(name) for i, name in enumerate(spec.columns)]
    return df.select("_file", "_line", "_raw", "_valid_utf8", F.size("_fields").alias("_n_fields"), *columns)


def _is_utf8(spec: TableFile) -> bool:
    return spec.encoding.upper() in ("UTF-8", "UTF8")


def _decoded(spec: TableFile):
    """The line as text in the file's encoding. The text reader keeps the bytes undecoded, so a
    cast to binary gives them back. decode() raises on one malformed UTF-8 byte (ANSI mode) and
    would fail the whole job; the line must reach quarantine instead (flagged by `_valid_utf8`),
    so bad bytes become U+FFFD."""
    if _is_utf8(spec):
        return F.make_valid_utf8("_bytes_as_text")
    return F.decode(F.col("_bytes_as_text").cast("binary"), spec.encoding)


def _split_pattern(spec: TableFile) -> str:
    escaped = "".join("\\" + c if not c.isalnum() else c for c in spec.sep)
    if spec.quoted:
        # A separator only counts outside double quotes: an even number of quotes follows it.
        return escaped + r'(?=(?:[^"]*"[^"]*")*[^"]*$)'
    return escaped


def _field(index: int, quoted: bool):
    value = F.trim(F.get(F.col("_fields"), index))
    if quoted:
        value = F.regexp_replace(F.regexp_replace(value, r'^"(.*)"$', "$1"), '""', '"')
    return value
