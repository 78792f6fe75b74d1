"""Clean the raw partition into typed tables; bad rows to quarantine with their reason."""

from recflow.clean import clean
from recflow.jobs import Job

JOB = Job("clean", clean, __doc__)

if __name__ == "__main__":
    JOB.main()
