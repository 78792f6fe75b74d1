"""Ingest the source's raw files into lake/raw/<dataset>/<table>/dt=<ds> (all text)."""

from recflow.ingest import ingest
from recflow.jobs import run_job

if __name__ == "__main__":
    run_job("ingest", ingest, __doc__)
