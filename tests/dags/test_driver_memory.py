"""The driver's memory comes from the machine (or the container's limit), not Spark's 1 GiB."""

from __future__ import annotations

from recflow.resources import DRIVER_MEMORY_SHARE, driver_memory, usable_memory_bytes

GIB = 1024**3


def _machine(tmp_path, total_kib: int, cgroup_max: str | None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal:       {total_kib} kB\nMemFree:        1000 kB\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    if cgroup_max is not None:
        (cgroup / "memory.max").write_text(cgroup_max + "\n")
    return meminfo, cgroup


def test_the_container_limit_wins_over_the_machines_memory(tmp_path):
    meminfo, cgroup = _machine(tmp_path, 24 * 1024 * 1024, str(8 * GIB))
    assert usable_memory_bytes(meminfo, cgroup) == 8 * GIB
    meminfo, cgroup = _machine(tmp_path / "b", 24 * 1024 * 1024, "max")
    assert usable_memory_bytes(meminfo, cgroup) == 24 * GIB


def test_driver_memory_is_a_share_of_what_the_machine_has_and_can_be_overridden():
    assert driver_memory({}, usable=24 * GIB) == f"{int(24 * DRIVER_MEMORY_SHARE)}g"
    assert driver_memory({}, usable=GIB) == "1g"  # never below 1 GiB
    assert driver_memory({"RECFLOW_SPARK_DRIVER_MEMORY": "6g"}, usable=24 * GIB) == "6g"


def test_the_dag_renders_the_driver_memory_where_the_task_runs(submit_dagbag, monkeypatch):
    """spark-submit's driver (RECFLOW_SPARK_BACKEND=submit); the Connect server's heap comes from
    the same function, in recflow.spark.server_conf."""
    dag = submit_dagbag.dags["recommendations_daily"]
    monkeypatch.setenv("RECFLOW_SPARK_DRIVER_MEMORY", "3g")
    env = dag.get_template_env()
    spark_tasks = [task for task in dag.tasks if task.task_type == "SparkSubmitOperator"]
    assert len(spark_tasks) >= 8
    for task in spark_tasks:
        rendered = env.from_string(task.conf["spark.driver.memory"]).render(**dag.user_defined_macros)
        assert rendered == "3g", task.task_id
