"""Great Expectations inside the Spark job, on the Spark DataFrame itself.

Every expectation carries a severity in its meta: a failed `critical` one stops the run before
anything is published; a failed `warning` is recorded and the run goes on.
"""

from __future__ import annotations

import copy
import datetime as dt
import fcntl
import json
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

CRITICAL, WARNING = "critical", "warning"
# Where a failing row came from, and the row itself, so a message can show it as it was.
INDEX_COLUMNS = ["_file", "_line", "_raw"]

# Names inside the Data Docs' file context (docs_dir/gx/great_expectations.yml).
DOCS_SITE = "local_site"  # the site a new file context is created with
SPARK_SOURCE = "recflow_spark"
WHOLE_DATAFRAME = "whole_dataframe"


def docs_index(docs_dir: str | Path) -> Path:
    """The Data Docs site's index.html under a docs_dir given to run_suites."""
    return Path(docs_dir) / "gx" / "uncommitted" / "data_docs" / DOCS_SITE / "index.html"


class ValidationFailed(RuntimeError):
    pass


def run_suite(df, suite, index_columns: list[str] | None = None) -> list[dict]:
    """Validate a Spark DataFrame; one flat dict per expectation, ready for the warehouse."""
    import great_expectations as gx  # heavy import, only in the job that needs it

    context = gx.get_context(mode="ephemeral")
    _quiet(context)
    batch_definition = (
        context.data_sources.add_spark(f"{suite.name}_source")
        .add_dataframe_asset(f"{suite.name}_asset")
        .add_batch_definition_whole_dataframe(f"{suite.name}_batch")
    )
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    outcome = batch.validate(suite, result_format=_result_format(df, index_columns))
    keys: Counter[str] = Counter()
    return [_flatten(suite.name, r, keys) for r in outcome.results]


def _quiet(context) -> None:
    """No tqdm bars: in a task log they are hundreds of carriage-return lines per suite."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)


def _result_format(df, index_columns: list[str] | None) -> dict:
    index_columns = [c for c in (index_columns or INDEX_COLUMNS) if c in df.columns]
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": 3}
    if index_columns:
        result_format["unexpected_index_column_names"] = index_columns
    return result_format


def run_suites(
    checks: list[tuple[DataFrame, ExpectationSuite]],
    docs_dir: str | Path | None,
    run_name: str,
    index_columns: list[str] | None = None,
) -> tuple[list[dict], str | None]:
    """Validate each (df, suite); return (flat results as run_suite returns them, in order,
    path of the Data Docs index.html or None when docs_dir is None).

    With a docs_dir the checks run in a GX file context rooted there (docs_dir/gx), so every
    validation result is kept, page by page, in one Data Docs site that grows run after run:
    docs_dir/gx/uncommitted/data_docs/local_site/index.html. A re-run of the same run_name adds
    new pages (each validation has its own run time) and leaves the earlier ones in place.
    """
    if docs_dir is None:
        return [r for df, suite in checks for r in run_suite(df, suite, index_columns)], None

    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    root = Path(docs_dir)
    root.mkdir(parents=True, exist_ok=True)
    # The file context reads great_expectations.yml and the stores once and writes them back
    # whole: two jobs sharing one docs_dir (two datasets at once) would lose each other's
    # data assets. One job at a time; the validations themselves take seconds.
    with _exclusive(root / ".recflow-gx.lock"):
        context = gx.get_context(mode="file", project_root_dir=root)
        if context.variables.analytics_enabled is not False:
            context.enable_analytics(False)  # no network here; saved in great_expectations.yml
        _quiet(context)
        source = _spark_source(context)
        # GX keeps results at validations/<suite>/<run_name>/<run_time>/<batch>: a '/' in a key
        # part is refused, so the run name's separators become '__'.
        stored_run_name = run_name.replace("/", "__").replace("\\", "__")
        results: list[dict] = []
        rebuild = []
        for df, suite in checks:
            definition = _validation_definition(context, source, suite)
            # Always a run time of our own: without one GX parses the run name as a date when
            # it can ("2024-03-01"); and one per check, so a suite checked twice in one call
            # keeps both results.
            run_id = RunIdentifier(run_name=stored_run_name, run_time=dt.datetime.now(dt.UTC))
            outcome = definition.run(
                batch_parameters={"dataframe": df},
                result_format=_result_format(df, index_columns),
                run_id=run_id,  # run() stores the result under this run id
            )
            keys: Counter[str] = Counter()
            results += [_flatten(suite.name, r, keys) for r in outcome.results]
            suite_key = ExpectationSuiteIdentifier(name=suite.name)
            result_key = ValidationResultIdentifier(
                expectation_suite_identifier=suite_key,
                run_id=run_id,
                batch_identifier=outcome.batch_id,
            )
            if _show_sampled_rows(outcome):
                context.validation_results_store.set(result_key, outcome)
            rebuild += [result_key, suite_key]
        # Only this run's pages (and each suite's page) are rendered; the index lists them all.
        # No checks, nothing to render: an empty list would mean "every page" to GX.
        urls = context.build_data_docs(
            site_names=[DOCS_SITE], resource_identifiers=rebuild, dry_run=not rebuild
        )
    # GX writes the URL as "file://" + the plain path (the index key needs no escaping).
    return results, urls[DOCS_SITE].removeprefix("file://")


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _spark_source(context):
    """The one Spark data source, created on the first run and reused after (it lives in
    great_expectations.yml; add_or_update would replace it and drop its assets)."""
    if SPARK_SOURCE in context.data_sources.all():
        return context.data_sources.get(SPARK_SOURCE)
    return context.data_sources.add_spark(SPARK_SOURCE)


def _validation_definition(context, source, suite):
    """Suite, data asset, batch definition and validation definition, all named after the
    suite, added or brought up to date. The DataFrame itself comes with each run."""
    import great_expectations as gx

    try:
        asset = source.get_asset(suite.name)
    except LookupError:
        asset = source.add_dataframe_asset(suite.name)
    try:
        batch_definition = asset.get_batch_definition(WHOLE_DATAFRAME)
    except KeyError:
        batch_definition = asset.add_batch_definition_whole_dataframe(WHOLE_DATAFRAME)
    # A copy: the context stamps ids and itself on the suite it stores, and the caller's
    # suite must stay free to be used elsewhere (run_suite's ephemeral context, say).
    stored_suite = context.suites.add_or_update(copy.deepcopy(suite))
    return context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=batch_definition, suite=stored_suite)
    )


def _show_sampled_rows(outcome) -> bool:
    """Let Data Docs show the file and line of the sampled failing rows.

    Its table of unexpected rows with their index columns is drawn only from
    unexpected_index_list, which the COMPLETE result format fills with every failing row
    (unbounded on a bad file). SUMMARY keeps the first few in partial_unexpected_index_list:
    hand those to the renderer, which heads the table "Sampled Unexpected Values" since they
    do not add up to the unexpected count. True when a result was changed."""
    changed = False
    for result in outcome.results:
        details = result.result or {}
        sample = details.get("partial_unexpected_index_list")
        if sample and isinstance(sample[0], dict) and not details.get("unexpected_index_list"):
            details["unexpected_index_list"] = sample
            changed = True
    return changed


def _flatten(suite_name: str, result, keys: Counter) -> dict:
    config = result.expectation_config
    column = config.kwargs.get("column") or ",".join(config.kwargs.get("column_list", []) or []) or None
    base = f"{config.type}:{column}" if column else config.type
    keys[base] += 1
    details = result.result or {}
    observed = details.get("observed_value")
    # unexpected_percent is None when every value is NULL (nothing left to judge).
    if observed is None and details.get("unexpected_percent") is not None:
        observed = f"{details['unexpected_percent']:.4f}% unexpected"
    if result.exception_info and result.exception_info.get("raised_exception"):
        observed = f"error: {result.exception_info.get('exception_message')}"
    return {
        "suite": suite_name,
        "expectation_key": base if keys[base] == 1 else f"{base}#{keys[base]}",
        "expectation_type": config.type,
        "column_name": column,
        "severity": (config.meta or {}).get("severity", CRITICAL),
        "success": bool(result.success),
        "observed_value": json.dumps(observed, default=str) if observed is not None else None,
        "unexpected_count": details.get("unexpected_count"),
        "element_count": details.get("element_count"),
        "sample": (
            details.get("partial_unexpected_index_list") or details.get("partial_unexpected_list") or []
        )[:3],
        "description": (config.meta or {}).get("description", ""),
    }


def enforce(results: list[dict]) -> None:
    """Log warnings; raise with a readable message when a critical expectation failed."""
    for r in results:
        if not r["success"] and r["severity"] == WARNING:
            log.warning("Data quality warning: %s", describe(r))
    critical = [r for r in results if not r["success"] and r["severity"] == CRITICAL]
    if critical:
        lines = "\n".join(f"  - [{r['suite']}] {describe(r)}" for r in critical)
        suites = ", ".join(sorted({r["suite"] for r in critical}))
        raise ValidationFailed(f"{len(critical)} critical expectation(s) failed in {suites}:\n{lines}")


def describe(r: dict) -> str:
    what = r["description"] or r["expectation_type"]
    where = f" (column {r['column_name']})" if r["column_name"] else ""
    counts = ""
    if r["unexpected_count"] is not None:
        counts = f": {r['unexpected_count']} of {r['element_count']} rows unexpected"
    elif r["observed_value"] is not None:
        counts = f": observed {r['observed_value']}"
    sample = ""
    if r["sample"]:
        first = r["sample"][0]
        if isinstance(first, dict) and "_file" in first:
            values = {k: v for k, v in first.items() if k not in INDEX_COLUMNS}
            sample = f"; first at {first['_file']} line {first.get('_line')}: {values}"
            if first.get("_raw") is not None:
                sample += f" row {first['_raw'][:300]!r}"
        else:
            sample = f"; e.g. {r['sample']}"
    return f"{what}{where}{counts}{sample}"


def enforce_facts(facts: dict) -> None:
    enforce(facts["results"])
