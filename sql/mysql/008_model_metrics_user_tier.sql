-- RecFlow warehouse, migration 008: model metrics per user tier (MySQL 8 and MariaDB 10.11+).
-- One ALTER TABLE per file, as in 003: the column and the new primary key go in one statement,
-- so the table is either wholly migrated or untouched.
--
-- user_tier: 'all' for a model's metrics over every test user (what model_metrics held until
--            now, so existing rows get 'all' and keep their meaning), or the tier the metrics
--            were computed on: cold, warm or heavy (see recommendations.user_tier in 007). A
--            tier's row count is published as the metric 'n_users' with k 0.
-- The tier joins the primary key: one row per (dataset, run_date, model, user_tier, metric, k).
ALTER TABLE model_metrics
    ADD COLUMN user_tier VARCHAR(16) NOT NULL DEFAULT 'all',
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (dataset, run_date, model, user_tier, metric, k);
