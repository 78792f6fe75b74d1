"""Read delimited text files into string columns, keeping each row's file and line number.

A user who feeds RecFlow a bad file needs to hear "ratings.dat line 18,204, column rating"; Spark's
CSV reader can say neither (it skips blank lines and has no line numbers), so raw files are read
as text lines and split with built-in functions, all inside the JVM.

Files declared `quoted` follow RFC 4180: a field that starts with a double quote ends at the next
lone double quote, and may hold the separator, doubled quotes and line breaks. A record whose
quoted field holds a line break spans several lines; it becomes one row, numbered by the line it
starts on (`_raw` is its lines joined by "\\n"), so raw row counts are record counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from recflow.cleaning import RowRule

# Bits of monotonically_increasing_id() that hold the row's position inside its partition.
_ROW_BITS = (1 << 33) - 1

# The most lines one quoted record may span. One quote that never closes (a typo: `"acme, inc`)
# would otherwise glue every line after it, up to the next stray quote, into a single row; real
# multi-line titles and names are a few lines long. The opening line of a longer record is
# quarantined as unterminated and the lines after it are read as rows of their own.
MAX_RECORD_LINES = 100
UNCLOSED_QUOTE_REASON = f"unterminated quoted field (no closing quote within {MAX_RECORD_LINES} lines)"


@dataclass(frozen=True)
class TableFile:
    """One raw file of a source layout."""

    table: str  # canonical table it feeds: interactions, items, users
    filename: str
    sep: str  # literal separator, may be several characters ("::")
    columns: tuple[str, ...]
    encoding: str = "UTF-8"
    header: tuple[str, ...] | None = None  # expected header line, if the file has one
    quoted: bool = False  # RFC 4180 double quotes (separators and line breaks inside quotes)

    def __post_init__(self) -> None:
        if self.quoted and len(self.sep) != 1:
            raise ValueError(
                f"{self.filename}: quoted files need a one-character separator, not {self.sep!r}"
            )


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
    `_n_fields`, `_valid_utf8` and `_unclosed_quote` so later steps can say what was wrong with a
    row. A quoted file's multi-line records are joined into one row first (see _records)."""
    utf8 = _is_utf8(spec)
    decoded = lines.select(
        "_file",
        "_line",
        # Windows line endings would otherwise stick to the last field (or to a quoted line break).
        F.regexp_replace(_decoded(spec), r"\r$", "").alias("_raw"),
        (F.is_valid_utf8("_bytes_as_text") if utf8 else F.lit(True)).alias("_valid_utf8"),
    )
    if spec.quoted:
        records = _records(decoded, spec.sep)
    else:
        records = decoded.withColumn("_unclosed_quote", F.lit(False))
    df = records.withColumn("_fields", _split(spec))
    if spec.header is not None:
        df = df.where(F.col("_line") > 1)
    columns = [_field(i, spec.quoted).alias(name) for i, name in enumerate(spec.columns)]
    return df.select(
        "_file",
        "_line",
        "_raw",
        "_valid_utf8",
        "_unclosed_quote",
        F.size("_fields").alias("_n_fields"),
        *columns,
    )


def unclosed_quote_rule() -> RowRule:
    """The row rule for an opening quote that no line closes (see MAX_RECORD_LINES)."""
    return RowRule("_raw", F.col("_unclosed_quote"), UNCLOSED_QUOTE_REASON)


def _is_utf8(spec: TableFile) -> bool:
    return spec.encoding.upper() in ("UTF-8", "UTF8")


def _decoded(spec: TableFile) -> Column:
    """The line as text in the file's encoding. The text reader keeps the bytes undecoded, so a
    cast to binary gives them back. decode() raises on one malformed UTF-8 byte (ANSI mode) and
    would fail the whole job; the line must reach quarantine instead (flagged by `_valid_utf8`),
    so bad bytes become U+FFFD."""
    if _is_utf8(spec):
        return F.make_valid_utf8("_bytes_as_text")
    # Declared Latin-1 (MovieLens u.item, movies.dat), yet often re-saved as UTF-8 by a user's
    # editor: decoded as Latin-1 that gives "StÃ¶ry" with every check passing. So a line whose
    # bytes are valid UTF-8 is read as UTF-8. Latin-1 text with accented letters is practically
    # never valid UTF-8 (an accented letter would have to be followed by C1 controls or by
    # symbols such as "©" or "±"), and ASCII reads the same either way. Decided per line, not per
    # file: it costs no extra pass over the file, and a Latin-1 file to which someone appended
    # lines in UTF-8 still reads right on every line.
    return F.when(F.is_valid_utf8("_bytes_as_text"), F.col("_bytes_as_text")).otherwise(
        F.decode(F.col("_bytes_as_text").cast("binary"), spec.encoding)
    )


def _escaped(sep: str) -> str:
    return "".join("\\" + c if not c.isalnum() else c for c in sep)


def _split(spec: TableFile) -> Column:
    plain = F.split("_raw", _escaped(spec.sep), -1)
    if not spec.quoted:
        return plain
    # Each field with the separator before it; a quoted field's separators stay inside. The
    # regex is slower than split(), so only lines with a quote go through it.
    fields = F.regexp_extract_all(F.concat(F.lit(spec.sep), "_raw"), F.lit(_field_pattern(spec.sep)), 1)
    return F.when(F.instr("_raw", '"') > 0, fields).otherwise(plain)


# --- RFC 4180 quoting ---------------------------------------------------------------------------
# A double quote opens a quoted field only at the start of a field (after spaces, which fields
# lose anyway when trimmed); inside it a quote is doubled, and the first lone quote closes it. A
# quote anywhere else (`tv 55"`) is a literal character of an unquoted field. Possessive
# quantifiers (*+) keep the regexes linear and the parse the canonical one; each `[^"]*+` is a
# loop over characters rather than one recursion per character, so long fields cannot overflow
# Java's regex stack.

_CONTENT = r'[^"]*+(?:""[^"]*+)*+'  # inside quotes: up to the first lone quote or the end


def _field_pattern(sep: str) -> str:
    """One field preceded by its separator: a closed quoted field (and anything stuck after
    its closing quote), or else everything up to the next separator."""
    s = _escaped(sep)
    return f'{s}((?: *"{_CONTENT}")?[^{s}]*+)'


def _complete_field(s: str) -> str:
    return f'(?: *"{_CONTENT}"[^{s}]*+|(?! *")[^{s}]*+)'


def _opens_pattern(sep: str) -> str:
    """A line that, read from outside quotes, ends inside a quoted field: complete fields, then
    a quoted field that the line does not close."""
    s = _escaped(sep)
    return f'^(?:{_complete_field(s)}{s})*+ *"{_CONTENT}\\z'


def _closes_pattern(sep: str) -> str:
    """A line that, read from inside a quoted field, closes it and ends outside quotes."""
    s = _escaped(sep)
    return f'^{_CONTENT}"[^{s}]*+(?:{s}{_complete_field(s)})*+\\z'


def _records(lines: DataFrame, sep: str) -> DataFrame:
    """Lines -> records: the lines of each multi-line quoted record joined into one row.

    Read in order, a line either leaves the parser's state alone, or (it holds quotes) may open
    a quoted field that stays open at its end, or close one left open by an earlier line. Only
    lines with a quote can do either, and opening lines are rare, so the scan over a file is done
    on those few lines (`_record_spans`); every other line keeps its own row and never leaves its
    partition. Nothing here collects to the driver or puts a whole file's lines in one task."""
    has_quote = F.instr("_raw", '"') > 0
    marked = lines.where(has_quote).select(
        "_file",
        "_line",
        F.col("_raw").rlike(_opens_pattern(sep)).alias("_opens"),
        F.col("_raw").rlike(_closes_pattern(sep)).alias("_closes"),
    )
    spans = _record_spans(marked.where(F.col("_opens") | F.col("_closes")))
    # A span covers at most MAX_RECORD_LINES lines, so at most two buckets: joining on the
    # bucket keeps the broadcast join an equi-join (not every line against every span).
    buckets = F.sequence(_bucket("_start"), _bucket("_end"))
    by_bucket = spans.select(
        F.col("_file").alias("_span_file"),
        F.explode(buckets).alias("_span_bucket"),
        "_start",
        "_end",
        "_unclosed",
    )
    joined = lines.join(
        F.broadcast(by_bucket),
        (F.col("_file") == F.col("_span_file"))
        & (_bucket("_line") == F.col("_span_bucket"))
        & F.col("_line").between(F.col("_start"), F.col("_end")),
        "left",
    )
    single = joined.where(F.col("_start").isNull() | F.col("_unclosed")).select(
        "_file",
        "_line",
        "_raw",
        "_valid_utf8",
        F.coalesce(F.col("_unclosed"), F.lit(False)).alias("_unclosed_quote"),
    )
    in_order = F.array_sort(F.collect_list(F.struct("_line", "_raw")))
    glued = (
        joined.where(F.col("_start").isNotNull() & ~F.col("_unclosed"))
        .groupBy("_file", "_start")
        .agg(
            F.array_join(F.transform(in_order, lambda x: x["_raw"]), "\n").alias("_raw"),
            F.bool_and("_valid_utf8").alias("_valid_utf8"),
        )
        .select(
            "_file",
            F.col("_start").alias("_line"),
            "_raw",
            "_valid_utf8",
            F.lit(False).alias("_unclosed_quote"),
        )
    )
    return single.unionByName(glued)


def _bucket(line: str) -> Column:
    return F.floor(F.col(line) / MAX_RECORD_LINES)


def _record_spans(marked: DataFrame) -> DataFrame:
    """(_file, _start, _end, _unclosed) of every multi-line record, and of every opening line
    left unclosed (`_start` = `_end`), from the lines that may open (`_opens`) or close
    (`_closes`) a quoted field.

    A line maps the state before it (outside or inside quotes) to the state after it. A record
    opened on line s ends on the first closing line after it, e(s); if that is more than
    MAX_RECORD_LINES - 1 lines on, line s is unclosed and, for the scan, opens nothing. Which
    opening lines start a record (rather than lie inside another one) depends on the state before
    them, a scan in line order; only opening lines and their e(s) can change the state (any other
    closing line is met outside quotes, where it does nothing), so the scan runs over those."""
    # 1. e(s): the first closing line after each opening line, looked up in the line's bucket and
    #    the next one (closing lines are copied into the bucket before theirs). A window per
    #    bucket holds at most 2 * MAX_RECORD_LINES lines, whatever the file.
    copies = F.when(F.col("_closes"), F.array(_bucket("_line"), _bucket("_line") - 1)).otherwise(
        F.array(_bucket("_line"))
    )
    per_bucket = marked.select("*", F.posexplode(copies).alias("_copy", "_bucket"))
    later = Window.partitionBy("_file", "_bucket").orderBy(F.col("_line").desc())
    first_close = F.min(F.when(F.col("_closes"), F.col("_line"))).over(
        later.rowsBetween(Window.unboundedPreceding, -1)
    )
    openers = (
        per_bucket.withColumn("_close", first_close)
        .where((F.col("_copy") == 0) & F.col("_opens"))
        .select(
            "_file",
            "_line",
            "_closes",
            F.when(F.col("_close") - F.col("_line") < MAX_RECORD_LINES, F.col("_close")).alias("_end"),
        )
    )
    # 2. The lines that can change the state: opening lines, and the lines that close them.
    state_lines = (
        openers.select(
            "_file",
            F.explode(
                F.array(
                    F.struct(
                        F.col("_line").alias("line"),
                        F.col("_end").isNotNull().alias("opens"),
                        F.col("_closes").alias("closes"),
                        F.col("_end").alias("end"),
                        F.col("_end").isNull().alias("unclosed"),
                    ),
                    F.struct(
                        F.col("_end").alias("line"),
                        F.lit(False).alias("opens"),
                        F.lit(True).alias("closes"),
                        F.lit(None).cast("long").alias("end"),
                        F.lit(False).alias("unclosed"),
                    ),
                )
            ).alias("s"),
        )
        .where(F.col("s.line").isNotNull())
        .groupBy("_file", F.col("s.line").alias("_line"))
        .agg(
            F.bool_or("s.opens").alias("_opens"),
            F.bool_or("s.closes").alias("_closes"),
            F.max("s.end").alias("_end"),
            F.bool_or("s.unclosed").alias("_unclosed"),
        )
    )
    # 3. The scan. Each line is one of four maps of the state (1 = inside quotes): keep it (opens
    #    nothing, closes nothing), force 0 (closes only), force 1 (opens only: from inside it
    #    closes and reopens), or flip it (opens from outside, closes from inside). The state after
    #    a line is the last forced value up to it, flipped once per flipping line since. Per file,
    #    over these few lines only (a file where most lines opened a quote would have them all in
    #    one task here: slow, still right, and not a CSV file of this layout anyway).
    in_file = Window.partitionBy("_file").orderBy("_line")
    so_far = in_file.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    opens, closes = F.col("_opens"), F.col("_closes")
    forced = F.when(
        opens != closes, F.struct(opens.cast("int").alias("state"), F.col("_flips").alias("flips"))
    )
    scanned = (
        state_lines.withColumn("_flips", F.sum((opens & closes).cast("int")).over(so_far))
        .withColumn("_forced", F.last(forced, ignorenulls=True).over(so_far))
        .withColumn(
            "_after",
            (
                F.coalesce(F.col("_forced.state"), F.lit(0))
                + F.col("_flips")
                - F.coalesce(F.col("_forced.flips"), F.lit(0))
            )
            % 2,
        )
        .withColumn("_before", F.coalesce(F.lag("_after").over(in_file), F.lit(0)))
    )
    # Met outside quotes: an opening line starts a record, an unclosed one is a row of its own.
    starts = scanned.where((F.col("_before") == 0) & (F.col("_opens") | F.col("_unclosed")))
    return starts.select(
        "_file",
        F.col("_line").alias("_start"),
        F.coalesce("_end", "_line").alias("_end"),
        F.col("_unclosed"),
    )


def _field(index: int, quoted: bool) -> Column:
    value = F.trim(F.get(F.col("_fields"), index))
    if quoted:
        # Only a quoted field loses its quotes and undoubles the ones inside; (?s): it may span lines.
        inner = F.regexp_replace(value.substr(F.lit(2), F.length(value) - 2), '""', '"')
        value = F.when(value.rlike(r'(?s)^".*"\z'), inner).otherwise(value)
    return value
