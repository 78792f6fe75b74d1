"""Great Expectations inside the Spark job, on the Spark DataFrame itself.

Every expectation carries a severity in its meta: a failed `critical` one stops the run before
anything is published; a failed `warning` is recorded and the run goes on.
"""

from __future__ import annotations

import json
import logging
from collections import Counter

log = logging.getLogger(__name__)

CRITICAL, WARNING = "critical", "warning"
INDEX_COLUMNS = ["_file", "_line"]


class ValidationFailed(RuntimeError):
    pass


def run_suite(df, suite, index_columns: list[str] | None = None) -> list[dict]:
    """Validate a Spark DataFrame; one flat dict per expectation, ready for the warehouse."""
    import great_expectations as gx  # heavy import, only in the job that needs it

    context = gx.get_context(mode="ephemeral")
    batch_definition = (
        context.data_sources.add_spark(f"{suite.name}_source")
        .add_dataframe_asset(f"{suite.name}_asset")
        .add_batch_definition_whole_dataframe(f"{suite.name}_batch")
    )
    index_columns = [c for c in (index_columns or INDEX_COLUMNS) if c in df.columns]
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": 3}
    if index_columns:
        result_format["unexpected_index_column_names"] = index_columns
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    outcome = batch.validate(suite, result_format=result_format)
    keys: Counter[str] = Counter()
    return [_flatten(suite.name, r, keys) for r in outcome.results]


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
        lines = "\n".join(f"  - {describe(r)}" for r in critical)
        raise ValidationFailed(
            f"{len(critical)} critical expectation(s) failed in suite {critical[0]['suite']}:\n{lines}"
        )


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
        else:
            sample = f"; e.g. {r['sample']}"
    return f"{what}{where}{counts}{sample}"


def enforce_facts(facts: dict) -> None:
    enforce(facts["results"])
