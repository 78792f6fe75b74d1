"""What every source shares: its layouts, how its files are found, and how its tables are cleaned.

A source (movielens, ecommerce, tv) is a module that reads one family of raw layouts into the
canonical tables:
  interactions(user_id, item_id, event_type, weight, ts, ...source extras; user_idx, item_idx)
  items(item_id, title, genres, ...)    users(user_id, ...)
Ids stay the source's own strings; `*_idx` are the int32 ids ALS needs (see recflow.idmap).
"""

from __future__ import annotations

import fnmatch
import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import Column, DataFrame

from recflow.cleaning import RowRule
from recflow.textfiles import TableFile


class SourceError(ValueError):
    """Input that cannot be read as this source: the message says what and where."""


@dataclass(frozen=True)
class Layout:
    name: str
    marker: str  # the file (name or glob) whose presence identifies the layout
    files: tuple[TableFile, ...]  # required files
    rating_min: float | None = None  # explicit feedback only: the rating scale
    rating_max: float | None = None
    optional: tuple[TableFile, ...] = ()  # read when present (a catalogue, say)

    def file_for(self, table: str) -> TableFile | None:
        return next((f for f in (*self.files, *self.optional) if f.table == table), None)


@dataclass(frozen=True)
class Detected:
    """A layout and the concrete files of each of its tables found under the user's path."""

    layout: Layout
    files: dict[str, list[Path]]


@dataclass(frozen=True)
class TableCleaner:
    """How one raw table becomes a clean one (see recflow.clean.clean_table).

    rules run on the raw text columns; `typed` casts the rows that passed (keeping `_file`,
    `_line` and `_raw`); `typed_rules` then judge typed rows (bots, catalogue membership); of the
    rows left, one per `key` survives, the first by `order`."""

    rules: list[RowRule]
    typed: Callable[[DataFrame], DataFrame]
    key: list[str]
    order: list[Column]
    typed_rules: list[RowRule] = field(default_factory=list)


def first_line(path: Path, encoding: str = "UTF-8") -> str | None:
    """The first line of a (possibly gzipped) text file, without BOM or line ending; None if empty."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            line = f.readline(1 << 16)
    except (OSError, EOFError) as exc:
        # Named in words of our own: gzip's messages name no file (a folder may hold many) and
        # quote the file's first bytes ("Not a gzipped file (b'ro')").
        raise SourceError(f"{path} cannot be read: {_read_error(exc)}") from None
    if not line:
        return None
    return line.decode(encoding, errors="replace").lstrip("\ufeff").rstrip("\r\n")


def _read_error(exc: BaseException) -> str:
    if isinstance(exc, gzip.BadGzipFile):
        return "not a gzip file (the name ends in .gz)"
    if isinstance(exc, EOFError):
        return "a truncated compressed file (an interrupted download?)"
    return getattr(exc, "strerror", None) or type(exc).__name__


def header_of(path: Path, spec: TableFile) -> list[str] | None:
    line = first_line(path, spec.encoding)
    return None if line is None else [f.strip().strip('"') for f in line.split(spec.sep)]


def _candidates(location: Path) -> list[Path]:
    if location.is_file():
        return [location]
    files = sorted(p for p in location.iterdir() if p.is_file() and not p.name.startswith((".", "_")))
    for path in files:
        check_inside(path, location)
    return files


def check_inside(path: Path, folder: Path) -> Path:
    """``path`` unless it resolves outside ``folder`` (a symbolic link to elsewhere): the folder
    was checked against the input folders a run may read, its files must stay in it."""
    if not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder)):
        raise SourceError(f"{path} links to a file outside {folder}: copy the file in instead of linking it")
    return path


def _matches(path: Path, spec: TableFile) -> bool:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if not fnmatch.fnmatch(name, spec.filename):
        return False
    return spec.header is None or header_of(path, spec) == list(spec.header)


def detect_by_header(location: str | Path, layouts: tuple[Layout, ...], source: str) -> Detected:
    """Find the layout whose required files are all present, telling files apart by their header
    line (public dumps are named by month, e.g. 2019-Oct.csv, so names alone cannot say).

    `location` is a folder (every matching file of a table is read) or one file."""
    location = Path(location).expanduser()
    if not location.exists():
        raise SourceError(f"{source} path {location} does not exist")
    candidates = _candidates(location)
    for layout in layouts:
        found = {spec.table: [p for p in candidates if _matches(p, spec)] for spec in layout.files}
        if all(found.values()):
            for spec in layout.optional:
                extra = [p for p in candidates if _matches(p, spec)]
                if extra:
                    found[spec.table] = extra
            stray = _stray_files(candidates, found, layout, layouts)
            if stray:
                raise SourceError(
                    f"{location} holds {source} files that would not be read as {layout.name}: "
                    + "; ".join(stray)
                    + ". Fix them or move them out of the folder."
                )
            return Detected(layout, found)
    raise SourceError(_no_layout_message(location, candidates, layouts, source))


# NUL bytes in the first line: UTF-16 (Excel's "Unicode Text") or not a text file at all.
_NOT_TEXT = "not UTF-8 text (NUL bytes on line 1: UTF-16, or a binary file); save it as UTF-8 CSV"


def _stray_files(candidates: list[Path], found: dict[str, list[Path]], layout: Layout, layouts) -> list[str]:
    """Files named like the layout's that no table took, though they look meant for it: empty,
    another layout's header, the header with another delimiter, or most of a header's columns.

    Without this a month written with ';' or with a renamed column, next to good months, would be
    skipped without a word (the folder is read by header). Unrelated files (Retailrocket's
    category_tree.csv and item_properties.csv beside events.csv) share too little to count."""
    taken = {p for paths in found.values() for p in paths}
    problems = []
    for path in candidates:
        name = path.name[:-3] if path.name.endswith(".gz") else path.name
        if path in taken or not any(
            fnmatch.fnmatch(name, spec.filename) for spec in (*layout.files, *layout.optional)
        ):
            continue
        line = first_line(path)
        if line is None:
            problems.append(f"{path} is empty")
        elif "\x00" in line:
            problems.append(f"{path}: {_NOT_TEXT}")
        else:
            hint = _delimiter_hint(line, layouts, strict=True)
            if hint:
                problems.append(f"{path} line 1: {_shape(line, layout.files[0].sep)}{hint}")
    return problems


def _shape(line: str, sep: str) -> str:
    """What line 1 looks like, in counts only: a file that matched no layout may be anything (a
    password file given as `path`), and this message reaches the task log, the lake's failure
    record and the warehouse's run log, which BI users read. Never quote the file."""
    return f"a header of {len(line.split(sep))} field(s) split at {sep!r}"


def _no_layout_message(location: Path, candidates: list[Path], layouts, source: str) -> str:
    if not candidates:
        return f"{location} holds no files to read as {source}"
    expected = "; ".join(
        f"{layout.name}: {spec.filename} with header {','.join(spec.header or ())}"
        for layout in layouts
        for spec in layout.files
    )
    problems = []
    for path in candidates[:5]:
        try:
            line = first_line(path)
        except SourceError as exc:
            problems.append(str(exc))
            continue
        if line is None:
            problems.append(f"{path} is empty")
            continue
        if "\x00" in line:
            problems.append(f"{path}: {_NOT_TEXT}")
            continue
        hint = _delimiter_hint(line, layouts)
        sep = layouts[0].files[0].sep
        problems.append(f"{path} line 1: {_shape(line, sep)} matches no {source} layout{hint}")
    return f"No {source} layout recognised at {location}: " + "; ".join(problems) + f". Expected {expected}"


def _delimiter_hint(line: str, layouts, strict: bool = False) -> str:
    """What the header line resembles. `strict`: only an exact header of some layout's file, the
    header with another delimiter, or more than half of a header's columns."""
    # Optional files too: a catalogue next to a broken log is the catalogue, not a stranger.
    specs = [
        (layout, spec) for layout in layouts for spec in (*layout.files, *layout.optional) if spec.header
    ]
    for layout, spec in specs:
        if [f.strip().strip('"') for f in line.split(spec.sep)] == list(spec.header):
            return f" (it is a {layout.name} {spec.table} file)"
    for layout, spec in specs:
        for sep in (";", "\t", "|", ","):
            if sep != spec.sep and [f.strip().strip('"') for f in line.split(sep)] == list(spec.header):
                return f" (it is the {layout.name} header with {sep!r} as delimiter; expected {spec.sep!r})"
        found = [f.strip().strip('"') for f in line.split(spec.sep)]
        shared = len(set(found) & set(spec.header))
        if shared and (2 * shared > len(spec.header) if strict else shared >= len(spec.header) // 2):
            # The expected names are ours to show; the file's other names are its content.
            missing = [c for c in spec.header if c not in found]
            extra = sum(c not in spec.header for c in found)
            what = f"{layout.name} {spec.table} header"
            if not missing and not extra:
                return f" ({what}: the columns are there but in another order or repeated)"
            return f" ({what}: missing columns {missing}, {extra} unexpected column(s))"
    return ""
