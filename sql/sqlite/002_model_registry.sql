-- RecFlow warehouse, migration 002: the model registry (embedded SQLite warehouse).
--
-- recflow.warehouse.migrate applies this file after 001_core and records it in
-- schema_migrations, both in one transaction. To apply it by hand instead:
--     sqlite3 warehouse.db < sql/sqlite/002_model_registry.sql
--     sqlite3 warehouse.db "INSERT INTO schema_migrations (version) VALUES ('002_model_registry')"
-- Every statement is IF NOT EXISTS, so applying the file twice is harmless.
--
-- This is the twin of sql/mysql/002_model_registry.sql: same table, same columns, same keys.
-- The comments explaining each column live in the MySQL file.

CREATE TABLE IF NOT EXISTS model_registry (
    dataset          VARCHAR(64)   NOT NULL,
    run_date         DATE          NOT NULL,
    model_version    VARCHAR(64)   NOT NULL,
    decision         VARCHAR(16)   NOT NULL,  -- 'promoted' or 'rejected'
    forced           BOOLEAN       NOT NULL,
    primary_metric   VARCHAR(64)   NOT NULL,
    challenger_value DOUBLE        NULL,
    champion_version VARCHAR(64)   NULL,
    champion_value   DOUBLE        NULL,
    tolerance        DOUBLE        NOT NULL,
    reason           VARCHAR(1024) NOT NULL,
    params           TEXT          NOT NULL,  -- JSON
    tuning           TEXT          NOT NULL,  -- JSON
    data_snapshot    TEXT          NOT NULL,  -- JSON
    metrics          TEXT          NOT NULL,  -- JSON
    model_path       VARCHAR(1024) NOT NULL,
    is_champion      BOOLEAN       NOT NULL,
    PRIMARY KEY (dataset, run_date)
);
CREATE INDEX IF NOT EXISTS ix_model_registry_champion ON model_registry (dataset, is_champion);
