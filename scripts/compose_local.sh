#!/usr/bin/env bash
# The whole stack on a laptop, in one command (docker-compose.yaml, docs/docker-compose.md):
#
#   scripts/compose_local.sh              # docker compose up -d, after the two steps below
#   scripts/compose_local.sh logs -f      # any other docker compose command, same project
#
# 1. Without a .env beside docker-compose.yaml, scripts/compose_env.py writes one with every
#    required secret generated (mode 600). An existing .env is used as it is, never rewritten.
# 2. The inputs folder (RECFLOW_INPUTS_HOST_DIR, default data/inputs) is created, so that it
#    belongs to you: Docker would create a missing bind-mount source itself, owned by root.
#
# Nothing here is specific to a laptop except that nobody reviews the generated .env: the ports
# stay on 127.0.0.1 (RECFLOW_BIND_ADDRESS) either way. On a server, run scripts/compose_env.py,
# read the .env it wrote, then docker compose up -d.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -e .env ]; then
  "${RECFLOW_PYTHON:-python3}" scripts/compose_env.py --output .env >&2  # stdout: compose's alone
fi

inputs=${RECFLOW_INPUTS_HOST_DIR:-$(sed -n 's/^RECFLOW_INPUTS_HOST_DIR=//p' .env | tail -n 1)}
inputs=${inputs:-data/inputs}
mkdir -p "${inputs/#\~/$HOME}"

# Compose v2 (the docker CLI plugin) if there is one, else the standalone docker-compose.
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "neither 'docker compose' nor 'docker-compose' is installed" >&2
  exit 1
fi

if [ $# -eq 0 ]; then
  set -- up -d
  echo "Airflow UI: http://localhost:8080 (the login: _AIRFLOW_WWW_USER_USERNAME, default admin, and _AIRFLOW_WWW_USER_PASSWORD in .env)" >&2
fi
exec "${compose[@]}" "$@"
