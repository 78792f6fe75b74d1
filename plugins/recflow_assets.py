"""The Airflow Assets RecFlow's DAGs share (plugins/ is on every Airflow component's sys.path).

PUBLISHED_RECOMMENDATIONS changes whenever recommendations_daily's publish task commits a run
to the warehouse; DAGs that read the warehouse after a publish (recommendations_bi_refresh)
are scheduled on it. Each event's extra says which dataset and run date changed and what the
gate decided, so a consumer acts on that dataset only.
"""

from __future__ import annotations

from airflow.sdk import Asset

# "x-" schemes are Airflow's convention for URIs no provider normalises.
PUBLISHED_RECOMMENDATIONS = Asset(
    name="recflow_published_recommendations",
    uri="x-recflow://warehouse/recommendations",
    group="recflow",
)
