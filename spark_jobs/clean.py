"""Clean the raw partition into typed tables; bad rows to quarantine with their reason."""

from recflow.clean import clean
from recflow.jobs import run_job

if __name__ == "__main__":
    run_job("clean", clean, __doc__)
