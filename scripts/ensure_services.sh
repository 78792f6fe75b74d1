#!/usr/bin/env bash
# Start the local MariaDB the warehouse tests need if it is installed but not running
# (the machines' standard service command). Tests fail under CI=true when it stays down.
set -u
port_open() { (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; }
if port_open; then exit 0; fi
if [ -x /usr/sbin/mariadbd ]; then
  echo "MariaDB is down: starting it"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 30); do port_open && exit 0; sleep 1; done
  echo "MariaDB did not come up on 127.0.0.1:3306" >&2
else
  echo "No MariaDB on 127.0.0.1:3306 and none installed here; warehouse tests will fail under CI" >&2
fi
exit 0
