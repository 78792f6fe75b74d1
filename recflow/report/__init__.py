"""The run report: one self-contained HTML page per run of a dataset, for people.

Built in the Airflow worker after the publish task, without Spark: the analytics tables and the
facts are read from the lake with pyarrow, the metric history from the warehouse. Charts are
inline SVG (matplotlib), so the page needs no network to show them.

    recflow.report.data    gathers the run's inputs (ReportData)
    recflow.report.charts  turns them into SVG text, one pure function per chart
    recflow.report.render  fills the jinja2 template and writes the page
"""

from __future__ import annotations

from recflow.report.render import report_path, write_run_report

__all__ = ["report_path", "write_run_report"]
