-- RecFlow warehouse, migration 011: the pipeline's run log (MySQL 8 and MariaDB 10.11+). The
-- portability rules of 001_core.sql apply.

-- One row per failed or retried task attempt of a RecFlow DAG, written by the tasks'
-- on_failure / on_retry callbacks (plugins/recflow_callbacks.py), so the warehouse shows why a
-- day has no new recommendations without anyone opening Airflow. A published run is in
-- model_runs; a run that stopped is here. A re-recorded attempt replaces its row.
CREATE TABLE IF NOT EXISTS pipeline_run_log (
    dag_id      VARCHAR(250)  NOT NULL,
    dag_run_id  VARCHAR(250)  NOT NULL,
    task_id     VARCHAR(250)  NOT NULL,
    try_number  INT           NOT NULL,
    dataset     VARCHAR(64)   NULL,      -- NULL when the run's Params could not be read
    run_date    DATE          NULL,      -- the logical date (ds)
    state       VARCHAR(16)   NOT NULL,  -- failed | up_for_retry
    error_type  VARCHAR(128)  NULL,      -- e.g. ValidationFailed, AirflowTaskTimeout
    error       TEXT          NULL,      -- the job's own message where it left one (file, line, column)
    log_url     VARCHAR(1000) NULL,      -- the attempt's log in the Airflow UI
    logged_at   DATETIME      NOT NULL,  -- UTC
    PRIMARY KEY (dag_id, dag_run_id, task_id, try_number),
    KEY ix_pipeline_run_log_dataset_date (dataset, run_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
