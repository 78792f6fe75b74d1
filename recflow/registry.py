"""The model registry's lake side: one entry per dataset and run date, written by the publish
task once the warehouse holds the run, read by the evaluate task to find the champion.

An entry is the model_registry row (recflow.warehouse.publish.REGISTRY_KEYS): the version, the
settings the search chose, the search itself, the data snapshot, the metrics and the gate's
decision. The warehouse table is the queryable history; the lake copy lets a Spark job find the
champion's model files without a warehouse connection.
"""

from __future__ import annotations

from recflow.config import Settings
from recflow.facts import partitions_before, read_facts, write_facts_file

STAGE, TABLE = "facts", "registry"


def record(settings: Settings, ds: str, entry: dict) -> None:
    write_facts_file(settings.lake_path(STAGE, TABLE, ds), entry | {"run_date": ds})


def champion_before(settings: Settings, ds: str) -> dict | None:
    """The entry of the latest promoted model before `ds`, or None for a dataset's first run.

    "Before ds", not "latest": a re-run of a date meets the same champion as its first run did,
    so it makes the same decision whatever ran since."""
    for uri in partitions_before(settings, STAGE, TABLE, ds):
        entry = read_facts(uri)
        if entry["decision"] == "promoted":
            return entry
    return None
