"""Bad-input corpus: broken files of every source through the real steps, in process.

Each case proves two things. Bad input gets a specific message that names the file, the column
and a sample row or line (a SourceError at ingest, a quarantined row with its reason, or a
ValidationFailed), never a crash with a stack trace only. And nothing is lost: wherever the clean
step runs, raw = clean + quarantined + duplicates for every table, checked against the rows the
test itself wrote and against what the lake holds (`_run` asserts it after every clean).

The good files come from the generators (small, shared by the module); each case writes its own
copy with the fault injected. Several faults of one source share a file, and so one ingest and
clean, and are then checked one by one (parametrized by fault).
"""

from __future__ import annotations

import dataclasses
import gzip
import re
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from recflow.config import Settings
from recflow.facts import read_facts
from recflow.generate.ecommerce import generate_ecommerce
from recflow.generate.movielens import generate_movielens
from recflow.generate.tv import generate_tv
from recflow.jobs import run_step
from recflow.sources import ecommerce
from recflow.sources.base import SourceError
from recflow.textfiles import UNCLOSED_QUOTE_REASON
from recflow.validation import ValidationFailed, enforce
from spark_jobs.pipeline import STEPS
from spark_jobs.validate_clean import validate_clean

pytestmark = pytest.mark.spark

DS = "2024-03-01"
INT32_MAX = 2**31 - 1

UTF8 = "text is not valid UTF-8"
EVENT_TIME = "event_time is not a time like 2019-10-01 00:00:00 UTC"
UNKNOWN_EVENT_TYPE = "unknown event_type (allowed: view, cart, remove_from_cart, purchase)"
BOT_LIMIT = 120  # max_events_per_user_day of the REES46 corpus; the busiest generated user-day has 83
BOT_REASON = f"bot-like activity: more than {BOT_LIMIT} events by one user in a day"
BOT_USER = b"555000555"
QUOTED_BRAND_USER, STRAY_QUOTE_USER = b"777000001", b"777000002"


# --- how the pipeline is called (as in test_pipeline_steps) ----------------------------------


def _settings(data_dir: Path, **params) -> Settings:
    return dataclasses.replace(Settings.from_params(params), data_dir=data_dir, lake_uri=None)


def _run(spark, data_dir: Path, steps=("ingest", "clean"), **params) -> tuple[Settings, dict]:
    """Run `steps` in order; a validate step's critical failures raise ValidationFailed, and
    every clean is followed by the reconciliation check."""
    settings = _settings(data_dir, **params)
    facts = {}
    for name in steps:
        facts[name] = run_step(spark, name, STEPS[name], settings, DS)
        if name == "clean":
            _assert_reconciles(spark, settings, facts)
        if name.startswith("validate"):
            enforce(facts[name]["results"])
    return settings, facts


def _assert_reconciles(spark, settings: Settings, facts: dict) -> None:
    rows = {r["table_name"]: r for r in facts["clean"]["reconciliation"]}
    assert set(rows) == set(facts["ingest"]["raw_rows"])
    for table, r in rows.items():
        assert r["raw_rows"] == r["clean_rows"] + r["quarantined_rows"] + r["duplicate_rows"], r
        assert r["raw_rows"] == facts["ingest"]["raw_rows"][table], table
        # The counts are those of what the lake holds, not only of what clean() said.
        lake = {
            stage: spark.read.parquet(settings.lake_path(stage, table, DS)).count()
            for stage in ("clean", "quarantine")
        }
        assert (lake["clean"], lake["quarantine"]) == (r["clean_rows"], r["quarantined_rows"]), table


def _reconciliation(facts: dict) -> dict[str, tuple[int, int, int, int]]:
    """table -> (raw, clean, quarantined, duplicates)."""
    return {
        r["table_name"]: (r["raw_rows"], r["clean_rows"], r["quarantined_rows"], r["duplicate_rows"])
        for r in facts["clean"]["reconciliation"]
    }


def _quarantine(spark, settings: Settings, table: str) -> dict[int, dict]:
    """line -> the quarantined row (file name, column, reason, raw text); one file per table."""
    rows = spark.read.parquet(settings.lake_path("quarantine", table, DS)).collect()
    found = {
        r["_line"]: {
            "file": r["_file"].rsplit("/", 1)[-1],
            "column": r["column"],
            "reason": r["reason"],
            "raw": r["_raw"],
        }
        for r in rows
    }
    assert len(found) == len(rows), "one quarantined row per line"
    return found


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]  # the generators end every line with \n


def _write(path: Path, lines: list[bytes], end: bytes = b"\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + end for line in lines))
    return path


def _ingest_error(spark, data_dir: Path, **params) -> str:
    with pytest.raises(SourceError) as excinfo:
        _run(spark, data_dir, steps=("ingest",), **params)
    return str(excinfo.value)


# --- generated good files, shared by the module ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Generated:
    rees46: Path
    retailrocket: Path
    viewing: Path
    channels: Path
    movielens: Path
    stats: dict


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Generated:
    root = tmp_path_factory.mktemp("generated")
    stats = {
        "rees46": generate_ecommerce(root / "rees46", n_users=60, n_items=40, seed=1),
        "retailrocket": generate_ecommerce(
            root / "rr", n_users=60, n_items=40, seed=1, layout="retailrocket"
        ),
        "tv": generate_tv(root / "tv", n_households=60, n_channels=20, seed=1),
        "movielens": generate_movielens(
            root / "ml", n_users=60, n_items=40, mean_ratings_per_user=20, seed=1
        ),
    }
    return Generated(
        rees46=root / "rees46" / "2019-Oct.csv",
        retailrocket=root / "rr" / "events.csv",
        viewing=root / "tv" / "viewing.csv",
        channels=root / "tv" / "channels.csv",
        movielens=root / "ml",
        stats=stats,
    )


# --- cases that stop at ingest, before Spark reads a row -------------------------------------


@pytest.mark.parametrize("source", ["ecommerce", "tv", "movielens"])
def test_path_that_does_not_exist_is_named(spark, tmp_path, source):
    missing = tmp_path / "no-such-folder"
    message = _ingest_error(spark, tmp_path / "data", source=source, path=str(missing))
    assert str(missing) in message
    expected = "is neither a folder nor a MovieLens name" if source == "movielens" else "does not exist"
    assert expected in message


def test_movielens_folder_without_u_item_names_folder_and_missing_file(spark, tmp_path, generated):
    folder = tmp_path / "ml"
    for name in ("u.data", "u.user", "u.genre"):
        _write(folder / name, _lines(generated.movielens / name))
    message = _ingest_error(spark, tmp_path / "data", source="movielens", path=str(folder))
    assert message == f"{folder} looks like MovieLens ml-100k (u.data is there) but lacks u.item"


@pytest.mark.parametrize(("source", "name"), [("ecommerce", "2019-Oct.csv"), ("tv", "viewing.csv")])
def test_empty_file_is_named_as_empty(spark, tmp_path, source, name):
    path = tmp_path / "in" / name
    _write(path, [])
    assert path.stat().st_size == 0
    message = _ingest_error(spark, tmp_path / "data", source=source, path=str(path))
    assert f"{path} is empty" in message


@pytest.mark.parametrize(
    ("source", "name", "sep", "expected"),
    [
        ("ecommerce", "2019-Oct.csv", b";", "(it is the rees46 header with ';' as delimiter; expected ',')"),
        ("tv", "viewing.csv", b"\t", "(it is the tv-viewing header with '\\t' as delimiter; expected ',')"),
    ],
    ids=["rees46-semicolon", "tv-tab"],
)
def test_wrong_delimiter_is_named(spark, tmp_path, generated, source, name, sep, expected):
    good = generated.rees46 if source == "ecommerce" else generated.viewing
    path = _write(tmp_path / "in" / name, [line.replace(b",", sep) for line in _lines(good)])
    message = _ingest_error(spark, tmp_path / "data", source=source, path=str(path))
    assert f"{path} line 1: a header of 1 field(s) split at ','" in message
    assert expected in message


def test_tv_file_without_watch_time_names_the_missing_column(spark, tmp_path, generated):
    path = _write(
        tmp_path / "in" / "viewing.csv", [line.rsplit(b",", 1)[0] for line in _lines(generated.viewing)]
    )
    message = _ingest_error(spark, tmp_path / "data", source="tv", path=str(path))
    assert f"{path} line 1: a header of 4 field(s) split at ','" in message
    assert "missing columns ['watch_time_portrait'], 0 unexpected column(s)" in message


def test_tv_file_with_an_extra_column_names_it(spark, tmp_path, generated):
    lines = _lines(generated.viewing)
    path = _write(
        tmp_path / "in" / "viewing.csv", [lines[0] + b",region"] + [line + b",north" for line in lines[1:]]
    )
    (tmp_path / "in" / "channels.csv").write_bytes(generated.channels.read_bytes())
    message = _ingest_error(spark, tmp_path / "data", source="tv", path=str(path.parent))
    assert f"{path} line 1: a header of 6 field(s) split at ','" in message
    # The expected columns are named; the file's own words are not echoed.
    assert "missing columns [], 1 unexpected column(s)" in message and "region" not in message
    # The good catalogue beside it is told for what it is, not as one more stranger.
    assert f"{path.parent / 'channels.csv'} line 1: a header of 3 field(s)" in message
    assert "(it is a tv-viewing items file)" in message


def test_folder_of_unrelated_files_lists_what_it_found(spark, tmp_path):
    folder = tmp_path / "downloads"
    _write(folder / "notes.txt", [b"hello"])
    _write(folder / "orders.csv", [b"order_id,amount", b"1,9.99"])
    _write(folder / "empty.csv", [])
    message = _ingest_error(spark, tmp_path / "data", source="ecommerce", path=str(folder))
    assert message.startswith(f"No e-commerce layout recognised at {folder}: ")
    assert f"{folder / 'empty.csv'} is empty" in message
    assert (
        f"{folder / 'notes.txt'} line 1: a header of 1 field(s) split at ',' matches no e-commerce" in message
    )
    assert (
        f"{folder / 'orders.csv'} line 1: a header of 2 field(s) split at ',' matches no e-commerce"
        in message
    )
    assert "hello" not in message and "order_id" not in message
    assert "Expected rees46: *.csv with header event_time,event_type,product_id" in message


def test_utf16_file_is_named_as_not_utf8(spark, tmp_path, generated):
    # Excel's "Unicode Text" export: UTF-16 with a BOM.
    path = tmp_path / "in" / "2019-Oct.csv"
    path.parent.mkdir()
    path.write_bytes(generated.rees46.read_text("utf-8").encode("utf-16"))
    message = _ingest_error(spark, tmp_path / "data", source="ecommerce", path=str(path))
    assert f"{path}: not UTF-8 text (NUL bytes on line 1: UTF-16, or a binary file)" in message


def test_gz_file_that_is_not_gzip_is_named(spark, tmp_path, generated):
    path = tmp_path / "in" / "2019-Oct.csv.gz"
    path.parent.mkdir()
    path.write_bytes(generated.rees46.read_bytes())  # named .gz, never compressed
    message = _ingest_error(spark, tmp_path / "data", source="ecommerce", path=str(path))
    assert message == f"{path} cannot be read: not a gzip file (the name ends in .gz)"


def test_truncated_gz_file_is_named_not_a_java_stack(spark, tmp_path, generated):
    # An interrupted download: the first lines decompress, the end of the stream is missing.
    path = tmp_path / "in" / "2019-Oct.csv.gz"
    path.parent.mkdir()
    whole = gzip.compress(generated.rees46.read_bytes())
    path.write_bytes(whole[: len(whole) // 2])
    message = _ingest_error(spark, tmp_path / "data", source="ecommerce", path=str(path))
    assert message.startswith(
        f"{path} cannot be read to the end: java.io.EOFException: Unexpected end of input stream"
    )
    assert "truncated or corrupt compressed file" in message
    assert "\tat " not in message  # no Java stack in the message


def test_unreadable_file_failing_in_several_stages_still_names_the_cause():
    # A quoted file is read by several stages of one plan; when the file breaks, Spark lists the
    # failure once per stage and Java prints the repeats as circular references.
    from recflow.ingest import _unreadable_file

    failure = "org.apache.spark.SparkException: [FAILED_READ_FILE.NO_HINT] Encountered error while reading file file:///in/2019-Oct.csv.gz.  SQLSTATE: KD001"
    text = (
        f"An error occurred while calling o813.parquet.\n: {failure}\n\tat x.y(Z.java:1)\n"
        f"\tSuppressed: {failure}\n\tCaused by: java.io.EOFException: Unexpected end of input stream\n"
        f"\tSuppressed: [CIRCULAR REFERENCE: {failure}]\n"
        f"Caused by: [CIRCULAR REFERENCE: {failure}]\n"
    )
    assert _unreadable_file(RuntimeError(text)) == (
        "/in/2019-Oct.csv.gz cannot be read to the end: java.io.EOFException: Unexpected end of input "
        "stream (a truncated or corrupt compressed file, e.g. an interrupted download: fetch it again)"
    )


# A folder is read by header, so a broken file beside good ones used to be skipped without a
# word: a whole month or the catalogue lost.
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("month-with-semicolons", "2019-Nov.csv line 1: a header of 1 field(s) split at ',' (it is the rees46 header with ';'"),
        ("month-with-renamed-column", "missing columns ['user_id'], 1 unexpected column(s)"),
        ("empty-month", "2019-Nov.csv is empty"),
        ("retailrocket-beside-rees46", "events.csv line 1: a header of 5 field(s) split at ',' (it is a retailrocket interactions file)"),
    ],
)  # fmt: skip
def test_broken_file_beside_good_ones_is_not_skipped_silently(spark, tmp_path, generated, case, expected):
    folder = tmp_path / "in"
    lines = _lines(generated.rees46)
    _write(folder / "2019-Oct.csv", lines)
    if case == "month-with-semicolons":
        _write(folder / "2019-Nov.csv", [line.replace(b",", b";") for line in lines])
    elif case == "month-with-renamed-column":
        _write(folder / "2019-Nov.csv", [lines[0].replace(b"user_id", b"userid"), *lines[1:]])
    elif case == "empty-month":
        _write(folder / "2019-Nov.csv", [])
    else:
        _write(folder / "events.csv", _lines(generated.retailrocket))
    message = _ingest_error(spark, tmp_path / "data", source="ecommerce", path=str(folder))
    assert message.startswith(f"{folder} holds e-commerce files that would not be read as rees46: {folder}/")
    assert expected in message
    assert "2019-Oct.csv" not in message  # the good file is not blamed


def test_broken_catalogue_beside_good_viewing_is_not_skipped_silently(spark, tmp_path, generated):
    folder = tmp_path / "in"
    _write(folder / "viewing.csv", _lines(generated.viewing))
    channels = _lines(generated.channels)
    _write(folder / "channels.csv", [channels[0] + b",region"] + [line + b",north" for line in channels[1:]])
    message = _ingest_error(spark, tmp_path / "data", source="tv", path=str(folder))
    assert message.startswith(f"{folder} holds TV viewing files that would not be read as tv-viewing: ")
    assert f"{folder / 'channels.csv'} line 1: a header of 4 field(s) split at ','" in message
    assert "(tv-viewing items header: missing columns [], 1 unexpected column(s))" in message
    assert "region" not in message


def test_retailrocket_download_with_its_other_files_still_reads_events_only(tmp_path, generated):
    # The Kaggle download holds more CSVs than events.csv; they are no broken events files.
    folder = tmp_path / "retailrocket"
    _write(folder / "events.csv", _lines(generated.retailrocket))
    _write(folder / "category_tree.csv", [b"categoryid,parentid", b"1016,213"])
    _write(
        folder / "item_properties_part1.csv",
        [b"timestamp,itemid,property,value", b"1435460400000,460429,categoryid,1338"],
    )
    detected = ecommerce.detect(folder)
    assert detected.layout.name == "retailrocket"
    assert detected.files == {"interactions": [folder / "events.csv"]}


@pytest.mark.parametrize(("source", "name"), [("ecommerce", "2019-Oct.csv"), ("tv", "viewing.csv")])
def test_header_only_file_is_named(spark, tmp_path, generated, source, name):
    good = generated.rees46 if source == "ecommerce" else generated.viewing
    path = _write(tmp_path / "in" / name, _lines(good)[:1])
    message = _ingest_error(spark, tmp_path / "data", source=source, path=str(path))
    assert message == f"{path}: no data rows, only a header"


# --- REES46: many faults in one generated file ------------------------------------------------


def _rees46_row(template: bytes, **values: bytes) -> bytes:
    fields = dict(zip(ecommerce.REES46_COLUMNS, template.split(b","), strict=True))
    return b",".join(values.get(c, fields[c]) for c in ecommerce.REES46_COLUMNS)


def _rees46_faults(template: bytes, header: bytes) -> list[tuple[str, bytes, tuple[str, str] | None]]:
    """(id, line, (column, reason) it is quarantined with, or None when it is good)."""
    row = lambda **v: _rees46_row(template, **v)  # noqa: E731
    return [
        ("latin1-byte", row(brand=b"caf\xe9"), ("_raw", UTF8)),
        ("invalid-bytes", b"\xff\xfe" + template, ("_raw", UTF8)),
        ("day-first-time", row(event_time=b"01/10/2019 05:42:42 UTC"), ("event_time", EVENT_TIME)),
        ("iso-t-time", row(event_time=b"2019-10-01T05:42:42Z"), ("event_time", EVENT_TIME)),
        ("month-13", row(event_time=b"2019-13-01 00:00:00 UTC"), ("event_time", EVENT_TIME)),
        ("before-2000", row(event_time=b"1999-12-31 23:00:00 UTC"), ("event_time", "event_time outside 2000..2100")),
        ("click-event", row(event_type=b"click"), ("event_type", UNKNOWN_EVENT_TYPE)),
        ("negative-price", row(price=b"-5.00"), ("price", "price is not a non-negative number")),
        ("user-id-text", row(user_id=b"u123"), ("user_id", "user_id is not a positive integer id")),
        ("repeated-header", header, ("event_time", EVENT_TIME)),  # two files glued with cat
        ("blank-line", b"", ("_raw", "expected 9 fields")),
        ("eight-fields", template.rsplit(b",", 1)[0], ("_raw", "expected 9 fields")),
        ("user-id-beyond-int32", row(user_id=b"9000000000"), None),
        # RFC 4180: a brand quoted because it holds a comma is one field; a quote inside an
        # unquoted field is a character (their own users, so they are no re-sends of the template).
        ("quoted-brand-with-comma", row(brand=b'"acme, inc"', user_id=QUOTED_BRAND_USER), None),
        ("stray-quote-in-brand", row(brand=b'tv 55"', user_id=STRAY_QUOTE_USER), None),
        # Last: a quote that never closes would otherwise pair with the next quote within
        # MAX_RECORD_LINES lines (as in any CSV reader), and no other fault has quotes after it.
        ("unclosed-quote", row(brand=b'"acme, inc', user_id=b"777000003"), ("_raw", UNCLOSED_QUOTE_REASON)),
    ]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Corpus:
    settings: Settings
    facts: dict
    expected: dict[str, tuple[int, tuple[str, str] | None, bytes]]  # id -> (line, rule, text)
    n_rows: int  # data rows the test wrote
    quarantine: dict[int, dict]  # the interactions quarantine, as _quarantine() reads it


@pytest.fixture(scope="module")
def rees46_corpus(spark, generated, tmp_path_factory) -> Corpus:
    lines = _lines(generated.rees46)
    header, good = lines[0], lines[1:]
    per_user_day: dict[tuple[bytes, bytes], int] = {}
    for line in good:
        fields = line.split(b",")
        key = (fields[7], fields[0][:10])
        per_user_day[key] = per_user_day.get(key, 0) + 1
    assert max(per_user_day.values()) < BOT_LIMIT  # the premise: only the injected bot is one
    assert not any(user == BOT_USER for user, _ in per_user_day)

    out, expected = [header], {}
    faults = _rees46_faults(good[0], header)
    for n, (fault_id, line, rule) in enumerate(faults):
        out += good[n * 100 : (n + 1) * 100]  # spread among the good rows
        out.append(line)
        expected[fault_id] = (len(out), rule, line)
    out += good[len(faults) * 100 :]
    # A bot: BOT_LIMIT + 1 events on one day (all quarantined), and one event the next day (kept).
    for i in range(BOT_LIMIT + 1):
        line = _rees46_row(
            good[0], event_time=f"2019-10-02 10:{i // 60:02d}:{i % 60:02d} UTC".encode(), user_id=BOT_USER
        )
        out.append(line)
        expected[f"bot-{i}"] = (len(out), ("user_id", BOT_REASON), line)
    out.append(_rees46_row(good[0], event_time=b"2019-10-03 10:00:00 UTC", user_id=BOT_USER))
    expected["bot-next-day"] = (len(out), None, out[-1])
    # The last line cut short, without its line ending: a file copied while being written.
    last = b"2019-10-07 23:59:59 UTC,view,133"
    out.append(last)
    expected["cut-last-line"] = (len(out), ("_raw", "expected 9 fields"), last)

    root = tmp_path_factory.mktemp("rees46-corpus")
    path = root / "in" / "2019-Oct.csv"
    path.parent.mkdir()
    path.write_bytes(b"\n".join(out))  # no line ending after the cut last line
    settings, facts = _run(
        spark, root / "data", source="ecommerce", path=str(path), max_events_per_user_day=BOT_LIMIT
    )
    return Corpus(settings, facts, expected, len(out) - 1, _quarantine(spark, settings, "interactions"))


REES46_BAD_ROWS = [fault_id for fault_id, _, rule in _rees46_faults(b",".join([b"x"] * 9), b"h") if rule]


@pytest.mark.parametrize("fault", [*REES46_BAD_ROWS, "cut-last-line"])
def test_rees46_bad_row_is_quarantined_with_file_line_column_and_reason(rees46_corpus, fault):
    line, (column, reason), text = rees46_corpus.expected[fault]
    found = rees46_corpus.quarantine[line]
    assert found == {
        "file": "2019-Oct.csv",
        "column": column,
        "reason": reason,
        "raw": text.decode("utf-8", "replace"),
    }


def test_rees46_quarantine_holds_exactly_the_bad_rows_and_reconciles(rees46_corpus):
    bad = {line: rule for line, rule, _ in rees46_corpus.expected.values() if rule is not None}
    found = rees46_corpus.quarantine
    assert {line: (r["column"], r["reason"]) for line, r in found.items()} == bad
    n = rees46_corpus.n_rows
    assert _reconciliation(rees46_corpus.facts) == {"interactions": (n, n - len(bad), len(bad), 0)}


def test_rees46_quarantine_summary_samples_the_first_line_of_each_reason(rees46_corpus):
    first: dict[str, tuple[int, str]] = {}
    for line, rule, text in sorted(rees46_corpus.expected.values(), key=lambda e: e[0]):
        if rule is not None and rule[1] not in first:
            first[rule[1]] = (line, text.decode("utf-8", "replace"))
    summary = {s["reason"]: s for s in rees46_corpus.facts["clean"]["quarantine"]}
    assert set(summary) == set(first)
    for reason, (line, text) in first.items():
        s = summary[reason]
        assert s["sample_file"].endswith("/in/2019-Oct.csv"), reason
        assert (s["sample_line"], s["sample_row"]) == (line, text), reason


def test_rees46_bot_day_is_quarantined_and_its_other_day_kept(spark, rees46_corpus):
    clean_rows = spark.read.parquet(rees46_corpus.settings.lake_path("clean", "interactions", DS))
    kept = clean_rows.where(f"user_id = '{BOT_USER.decode()}'").collect()
    assert [str(r["ts"]) for r in kept] == ["2019-10-03 10:00:00"]
    bot_lines = [rees46_corpus.expected[f"bot-{i}"][0] for i in range(BOT_LIMIT + 1)]
    quarantined = sorted(n for n, r in rees46_corpus.quarantine.items() if r["reason"] == BOT_REASON)
    assert quarantined == bot_lines  # every row of the bot's day, and no other user's
    assert {rees46_corpus.quarantine[n]["column"] for n in bot_lines} == {"user_id"}
    summary = {s["reason"]: s["rows_quarantined"] for s in rees46_corpus.facts["clean"]["quarantine"]}
    assert summary[BOT_REASON] == BOT_LIMIT + 1


def test_rees46_user_id_beyond_int32_is_kept_and_mapped_to_an_int32_idx(spark, rees46_corpus):
    interactions = spark.read.parquet(rees46_corpus.settings.lake_path("clean", "interactions", DS))
    assert dict(interactions.dtypes)["user_idx"] == "int"
    rows = interactions.where("user_id = '9000000000'").collect()
    assert len(rows) == 1
    assert 0 <= rows[0]["user_idx"] <= INT32_MAX
    line, rule, _ = rees46_corpus.expected["user-id-beyond-int32"]
    assert rule is None and line not in rees46_corpus.quarantine


def test_rees46_quoted_brand_is_one_field_and_a_stray_quote_a_character(spark, rees46_corpus, generated):
    interactions = spark.read.parquet(rees46_corpus.settings.lake_path("clean", "interactions", DS))
    rows = interactions.where(F.col("user_id").isin(QUOTED_BRAND_USER.decode(), STRAY_QUOTE_USER.decode()))
    found = {r["user_id"]: (r["brand"], r["price"], r["session_id"]) for r in rows.collect()}
    template = _lines(generated.rees46)[1].decode().split(",")  # the row the faults are made of
    price, session = float(template[6]), template[8]
    assert found == {
        QUOTED_BRAND_USER.decode(): ("acme, inc", price, session),
        STRAY_QUOTE_USER.decode(): ('tv 55"', price, session),
    }


# --- REES46: whole files that validation rejects ---------------------------------------------


@pytest.mark.parametrize(
    ("fault", "key", "expected"),
    [
        (
            "iso-times",
            "expect_column_values_to_not_be_null:event_ts",
            "event_time parses, like 2019-10-01 00:00:00 UTC (column event_ts)",
        ),
        (
            "all-click",
            "expect_column_values_to_be_in_set:event_type",
            "event_type is view, cart, remove_from_cart or purchase (column event_type)",
        ),
    ],
)
def test_rees46_file_of_mostly_bad_rows_fails_validation_naming_column_file_and_line(
    spark, tmp_path, generated, fault, key, expected
):
    lines = _lines(generated.rees46)
    header, good = lines[0], lines[1:]
    if fault == "iso-times":
        # Most rows with ISO times (2019-10-01T00:59:18Z), the last ten as they should be.
        bad = [line.replace(b" UTC", b"Z").replace(b" ", b"T", 1) for line in good[:-10]]
        rows = bad + good[-10:]
    else:
        bad = [_rees46_row(line, event_type=b"click") for line in good]
        rows = bad
    path = _write(tmp_path / "in" / "2019-Oct.csv", [header, *rows])
    with pytest.raises(ValidationFailed) as excinfo:
        _run(spark, tmp_path / "data", steps=("ingest", "validate_raw"), source="ecommerce", path=str(path))
    settings = _settings(tmp_path / "data", source="ecommerce", path=str(path))
    results = read_facts(settings.lake_path("facts", "validate_raw", DS))["results"]
    failed = [r["expectation_key"] for r in results if not r["success"] and r["severity"] == "critical"]
    assert failed == [key]  # this rule and no other
    message = str(excinfo.value)
    assert expected in message
    assert f"{len(bad)} of {len(rows)} rows unexpected" in message
    sample = re.search(rf"first at file:{re.escape(str(path))} line (\d+)", message)
    assert sample, message
    assert rows[int(sample.group(1)) - 2] in bad  # line 1 is the header


def test_rees46_file_of_one_line_fifty_times_reconciles_and_fails_clean_validation(
    spark, tmp_path, generated
):
    header, first = _lines(generated.rees46)[:2]
    path = _write(tmp_path / "in" / "2019-Oct.csv", [header] + [first] * 50)
    settings, facts = _run(spark, tmp_path / "data", source="ecommerce", path=str(path))
    assert _reconciliation(facts) == {"interactions": (50, 1, 0, 49)}
    assert facts["clean"]["quarantine"] == []  # duplicates are not bad rows
    with pytest.raises(ValidationFailed) as excinfo:
        enforce(run_step(spark, "validate_clean", validate_clean, settings, DS)["results"])
    message = str(excinfo.value)
    assert "at least two users (column user_idx): observed 1" in message
    assert "at least two items (column item_idx): observed 1" in message


def test_rees46_gzip_file_reads_like_the_plain_one(spark, tmp_path, generated):
    path = tmp_path / "in" / "2019-Oct.csv.gz"
    path.parent.mkdir()
    path.write_bytes(gzip.compress(generated.rees46.read_bytes()))
    _, facts = _run(spark, tmp_path / "data", source="ecommerce", path=str(path))
    stats = generated.stats["rees46"]
    n = stats["events"]
    assert _reconciliation(facts) == {"interactions": (n, n, 0, 0)}
    assert facts["clean"]["quarantine"] == []
    assert facts["clean"]["event_mix"] == {t: stats[t] for t in ecommerce.EVENT_TYPES}


# --- Retailrocket -------------------------------------------------------------------------------


def test_retailrocket_seconds_and_unknown_events_are_quarantined(spark, tmp_path, generated):
    lines = _lines(generated.retailrocket)
    fields = lines[10].split(b",")
    seconds = b",".join([fields[0][:-3], *fields[1:]])  # 1570050675349 ms -> 1570050675 s
    click = b",".join([fields[0], fields[1], b"click", *fields[3:]])
    lines[10], lines[20] = seconds, click
    path = _write(tmp_path / "in" / "events.csv", lines)
    settings, facts = _run(spark, tmp_path / "data", source="ecommerce", path=str(path))
    assert _quarantine(spark, settings, "interactions") == {
        11: {"file": "events.csv", "column": "timestamp", "reason": "timestamp is not unix milliseconds between 2000 and 2100", "raw": seconds.decode()},
        21: {"file": "events.csv", "column": "event", "reason": "unknown event (allowed: view, addtocart, transaction)", "raw": click.decode()},
    }  # fmt: skip
    n = len(lines) - 1
    assert _reconciliation(facts) == {"interactions": (n, n - 2, 2, 0)}


# --- TV -----------------------------------------------------------------------------------------

TV_CELL = b"1111111111"
# Appended to the generated catalogue: a name across two lines (one record, numbered by its first
# line), then a quote that the file never closes.
TV_EXTRA_CHANNELS = b'CH021,"Late\nNight TV",entertainment\nCH022,"Never closed,news\n'


def _tv_faults() -> list[tuple[str, bytes, tuple[str, str] | None]]:
    watch = ("watch_time_portrait", "watch_time_portrait outside 1..3600 seconds")
    return [
        ("watch-negative", b"CH001," + TV_CELL + b",2024-03-01,5,-5", watch),
        ("watch-4000", b"CH001," + TV_CELL + b",2024-03-01,6,4000", watch),
        ("watch-fraction", b"CH001," + TV_CELL + b",2024-03-01,7,12.5", ("watch_time_portrait", "watch_time_portrait is not whole seconds")),
        ("hour-24", b"CH001," + TV_CELL + b",2024-03-01,24,100", ("program_hour", "program_hour is not an hour 0..23")),
        ("date-feb-30", b"CH001," + TV_CELL + b",2024-02-30,8,100", ("program_date", "program_date is not a date like 2024-03-01")),
        ("latin1-byte", b"CH\xe9001," + TV_CELL + b",2024-03-01,9,100", ("_raw", UTF8)),
        ("six-fields", b"CH001," + TV_CELL + b",2024-03-01,10,100,north", ("_raw", "expected 5 fields")),
        ("channel-not-in-catalogue", b"CH999," + TV_CELL + b",2024-03-01,11,100", ("item_id", "item_id not in the catalogue (channels.csv)")),
        ("cellid-beyond-int32", b"CH001,99999999999,2024-03-01,12,100", None),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def tv_corpus(spark, generated, tmp_path_factory) -> Corpus:
    lines = _lines(generated.viewing)
    assert not any(line.split(b",")[1] in (TV_CELL, b"99999999999") for line in lines[1:])
    out, expected = [lines[0]], {}
    for n, (fault_id, line, rule) in enumerate(_tv_faults()):
        out += lines[1 + n * 100 : 1 + (n + 1) * 100]
        out.append(line)
        expected[fault_id] = (len(out), rule, line)
    out += lines[1 + len(_tv_faults()) * 100 :]
    root = tmp_path_factory.mktemp("tv-corpus")
    path = _write(root / "in" / "viewing.csv", out)
    (root / "in" / "channels.csv").write_bytes(generated.channels.read_bytes() + TV_EXTRA_CHANNELS)
    settings, facts = _run(spark, root / "data", source="tv", path=str(path.parent))
    return Corpus(settings, facts, expected, len(out) - 1, _quarantine(spark, settings, "interactions"))


@pytest.mark.parametrize("fault", [f for f, _, rule in _tv_faults() if rule is not None])
def test_tv_bad_row_is_quarantined_with_file_line_column_and_reason(tv_corpus, fault):
    line, (column, reason), text = tv_corpus.expected[fault]
    found = tv_corpus.quarantine[line]
    assert found == {
        "file": "viewing.csv",
        "column": column,
        "reason": reason,
        "raw": text.decode("utf-8", "replace"),
    }


def test_tv_quarantine_holds_exactly_the_bad_rows_and_reconciles(tv_corpus):
    bad = {line: rule for line, rule, _ in tv_corpus.expected.values() if rule is not None}
    found = tv_corpus.quarantine
    assert {line: (r["column"], r["reason"]) for line, r in found.items()} == bad
    n, n_channels = tv_corpus.n_rows, 20 + 2
    assert _reconciliation(tv_corpus.facts) == {
        "interactions": (n, n - len(bad), len(bad), 0),
        # Records, not lines: the two-line name is one raw row; the unclosed quote is quarantined.
        "items": (n_channels, n_channels - 1, 1, 0),
    }


def test_tv_channel_name_across_two_lines_is_one_item_and_an_unclosed_quote_is_quarantined(spark, tv_corpus):
    items = spark.read.parquet(tv_corpus.settings.lake_path("clean", "items", DS))
    titles = {r["item_id"]: r["title"] for r in items.where("item_id IN ('CH004', 'CH021')").collect()}
    assert titles == {"CH004": "Nature, Science & History", "CH021": "Late\nNight TV"}
    assert _quarantine(spark, tv_corpus.settings, "items") == {
        # Line 1 is the header, 2..21 the generated channels, CH021 is lines 22 and 23.
        24: {"file": "channels.csv", "column": "_raw", "reason": UNCLOSED_QUOTE_REASON, "raw": 'CH022,"Never closed,news'},
    }  # fmt: skip


def test_tv_cellid_beyond_int32_is_kept_and_mapped_to_an_int32_idx(spark, tv_corpus):
    interactions = spark.read.parquet(tv_corpus.settings.lake_path("clean", "interactions", DS))
    assert dict(interactions.dtypes)["user_idx"] == "int"
    rows = interactions.where("user_id = '99999999999'").collect()
    assert [(r["item_id"], r["program_hour"], r["watch_seconds"]) for r in rows] == [("CH001", 12, 100)]
    assert 0 <= rows[0]["user_idx"] <= INT32_MAX


def test_tv_crlf_and_bom_read_like_plain_files(spark, tmp_path, generated):
    folder = tmp_path / "in"
    viewing, channels = _lines(generated.viewing), _lines(generated.channels)
    _write(folder / "viewing.csv", [b"\xef\xbb\xbf" + viewing[0], *viewing[1:]], end=b"\r\n")
    _write(folder / "channels.csv", [b"\xef\xbb\xbf" + channels[0], *channels[1:]], end=b"\r\n")
    settings, facts = _run(spark, tmp_path / "data", source="tv", path=str(folder))
    n = generated.stats["tv"]["rows"]
    assert _reconciliation(facts) == {"interactions": (n, n, 0, 0), "items": (20, 20, 0, 0)}
    assert facts["clean"]["quarantine"] == []
    clean_rows = spark.read.parquet(settings.lake_path("clean", "interactions", DS))
    total = sum(int(line.rsplit(b",", 1)[1]) for line in viewing[1:])
    assert clean_rows.selectExpr("sum(watch_seconds)").first()[0] == total  # no "\r" left on the last field
    genres = {r["genres"] for r in spark.read.parquet(settings.lake_path("clean", "items", DS)).collect()}
    assert genres == {line.rsplit(b",", 1)[1].decode() for line in channels[1:]}


# --- MovieLens ------------------------------------------------------------------------------------


def test_movielens_bad_rows_of_each_file_are_quarantined_with_their_reasons(spark, tmp_path, generated):
    folder = tmp_path / "ml"
    ratings = _lines(generated.movielens / "u.data")
    ratings[2] = b"1\t2\t9\t881250949"
    ratings[3] = b"3000000000\t2\t3\t881250949"
    ratings[4] = b"1\t2\t3"
    items = _lines(generated.movielens / "u.item") + [b"41|Title only"]
    users = _lines(generated.movielens / "u.user") + [b"61|3\xe9|M|writer|12345"]
    _write(folder / "u.data", ratings)
    _write(folder / "u.item", items)
    _write(folder / "u.user", users)
    settings, facts = _run(spark, tmp_path / "data", source="movielens", path=str(folder))
    found = {table: _quarantine(spark, settings, table) for table in ("interactions", "items", "users")}
    assert found == {
        "interactions": {
            3: {"file": "u.data", "column": "rating", "reason": "rating outside 1..5", "raw": "1\t2\t9\t881250949"},
            4: {"file": "u.data", "column": "user_id", "reason": "user_id is not an integer id within int32", "raw": "3000000000\t2\t3\t881250949"},
            5: {"file": "u.data", "column": "_raw", "reason": "expected 4 fields", "raw": "1\t2\t3"},
        },
        "items": {41: {"file": "u.item", "column": "_raw", "reason": "expected 24 fields", "raw": "41|Title only"}},
        # Read as UTF-8: the bad byte is quarantined, not turned into U+FFFD in the clean table.
        "users": {61: {"file": "u.user", "column": "_raw", "reason": UTF8, "raw": "61|3\ufffd|M|writer|12345"}},
    }  # fmt: skip
    n = len(ratings)
    assert _reconciliation(facts) == {
        "interactions": (n, n - 3, 3, 0),
        "items": (41, 40, 1, 0),
        "users": (61, 60, 1, 0),
    }
