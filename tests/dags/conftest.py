"""The DAG folder parsed once for every DAG test, as Airflow's dag-processor parses it: on the
default Spark backend (Spark Connect) and, since the backend is read at parse time, again with
RECFLOW_SPARK_BACKEND=submit."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def parse_dags(**environ):
    """The DAG folder parsed with `environ` set for the parse only."""
    sys.path.insert(0, str(ROOT / "plugins"))
    from airflow.dag_processing.dagbag import DagBag

    saved = {name: os.environ.get(name) for name in environ}
    os.environ.update(environ)
    try:
        return DagBag(dag_folder=str(ROOT / "dags"))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def dagbag(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    return parse_dags()


@pytest.fixture(scope="session")
def parse(dagbag):
    """parse_dags, for a test that needs the DAG folder under another environment."""
    return parse_dags


@pytest.fixture(scope="session")
def submit_dagbag(dagbag):
    return parse_dags(RECFLOW_SPARK_BACKEND="submit")
