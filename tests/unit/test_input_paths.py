"""What a run may read: only files under the deployment's input folders (RECFLOW_INPUT_ROOTS),
and nothing of a file that matched no layout reaches a message (messages go to the task log,
the lake's failure record and the warehouse's run log, which BI users read).

Everything here is refused before Spark reads a byte, so no SparkSession is needed."""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import pytest

from recflow.config import Settings
from recflow.facts import read_facts
from recflow.ingest import ingest
from recflow.jobs import record_failure
from recflow.sources.base import SourceError

SECRET = "db.internal:5432:*:postgres:S3cr3t-pw"
DS = "2024-03-01"


def settings_for(tmp_path: Path, root: Path, **params) -> Settings:
    settings = Settings.from_params(params)
    return dataclasses.replace(settings, data_dir=tmp_path / "data", lake_uri=None, input_roots=str(root))


def ingest_error(settings: Settings) -> str:
    with pytest.raises(SourceError) as excinfo:
        ingest(None, settings, DS)
    return str(excinfo.value)


@pytest.mark.parametrize("source", ["ecommerce", "tv"])
@pytest.mark.parametrize("name", [".pgpass", "credentials.csv", "credentials.csv.gz"])
def test_a_file_that_matches_no_layout_is_described_never_quoted(tmp_path, source, name):
    root = tmp_path / "inputs"
    secret = root / name
    secret.parent.mkdir(parents=True)
    data = f"{SECRET}\nsecond line, also secret\n".encode()
    secret.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    message = ingest_error(settings_for(tmp_path, root, source=source, path=str(secret)))
    assert str(secret) in message and "line 1: a header of 1 field(s) split at ','" in message
    for word in ("S3cr3t", "postgres", "db.internal", "5432", "second line"):
        assert word not in message, message


def test_the_failure_record_and_run_log_text_hold_no_content(tmp_path):
    """The job's error goes to the lake's failure record, which the DAG's callback copies into
    pipeline_run_log: what it holds is the message above, and the message holds no content."""
    root = tmp_path / "inputs"
    (root / "x").mkdir(parents=True)
    (root / "x" / "orders.csv").write_text(f"{SECRET}\n1,2\n")
    settings = settings_for(tmp_path, root, source="ecommerce", path=str(root / "x"))
    with pytest.raises(SourceError) as excinfo:
        ingest(None, settings, DS)
    record_failure(settings, "ingest", DS, excinfo.value)
    failure = read_facts(settings.lake_path("failures", "ingest", DS))
    assert failure["error_type"] == "SourceError" and "orders.csv" in failure["error"]
    assert "S3cr3t" not in failure["error"] and "postgres" not in failure["error"]


def test_a_gz_name_on_a_plain_file_quotes_none_of_its_bytes(tmp_path):
    root = tmp_path / "inputs"
    root.mkdir()
    fake = root / "2019-Oct.csv.gz"
    fake.write_text(SECRET)
    message = ingest_error(settings_for(tmp_path, root, source="ecommerce", path=str(fake)))
    assert message == f"{fake} cannot be read: not a gzip file (the name ends in .gz)"


@pytest.mark.parametrize("source", ["movielens", "ecommerce", "tv"])
@pytest.mark.parametrize("where", ["existing", "missing", "dotdot", "relative-dotdot"])
def test_a_path_outside_the_input_folders_is_refused_without_saying_what_is_there(tmp_path, source, where):
    root = tmp_path / "inputs"
    root.mkdir()
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "events.csv").write_text(SECRET)
    path = {
        "existing": str(outside / "events.csv"),
        "missing": str(outside / "no-such-file.csv"),
        "dotdot": f"{root}/../private/events.csv",
        "relative-dotdot": "../private/events.csv",
    }[where]
    message = ingest_error(settings_for(tmp_path, root, source=source, path=path))
    assert message == (
        f"Run parameter 'path' {path!r} is outside the folders runs may read ({root}): put the data under one "
        "of them, or have the operator add its folder to RECFLOW_INPUT_ROOTS"
    )


def test_a_relative_path_is_read_from_the_first_input_folder(tmp_path):
    root = tmp_path / "inputs"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "notes.csv").write_text("a,b\n")
    settings = settings_for(tmp_path, root, source="ecommerce", path="shop")
    assert settings.input_path("shop") == root / "shop"
    assert f"{root / 'shop' / 'notes.csv'} line 1" in ingest_error(settings)


@pytest.mark.parametrize("source", ["ecommerce", "movielens"])
def test_a_link_inside_an_input_folder_to_a_file_elsewhere_is_refused(tmp_path, source):
    root = tmp_path / "inputs"
    folder = root / "upload"
    folder.mkdir(parents=True)
    secret = tmp_path / "private" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text(SECRET)
    link = folder / ("u.data" if source == "movielens" else "2019-Oct.csv")
    os.symlink(secret, link)
    if source == "movielens":
        for name in ("u.item", "u.user"):
            (folder / name).write_text("1|x\n")
    message = ingest_error(settings_for(tmp_path, root, source=source, path=str(folder)))
    assert message == f"{link} links to a file outside {folder}: copy the file in instead of linking it"


def test_a_link_to_a_folder_elsewhere_is_refused_as_outside(tmp_path):
    root = tmp_path / "inputs"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, root / "shortcut")
    message = ingest_error(settings_for(tmp_path, root, source="ecommerce", path=str(root / "shortcut")))
    assert "is outside the folders runs may read" in message


def test_input_folders_default_to_inputs_under_the_data_folder(tmp_path):
    settings = dataclasses.replace(Settings(), data_dir=tmp_path, input_roots=None)
    assert settings.input_folders == (tmp_path.resolve() / "inputs",)
    several = dataclasses.replace(
        settings, input_roots=os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])
    )
    assert several.input_folders == (tmp_path.resolve() / "a", tmp_path.resolve() / "b")
