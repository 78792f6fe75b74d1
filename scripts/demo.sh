#!/usr/bin/env bash
# Run recommendations_daily once with `airflow dags test` (real Airflow, no scheduler needed),
# then print where the results are and a few recommendations. Called by `make demo`, which sets
# the Airflow environment, CONF (the run's Params as JSON) and DS (the logical date).
set -euo pipefail
# One-shot runs fail fast; the scheduled DAG keeps its retries (RECFLOW_TASK_RETRIES unset there).
export RECFLOW_TASK_RETRIES="${RECFLOW_TASK_RETRIES:-0}"
log_dir="${RECFLOW_DATA_DIR}/logs"
mkdir -p "$log_dir"
log="$log_dir/demo-${DS}.log"
echo "Running recommendations_daily for ${DS} with conf ${CONF} (full log: $log)"
set +e
airflow dags test recommendations_daily "$DS" --conf "$CONF" 2>&1 | tee "$log" \
  | awk '/\[DAG TEST\] (starting|end task)|DagRun Finished/ {
      t = substr($1, 12, 8)
      if (match($0, /task_id=[a-z_]+/)) task = substr($0, RSTART + 8, RLENGTH - 8)
      if ($0 ~ /starting/) print t, "start", task
      else if ($0 ~ /end task/) print t, "done ", task
      else if (match($0, /state=[a-z_]+/)) print t, "run finished:", substr($0, RSTART + 6, RLENGTH - 6)
      fflush() }'
set -e
# No "DagRun Finished" line at all when the run was never created (Params the trigger form
# would refuse): `|| true`, or set -e would end the script here without a word.
state=$(grep -oE "DagRun Finished.*state=[a-z_]+" "$log" | tail -1 | sed 's/.*state=//' || true)
if [ "$state" != "success" ]; then
  echo "The run did not succeed (state: ${state:-unknown}). Errors from the log:" >&2
  # The job's own exception (ValidationFailed, SourceError, ...) names the file, line and column;
  # Airflow repeats it once unprefixed, which is the copy shown here (once per distinct line).
  grep -E "^ *([A-Za-z_.]+(Failed|Error|Exception): |- )" "$log" | awk '!seen[$0]++' | tail -20 | cut -c1-500 >&2 \
    || tail -20 "$log" >&2
  # What validation and cleaning recorded before the stop (nothing if ingest itself failed).
  python -m recflow.cli quality --ds "$DS" --conf "$CONF" >&2 2>/dev/null || true
  exit 1
fi
python -m recflow.cli summary --ds "$DS" --conf "$CONF"
