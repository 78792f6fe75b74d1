-- RecFlow warehouse, migration 001: core tables (MySQL 8 and MariaDB 10.11+).
--
-- recflow.warehouse.migrate applies this file and records it in schema_migrations.
-- To apply it by hand instead:
--     mysql --default-character-set=utf8mb4 <database> < sql/mysql/001_core.sql
--     mysql <database> -e "INSERT INTO schema_migrations (version) VALUES ('001_core')"
-- Every statement is CREATE TABLE IF NOT EXISTS, so applying the file twice is harmless.
--
-- Portability rules for this directory (the same SQL must run on MySQL 8 and MariaDB):
--   * `rank` is a reserved word in MySQL 8, so it is always backquoted.
--   * InnoDB everywhere: publish relies on transactions (one transaction per publish).
--   * utf8mb4 everywhere: titles carry accents, CJK and emoji (utf8mb3 cannot store emoji).
--   * COLLATE utf8mb4_bin: ids are opaque keys ('u1' and 'U1' are different users), it compares
--     the way the embedded SQLite warehouse does, and it exists on both servers (MySQL 8's
--     default utf8mb4_0900_ai_ci does not exist on MariaDB 10.11).
--   * No MariaDB-only syntax (no CREATE INDEX IF NOT EXISTS, no CREATE OR REPLACE TABLE),
--     which is why the indexes are declared inside CREATE TABLE.
--   * The sql/sqlite/ twin of this file must declare the same tables and columns.

-- Which migration files have been applied; read by recflow.warehouse.migrate.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    VARCHAR(64) NOT NULL,  -- file name without .sql, e.g. 001_core
    applied_at TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The currently published top-k list of every dataset: one set per dataset, not history
-- (model_runs and model_metrics keep the history). publish() replaces a dataset's rows in the
-- one transaction that writes the rest of the run, so a reader sees the old set or the new one,
-- never a half-loaded or empty table. (Until issue 21 it swapped in a staged copy with RENAME
-- TABLE, which split the served set when the swap failed after the other tables committed.)
CREATE TABLE IF NOT EXISTS recommendations (
    dataset       VARCHAR(64) NOT NULL,
    user_id       VARCHAR(64) NOT NULL,
    item_id       VARCHAR(64) NOT NULL,
    `rank`        SMALLINT    NOT NULL,  -- 1 = best
    score         DOUBLE      NOT NULL,
    model_version VARCHAR(64) NOT NULL,
    run_date      DATE        NOT NULL,  -- the run that produced this set
    PRIMARY KEY (dataset, user_id, `rank`),
    KEY ix_recommendations_item (dataset, item_id)  -- "who is recommended item X?"
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Item catalogue of each dataset, so dashboards can show titles next to item ids.
CREATE TABLE IF NOT EXISTS items (
    dataset VARCHAR(64)  NOT NULL,
    item_id VARCHAR(64)  NOT NULL,
    title   VARCHAR(512) NULL,
    genres  VARCHAR(512) NULL,  -- as the source spells it, e.g. Comedy|Drama
    PRIMARY KEY (dataset, item_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per training run: what ran, with which parameters, how long each task took.
CREATE TABLE IF NOT EXISTS model_runs (
    run_id            VARCHAR(160) NOT NULL,  -- '<dataset>/<YYYY-MM-DD>': one run per dataset and day
    dataset           VARCHAR(64)  NOT NULL,
    run_date          DATE         NOT NULL,
    dag_run_id        VARCHAR(250) NOT NULL,  -- Airflow caps dag_run.run_id at 250 characters
    model_version     VARCHAR(64)  NOT NULL,
    status            VARCHAR(16)  NOT NULL,  -- published, rejected or superseded (pending: older versions, mid-swap)
    params            JSON         NOT NULL,
    metrics           JSON         NOT NULL,
    task_timings      JSON         NOT NULL,  -- task_id -> seconds
    n_interactions    BIGINT       NOT NULL,
    n_users           INT          NOT NULL,
    n_items           INT          NOT NULL,
    n_recommendations BIGINT       NOT NULL,
    PRIMARY KEY (run_id),
    KEY ix_model_runs_dataset_date (dataset, run_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The same metrics as model_runs.metrics, one row per model x metric, so BI tools can chart
-- them without parsing JSON. "ndcg@10" is stored as metric 'ndcg', k 10.
CREATE TABLE IF NOT EXISTS model_metrics (
    dataset       VARCHAR(64) NOT NULL,
    run_date      DATE        NOT NULL,
    model_version VARCHAR(64) NOT NULL,
    model         VARCHAR(32) NOT NULL,  -- als, popularity, ...
    metric        VARCHAR(32) NOT NULL,
    k             INT         NOT NULL,  -- cut-off; 0 for metrics without one (rmse)
    value         DOUBLE      NOT NULL,
    PRIMARY KEY (dataset, run_date, model, metric, k)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Outcome of every data-quality expectation of a run.
CREATE TABLE IF NOT EXISTS data_quality_results (
    dataset          VARCHAR(64)  NOT NULL,
    run_date         DATE         NOT NULL,
    suite            VARCHAR(64)  NOT NULL,
    expectation_key  VARCHAR(191) NOT NULL,  -- stable id of the expectation within its suite
    expectation_type VARCHAR(128) NOT NULL,
    column_name      VARCHAR(64)  NULL,      -- NULL for table-level expectations
    severity         VARCHAR(16)  NOT NULL,
    success          BOOLEAN      NOT NULL,
    observed_value   TEXT         NULL,
    unexpected_count BIGINT       NULL,
    element_count    BIGINT       NULL,
    PRIMARY KEY (dataset, run_date, suite, expectation_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Row accounting per input table: raw = clean + quarantined + duplicates.
CREATE TABLE IF NOT EXISTS data_reconciliation (
    dataset          VARCHAR(64) NOT NULL,
    run_date         DATE        NOT NULL,
    table_name       VARCHAR(64) NOT NULL,
    raw_rows         BIGINT      NOT NULL,
    clean_rows       BIGINT      NOT NULL,
    quarantined_rows BIGINT      NOT NULL,
    duplicate_rows   BIGINT      NOT NULL,
    PRIMARY KEY (dataset, run_date, table_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Why rows were quarantined, with one sample row per reason to show where to look.
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
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
