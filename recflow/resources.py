"""What the machine a Spark driver starts on can give it, read from the machine, not assumed.

Spark's default driver heap is 1 GiB whatever the machine has; in local mode the driver is also
every executor, so a 20M-row run on a 24 GB machine would spill to disk at best and die of
OutOfMemoryError at worst, with 20 GB idle. The driver gets DRIVER_MEMORY_SHARE of the memory
this process may use (the container's cgroup limit when there is one, else the machine's), and
the rest stays for the Python workers (mapInPandas batches, the broadcast catalogue), the
warehouse and the OS. RECFLOW_SPARK_DRIVER_MEMORY (a Spark size such as 6g) overrides it.
"""

from __future__ import annotations

import os
from pathlib import Path

DRIVER_MEMORY_SHARE = 0.55
MIN_DRIVER_GIB = 1
_GIB = 1024**3


def usable_memory_bytes(
    meminfo: Path = Path("/proc/meminfo"), cgroup: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """The smaller of the machine's memory and this process's cgroup limit (v2 memory.max, v1
    memory.limit_in_bytes); None when neither can be read."""
    found = []
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    for limit_file in (cgroup / "memory.max", cgroup / "memory" / "memory.limit_in_bytes"):
        try:
            text = limit_file.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" or v1's huge number: no limit
            found.append(int(text))
    return min(found) if found else None


def driver_memory(environ=os.environ, usable: int | None = None) -> str:
    """spark.driver.memory for a job started on this machine (see the module docstring)."""
    given = environ.get("RECFLOW_SPARK_DRIVER_MEMORY", "").strip()
    if given:
        return given
    usable = usable_memory_bytes() if usable is None else usable
    if usable is None:
        return f"{MIN_DRIVER_GIB}g"
    return f"{max(MIN_DRIVER_GIB, int(usable * DRIVER_MEMORY_SHARE / _GIB))}g"
