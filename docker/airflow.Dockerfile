# The Airflow image of docker-compose.yaml: the official Airflow image, plus Java 17 (the Spark
# drivers run in the Airflow containers: client deploy mode) and the project's locked packages.
#
# The tag's Airflow version must be the apache-airflow version pinned in uv.lock, and its Python
# the project's (requires-python, 3.11): the build stops below if the lock names another Airflow,
# and tests/deploy/test_compose.py checks both without building.
#
# Build context: the repository root (.dockerignore keeps .venv, data, .git ... out).

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# --- 1. The lock, as a requirements file ----------------------------------------------------
# `uv export --frozen` writes exactly what uv.lock pins for the runtime (no dev group), without
# resolving anything again. [tool.uv] override-dependencies in pyproject.toml keeps
# pyspark-client out (it would unpack its 4.2 Python files over pyspark 4.3's); the export
# carries that as `pyspark-client==... ; sys_platform == 'never'`, a line no installer installs.
FROM apache/airflow:3.3.2-python3.11 AS requirements
COPY --from=uv /uv /tmp/uv
COPY pyproject.toml uv.lock README.md /tmp/lock/
RUN cd /tmp/lock \
    && /tmp/uv export --frozen --no-dev --no-hashes --no-emit-project --output-file /tmp/requirements.txt

# --- 2. The image -----------------------------------------------------------------------------
FROM apache/airflow:3.3.2-python3.11

USER root
# Java for spark-submit and the driver JVM, OpenBLAS as its native BLAS (ALS in local mode). The man directory is missing from slim Debian images
# and openjdk's postinst fails without it. JAVA_HOME gets an architecture-free name.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless libopenblas0-pthread \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /usr/lib/jvm/java-17
ENV JAVA_HOME=/usr/lib/jvm/java-17
# The uv that wrote uv.lock (the Makefile's UV_VERSION); the image has an older one on its PATH.
COPY --from=uv /uv /usr/local/bin/uv
# The project root, laid out as in the repository (see docker-compose.yaml for why), and the
# lake's mount point, owned like the rest of the Airflow image (airflow:0, group-writable).
RUN install -d -o airflow -g 0 -m 2775 /opt/recflow /opt/recflow/data

USER airflow
# Constraints-free, the lock instead: every package at the version uv.lock pins, installed into
# the image's own virtualenv (~airflow/.local, VIRTUAL_ENV). --no-deps because the export is
# already the whole closure, and resolving again would pull pyspark-client back in as a
# dependency of the Spark provider. Packages the image has and the lock does not (other
# providers, psycopg2 for the metadata database) stay as they are. The image's Airflow is kept
# as it is: the lock must pin the same version, or the build stops here.
COPY --from=requirements /tmp/requirements.txt /tmp/recflow-requirements.txt
RUN grep -qx "apache-airflow==${AIRFLOW_VERSION}" /tmp/recflow-requirements.txt \
        || { echo "uv.lock does not pin apache-airflow==${AIRFLOW_VERSION} (the base image's);" \
                  "change the FROM tags to the locked version" >&2; exit 1; } \
    && /usr/local/bin/uv pip install --no-cache --no-deps --requirement /tmp/recflow-requirements.txt

# The project itself, editable: a .pth file puts /opt/recflow on sys.path, so recflow,
# expectations and spark_jobs import from there, and PROJECT_ROOT (recflow/..) is /opt/recflow,
# where sql/ is. A regular (non-editable) install would put recflow in site-packages, where
# PROJECT_ROOT / "sql" does not exist, and would leave out `expectations`, which the wheel
# does not package.
COPY --chown=airflow:0 pyproject.toml README.md /opt/recflow/
COPY --chown=airflow:0 recflow /opt/recflow/recflow
COPY --chown=airflow:0 expectations /opt/recflow/expectations
COPY --chown=airflow:0 spark_jobs /opt/recflow/spark_jobs
COPY --chown=airflow:0 sql /opt/recflow/sql
COPY --chown=airflow:0 dags /opt/recflow/dags
COPY --chown=airflow:0 plugins /opt/recflow/plugins
RUN /usr/local/bin/uv pip install --no-cache --no-deps --editable /opt/recflow \
    && python -c "import importlib.metadata as m, os, sys; \
assert sys.version_info[:2] == (3, 11), sys.version; \
assert m.version('apache-airflow') == os.environ['AIRFLOW_VERSION'], m.version('apache-airflow'); \
assert not [d for d in m.distributions() if (d.metadata['Name'] or '').lower().replace('_', '-') == 'pyspark-client'], 'pyspark-client is installed'; \
import pyspark, recflow.config, expectations, airflow.providers.apache.spark; \
assert str(recflow.config.PROJECT_ROOT) == '/opt/recflow', recflow.config.PROJECT_ROOT; \
print('airflow', m.version('apache-airflow'), 'pyspark', pyspark.__version__)" \
    && java -version
