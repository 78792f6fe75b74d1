"""Champion/challenger: does the new model replace the published one?

A pure function of numbers, so the rule is easy to read and to test: the challenger is promoted
when its primary metric is no worse than the champion's by more than the tolerance (absolute,
in the metric's own units), when there is no champion yet, or when the run forces it.
"""

from __future__ import annotations

from recflow.config import Settings

LOWER_IS_BETTER = {"rmse", "mse", "mae"}


def primary_key(settings: Settings) -> str:
    """ "ndcg" -> "ndcg@10" at the run's top_k; rating metrics have no cut-off."""
    if settings.primary_metric in LOWER_IS_BETTER:
        return settings.primary_metric
    return f"{settings.primary_metric}@{settings.top_k}"


def decide(
    challenger: dict[str, float],
    champion: dict | None,
    champion_metrics: dict[str, float] | None,
    settings: Settings,
    basis: str,
) -> dict:
    """-> the decision: promote, the values compared and a sentence saying why.

    `champion` is the champion's registry entry (None for a dataset's first model);
    `champion_metrics` its metrics on `basis` (this run's test split, or as recorded)."""
    key = primary_key(settings)
    if key not in challenger:
        raise ValueError(
            f"primary_metric {key!r} is not measured for this source; measured: {sorted(challenger)}"
        )
    value = challenger[key]
    tolerance = settings.champion_tolerance
    base = {
        "primary_metric": key,
        "challenger_value": value,
        "champion_version": champion and champion["model_version"],
        "champion_value": None,
        "tolerance": tolerance,
        "forced": settings.force_publish,
        "basis": basis,
    }
    if champion is None or champion_metrics is None or key not in champion_metrics:
        return base | _verdict(True, f"No champion yet: {key} {value:.4f} is published as the first model.")
    best = champion_metrics[key]
    base["champion_value"] = best
    lower = key in LOWER_IS_BETTER
    margin = (best - value) if not lower else (value - best)  # > 0: the challenger is worse
    comparison = (
        f"{key} {value:.4f} vs champion {champion['model_version']} {best:.4f} ({basis}), "
        f"tolerance {tolerance:g}"
    )
    if margin <= tolerance + 1e-12:
        return base | _verdict(True, f"Promoted: {comparison}.")
    if settings.force_publish:
        return base | _verdict(True, f"Forced by force_publish although worse: {comparison}.")
    return base | _verdict(False, f"Rejected, the champion's recommendations stay: {comparison}.")


def _verdict(promote: bool, reason: str) -> dict:
    return {"promote": promote, "decision": "promoted" if promote else "rejected", "reason": reason}
