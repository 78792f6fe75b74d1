-- RecFlow warehouse, migration 002: the model registry (MySQL 8 and MariaDB 10.11+).
--
-- recflow.warehouse.migrate applies this file after 001_core and records it in
-- schema_migrations. To apply it by hand instead:
--     mysql --default-character-set=utf8mb4 <database> < sql/mysql/002_model_registry.sql
--     mysql <database> -e "INSERT INTO schema_migrations (version) VALUES ('002_model_registry')"
-- The portability rules of 001_core.sql apply here too (InnoDB, utf8mb4_bin, indexes declared
-- inside CREATE TABLE, nothing MariaDB-only); the sql/sqlite/ twin declares the same columns.
--
-- With this migration model_runs.status gains a third value: 'rejected', for a run whose
-- model lost the champion/challenger gate (its recommendations were never published).

-- One row per training run (dataset x day): which model it trained, how it was tuned, on
-- which data, and whether the champion/challenger gate promoted it. Every run is recorded,
-- promoted or not. publish() replaces the run's row on a re-publish and writes no timestamps,
-- so re-publishing the same run leaves the table byte for byte identical.
CREATE TABLE IF NOT EXISTS model_registry (
    dataset          VARCHAR(64)   NOT NULL,
    run_date         DATE          NOT NULL,  -- the run, like model_runs.run_date
    model_version    VARCHAR(64)   NOT NULL,  -- the challenger: the model this run trained
    decision         VARCHAR(16)   NOT NULL,  -- 'promoted' (its recommendations were published) or 'rejected'
    forced           BOOLEAN       NOT NULL,  -- true when an operator overrode the gate
    primary_metric   VARCHAR(64)   NOT NULL,  -- the metric the gate compared, e.g. 'ndcg@10' or 'rmse'
    challenger_value DOUBLE        NULL,      -- this run's primary_metric; NULL when it could not be computed
    champion_version VARCHAR(64)   NULL,      -- the champion it was compared with; NULL when there was none
    champion_value   DOUBLE        NULL,      -- that champion's primary_metric; NULL when there was none
    tolerance        DOUBLE        NOT NULL,  -- how much worse than the champion the challenger may be
    reason           VARCHAR(1024) NOT NULL,  -- the gate's decision as a sentence, for people
    params           JSON          NOT NULL,  -- the chosen hyperparameters
    tuning           JSON          NOT NULL,  -- the hyperparameter search: trials and wall time
    data_snapshot    JSON          NOT NULL,  -- the training data: lake path, row counts, date
    metrics          JSON          NOT NULL,  -- model -> metric -> value, for every model evaluated
    model_path       VARCHAR(1024) NOT NULL,  -- where the trained model was saved
    is_champion      BOOLEAN       NOT NULL,  -- true on exactly one row per dataset once a run was promoted: the one serving
    PRIMARY KEY (dataset, run_date),
    KEY ix_model_registry_champion (dataset, is_champion)  -- "which model serves dataset X?"
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
