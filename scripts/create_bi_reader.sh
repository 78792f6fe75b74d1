#!/usr/bin/env bash
# Create the read-only bi_reader account, or rotate its password: SELECT on the warehouse's BI
# views (v_*) and nothing else. Called by `make bi-reader`; see recflow/warehouse/grants.py.
#
#   RECFLOW_WAREHOUSE_URL=mysql+pymysql://root:...@db:3306/recflow scripts/create_bi_reader.sh [--user U] [--host H]
#
# The URL's account must be allowed to create users and grant (root or a DBA account). The
# password comes from RECFLOW_BI_READER_PASSWORD; when that is unset and this runs in a terminal,
# it is asked for without echo, so it ends up neither in the shell history nor in `ps`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${RECFLOW_BI_READER_PASSWORD:-}" ] && [ -t 0 ]; then
  read -r -s -p "Password for the BI reader account: " RECFLOW_BI_READER_PASSWORD
  echo
  export RECFLOW_BI_READER_PASSWORD
fi
exec "${RECFLOW_PYTHON:-.venv/bin/python}" -m recflow.warehouse.grants "$@"
