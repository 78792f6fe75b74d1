"""Ingest the source's raw files into lake/raw/<dataset>/<table>/dt=<ds> (all text)."""

from recflow.ingest import ingest
from recflow.jobs import Job

JOB = Job("ingest", ingest, __doc__)

if __name__ == "__main__":
    JOB.main()
