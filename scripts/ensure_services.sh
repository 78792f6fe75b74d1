#!/usr/bin/env bash
# Start the local services the tests use if they are installed but not running (the machines'
# standard service commands): MariaDB (the warehouse tests) and PostgreSQL (Airflow's metadata
# in the end-to-end test with Airflow's own services). Tests fail under CI=true when one stays down.
set -u
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() {
  for _ in $(seq 1 30); do port_open "$1" && return 0; sleep 1; done
  echo "$2 did not come up on 127.0.0.1:$1" >&2
}
if ! port_open 3306; then
  if [ -x /usr/sbin/mariadbd ]; then
    echo "MariaDB is down: starting it"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_for 3306 MariaDB
  else
    echo "No MariaDB on 127.0.0.1:3306 and none installed here; warehouse tests will fail under CI" >&2
  fi
fi
if ! port_open 5432; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "PostgreSQL is down: starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
    wait_for 5432 PostgreSQL
  else
    echo "No PostgreSQL on 127.0.0.1:5432 and none installed here; the Airflow services test will fail under CI" >&2
  fi
fi
exit 0
