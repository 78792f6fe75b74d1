-- RecFlow warehouse, migration 009: the business rules applied to recommendations, and the
-- blocklist that feeds one of them (MySQL 8 and MariaDB 10.11+). The portability rules of
-- 001_core.sql apply.

-- Items that must not be recommended, per dataset: to every user (user_id '') or to one user.
-- Operators edit it (`python -m recflow.cli block ...`, recflow.warehouse.blocklist); before the
-- recommend step runs, the DAG exports the dataset's rows to the lake (rules/blocklist), because
-- the Spark job never connects to the warehouse. A change therefore takes effect with the next run.
CREATE TABLE IF NOT EXISTS recommendation_blocklist (
    dataset  VARCHAR(64)  NOT NULL,
    item_id  VARCHAR(64)  NOT NULL,
    user_id  VARCHAR(64)  NOT NULL DEFAULT '',  -- '' = every user of the dataset
    reason   VARCHAR(255) NOT NULL,             -- why, for the people reading the list: "licence expired"
    added_by VARCHAR(64)  NULL,                 -- who blocked it, where known
    added_at DATETIME     NOT NULL,             -- when (UTC)
    PRIMARY KEY (dataset, item_id, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- What each business rule did in a run's recommend step: one row per run and rule, a run fact
-- replaced on a re-publish like model_metrics (promoted or not).
--   seen         - items the user already interacted with;
--   blocklist    - items in recommendation_blocklist (as exported for the run);
--   availability - items no longer in the catalogue / not available;
--   diversity    - items beyond a per-category cap ("max 4 per category").
-- items_removed counts would-be recommendations the rule took out; users_affected the users who
-- lost at least one.
CREATE TABLE IF NOT EXISTS recommendation_rules (
    dataset        VARCHAR(64)  NOT NULL,
    run_date       DATE         NOT NULL,
    model_version  VARCHAR(64)  NOT NULL,
    rule           VARCHAR(32)  NOT NULL,
    enabled        BOOLEAN      NOT NULL,
    setting        VARCHAR(255) NULL,      -- the rule's setting in words, e.g. "max 4 per category"
    items_removed  BIGINT       NOT NULL,
    users_affected INT          NOT NULL,
    PRIMARY KEY (dataset, run_date, rule)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
