-- RecFlow warehouse, migration 001: core tables (embedded SQLite warehouse).
--
-- recflow.warehouse.migrate applies this file and records it in schema_migrations, both in
-- one transaction. To apply it by hand instead:
--     sqlite3 warehouse.db < sql/sqlite/001_core.sql
--     sqlite3 warehouse.db "INSERT INTO schema_migrations (version) VALUES ('001_core')"
-- Every statement is IF NOT EXISTS, so applying the file twice is harmless.
--
-- This is the twin of sql/mysql/001_core.sql: same tables, same columns, same keys. The
-- declared types are kept identical for readers; SQLite maps them onto its storage classes
-- (VARCHAR lengths are not enforced, JSON is TEXT, DATE is an ISO 'YYYY-MM-DD' string).
-- The comments explaining each table live in the MySQL file.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version    VARCHAR(64) NOT NULL,
    applied_at TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (version)
);

CREATE TABLE IF NOT EXISTS recommendations (
    dataset       VARCHAR(64) NOT NULL,
    user_id       VARCHAR(64) NOT NULL,
    item_id       VARCHAR(64) NOT NULL,
    "rank"        SMALLINT    NOT NULL,  -- quoted like in MySQL, where rank is reserved
    score         DOUBLE      NOT NULL,
    model_version VARCHAR(64) NOT NULL,
    run_date      DATE        NOT NULL,
    PRIMARY KEY (dataset, user_id, "rank")
);
CREATE INDEX IF NOT EXISTS ix_recommendations_item ON recommendations (dataset, item_id);

CREATE TABLE IF NOT EXISTS items (
    dataset VARCHAR(64)  NOT NULL,
    item_id VARCHAR(64)  NOT NULL,
    title   VARCHAR(512) NULL,
    genres  VARCHAR(512) NULL,
    PRIMARY KEY (dataset, item_id)
);

CREATE TABLE IF NOT EXISTS model_runs (
    run_id            VARCHAR(160) NOT NULL,
    dataset           VARCHAR(64)  NOT NULL,
    run_date          DATE         NOT NULL,
    dag_run_id        VARCHAR(250) NOT NULL,
    model_version     VARCHAR(64)  NOT NULL,
    status            VARCHAR(16)  NOT NULL,
    params            TEXT         NOT NULL,  -- JSON
    metrics           TEXT         NOT NULL,  -- JSON
    task_timings      TEXT         NOT NULL,  -- JSON
    n_interactions    BIGINT       NOT NULL,
    n_users           INT          NOT NULL,
    n_items           INT          NOT NULL,
    n_recommendations BIGINT       NOT NULL,
    PRIMARY KEY (run_id)
);
CREATE INDEX IF NOT EXISTS ix_model_runs_dataset_date ON model_runs (dataset, run_date);

CREATE TABLE IF NOT EXISTS model_metrics (
    dataset       VARCHAR(64) NOT NULL,
    run_date      DATE        NOT NULL,
    model_version VARCHAR(64) NOT NULL,
    model         VARCHAR(32) NOT NULL,
    metric        VARCHAR(32) NOT NULL,
    k             INT         NOT NULL,
    value         DOUBLE      NOT NULL,
    PRIMARY KEY (dataset, run_date, model, metric, k)
);

CREATE TABLE IF NOT EXISTS data_quality_results (
    dataset          VARCHAR(64)  NOT NULL,
    run_date         DATE         NOT NULL,
    suite            VARCHAR(64)  NOT NULL,
    expectation_key  VARCHAR(191) NOT NULL,
    expectation_type VARCHAR(128) NOT NULL,
    column_name      VARCHAR(64)  NULL,
    severity         VARCHAR(16)  NOT NULL,
    success          BOOLEAN      NOT NULL,
    observed_value   TEXT         NULL,
    unexpected_count BIGINT       NULL,
    element_count    BIGINT       NULL,
    PRIMARY KEY (dataset, run_date, suite, expectation_key)
);

CREATE TABLE IF NOT EXISTS data_reconciliation (
    dataset          VARCHAR(64) NOT NULL,
    run_date         DATE        NOT NULL,
    table_name       VARCHAR(64) NOT NULL,
    raw_rows         BIGINT      NOT NULL,
    clean_rows       BIGINT      NOT NULL,
    quarantined_rows BIGINT      NOT NULL,
    duplicate_rows   BIGINT      NOT NULL,
    PRIMARY KEY (dataset, run_date, table_name)
);

CREATE TABLE IF NOT EXISTS quarantine_summary (
    dataset          VARCHAR(64)  NOT NULL,
    run_date         DATE         NOT NULL,
    table_name       VARCHAR(64)  NOT NULL,
    reason           VARCHAR(191) NOT NULL,
    column_name      VARCHAR(64)  NULL,
    rows_quarantined BIGINT       NOT NULL,
    sample_file      VARCHAR(512) NULL,
    sample_line      BIGINT       NULL,
    sample_row       TEXT         NULL,
    PRIMARY KEY (dataset, run_date, table_name, reason)
);
