# RecFlow developer commands. `make demo` and `make test` build .venv from uv.lock on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
UV_VERSION := 0.13.9
VENV := .venv
UV := .tools/bin/uv
SYNCED := $(VENV)/.synced

# Airflow on embedded defaults: metadata in SQLite under .airflow/, DAGs and plugins from here,
# Spark on the warm Spark Connect server (or, with RECFLOW_SPARK_BACKEND=submit, spark-submit in local
# mode through the spark_default connection). Override any of them from the shell.
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER ?= $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
export AIRFLOW_CONN_SPARK_DEFAULT ?= {"conn_type": "spark", "host": "local[2]"}
# The Spark tasks' default backend (RECFLOW_SPARK_BACKEND=connect): the warm server that
# recflow/spark_connect.py runs on this port, started by the first task that finds it down.
export RECFLOW_SPARK_CONNECT_PORT ?= 15002
export AIRFLOW_CONN_SPARK_CONNECT_DEFAULT ?= {"conn_type": "spark_connect", "host": "127.0.0.1", "port": $(RECFLOW_SPARK_CONNECT_PORT)}
export RECFLOW_DATA_DIR ?= $(CURDIR)/data
export PYSPARK_PYTHON ?= $(CURDIR)/$(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Run parameters for `make demo`, as JSON: the same keys as the DAG's trigger form.
CONF ?= {}
export CONF
# Logical date of the demo run; defaults to today (UTC).
DS ?= $(shell date -u +%F)
export DS

.PHONY: help demo test lint format clean services system-packages bi-reader bench-scale spark-connect spark-connect-stop

help:
	@echo "make demo [CONF='{\"path\": \"...\"}'] [DS=YYYY-MM-DD]   run recommendations_daily once, end to end"
	@echo "make test                                            every test (MariaDB at 127.0.0.1:3306)"
	@echo "make bi-reader [BI_USER=bi_alice] [BI_HOST='10.0.%']  create a read-only BI account or rotate its password"
	@echo "                                                     (RECFLOW_WAREHOUSE_URL = an account that may create users)"
	@echo "make bench-scale [ARGS='--sizes ml-1m,ml-5m --als']      the 1M-20M cost curve (benchmarks/scale.py; hours)"
	@echo "make spark-connect | spark-connect-stop                  the warm Spark Connect server on 127.0.0.1:15002"
	@echo "make lint | format | clean"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(SYNCED): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

$(AIRFLOW_HOME)/airflow.db: | $(SYNCED)
	@mkdir -p $(AIRFLOW_HOME)
	airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (tail -20 $(AIRFLOW_HOME)/db-migrate.log; exit 1)

demo: $(SYNCED) $(AIRFLOW_HOME)/airflow.db
	scripts/demo.sh

# One account per person (BI_USER=bi_alice): a shared one lets any of its users change its password.
bi-reader: $(SYNCED)
	scripts/create_bi_reader.sh $(if $(BI_USER),--user $(BI_USER)) $(if $(BI_HOST),--host '$(BI_HOST)')

# The cost curve from 1M to 20M interactions (benchmarks/scale.py; hours, not part of make test).
# `implicit` is in the bench group, which make test's sync leaves out.
bench-scale: $(SYNCED) services
	$(UV) sync --frozen --inexact --group bench --python $(PYTHON)
	python benchmarks/scale.py $(ARGS)

services:
	@scripts/ensure_services.sh

# The warm Spark Connect server (recflow/spark_connect.py): pid and log in .spark-connect/.
spark-connect: $(SYNCED)
	python -m recflow.spark_connect start

spark-connect-stop: $(SYNCED)
	python -m recflow.spark_connect stop

# Chromium and its driver (the UI check), docker-compose (validates docker-compose.yaml).
system-packages:
	@scripts/install_system_packages.sh

# Two workers (pytest-xdist): in one process the suite used 21 CPU-minutes in 31.5 minutes of wall
# time on 2 cores (its daemons aside), mostly waiting on Airflow and Spark. TEST_WORKERS=0: no xdist.
TEST_WORKERS ?= 2
test: $(SYNCED) services system-packages
	pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist worksteal)

lint: $(SYNCED)
	ruff check .
	ruff format --check .

format: $(SYNCED)
	ruff check --fix .
	ruff format .

clean:
	-@[ -x $(VENV)/bin/python ] && $(VENV)/bin/python -m recflow.spark_connect stop
	rm -rf $(VENV) .tools .airflow .spark-connect data logs .pytest_cache .ruff_cache spark-warehouse
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
