# The Spark image of docker-compose.yaml (spark-master, spark-worker): the official apache/spark
# image plus the Python the executors need.
#
# Why a Python of our own. The Spark drivers run in the Airflow containers (client deploy mode),
# on the Airflow image's Python 3.11 with the packages of uv.lock. PySpark refuses executors
# whose Python minor version differs from the driver's, and RecFlow's executors run real Python:
# mapInPandas / Arrow UDFs that unpickle functions of recflow.hybrid and recflow.similarity and
# call numpy, pandas, pyarrow and scipy. apache/spark's python3 variants carry Ubuntu's system
# Python (3.10 on jammy) and no such libraries. So this image gets CPython 3.11 (a uv-managed
# standalone build, at a fixed path) and a virtualenv at /opt/recflow/.venv synced from the same
# uv.lock (no dev group; the project editable, so /opt/recflow is the project root as in the
# Airflow image). The Airflow containers name that interpreter in PYSPARK_PYTHON, which the
# driver sends along with every Python function. The base is the variant without Python, so no
# executor can silently fall back to a system python3 of the wrong version.
#
# Why this tag. The cluster must run the Spark version the driver runs: pyspark 4.3.0 in uv.lock
# (the driver's jars come from that wheel). Standalone executors are launched from this image's
# /opt/spark, and Spark does not promise that a 4.3 driver can talk to 4.2 executors (task and
# plan classes are Java-serialised between them), nor that 4.2's pyspark.zip, which the worker
# puts first on the executors' PYTHONPATH, understands 4.3's pickled functions. So the tag is
# the lock's version, not merely the nearest one. Note: the apache/spark repository publishes a
# <version>-scala2.13-java17-ubuntu tag for every release (confirmed up to 4.2.0 when this was
# written; 4.3.0 could not be confirmed from here). If the pull fails, 4.3.0 is not published
# yet: do not fall back to 4.2.x; the check at the end of this file would stop that build anyway.
# When uv.lock moves to another pyspark, change this tag with it (tests/deploy checks both).
#
# Build context: the repository root.

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM apache/spark:4.3.0-scala2.13-java17-ubuntu

USER root
COPY --from=uv /uv /usr/local/bin/uv

# Native BLAS/LAPACK for ALS on the executors: OpenBLAS registers itself as libblas.so.3 and
# liblapack.so.3, which Spark's netlib loader dlopens (without it: Java loops, and a warning).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libopenblas0-pthread \
    && rm -rf /var/lib/apt/lists/*

# uv-managed CPython under /opt/recflow/python, the project's virtualenv at /opt/recflow/.venv.
ENV UV_PYTHON_INSTALL_DIR=/opt/recflow/python \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_PROJECT_ENVIRONMENT=/opt/recflow/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /opt/recflow

# Dependencies first (a layer that changes only with the lock), then the project.
COPY pyproject.toml uv.lock README.md /opt/recflow/
RUN uv python install 3.11 \
    && uv sync --frozen --no-dev --no-install-project --python 3.11
COPY recflow /opt/recflow/recflow
COPY expectations /opt/recflow/expectations
RUN uv sync --frozen --no-dev --python 3.11

# The executors' interpreter, for anything started in this image without the driver's setting.
ENV PYSPARK_PYTHON=/opt/recflow/.venv/bin/python

# The checks that make a wrong image fail here rather than in the middle of a DAG run: Python
# 3.11; the recflow modules the executors unpickle import; and /opt/spark is the Spark version
# of the locked pyspark.
RUN /opt/recflow/.venv/bin/python -c "import sys; assert sys.version_info[:2] == (3, 11), sys.version; \
import numpy, pandas, pyarrow, scipy, recflow.hybrid, recflow.similarity, recflow.config; \
assert str(recflow.config.PROJECT_ROOT) == '/opt/recflow', recflow.config.PROJECT_ROOT" \
    && pyspark_version="$(/opt/recflow/.venv/bin/python -c 'import importlib.metadata as m; print(m.version("pyspark"))')" \
    && if ! ls /opt/spark/jars/spark-core_*-"${pyspark_version}".jar >/dev/null 2>&1; then \
           echo "apache/spark base image: $(ls /opt/spark/jars/spark-core_*.jar);" \
                "uv.lock pins pyspark ${pyspark_version}: use the apache/spark tag of that version" >&2; \
           exit 1; \
       fi

# The lake's mount point, and the uid:gid of the Airflow image's airflow user (compose runs both
# as AIRFLOW_UID:0): executors and the driver write into the same lake directories.
RUN install -d -o 50000 -g 0 -m 2775 /opt/recflow/data /tmp/spark-worker
WORKDIR /opt/spark/work-dir
USER 50000:0
