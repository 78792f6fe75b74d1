-- RecFlow warehouse, migration 011 (embedded SQLite warehouse): twin of
-- sql/mysql/011_pipeline_run_log.sql, which explains the table.

CREATE TABLE IF NOT EXISTS pipeline_run_log (
    dag_id      VARCHAR(250)  NOT NULL,
    dag_run_id  VARCHAR(250)  NOT NULL,
    task_id     VARCHAR(250)  NOT NULL,
    try_number  INT           NOT NULL,
    dataset     VARCHAR(64)   NULL,
    run_date    DATE          NULL,
    state       VARCHAR(16)   NOT NULL,
    error_type  VARCHAR(128)  NULL,
    error       TEXT          NULL,
    log_url     VARCHAR(1000) NULL,
    logged_at   DATETIME      NOT NULL,  -- UTC
    PRIMARY KEY (dag_id, dag_run_id, task_id, try_number)
);

CREATE INDEX IF NOT EXISTS ix_pipeline_run_log_dataset_date ON pipeline_run_log (dataset, run_date);
