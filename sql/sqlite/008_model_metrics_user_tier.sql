-- RecFlow warehouse, migration 008 (embedded SQLite warehouse): twin of
-- sql/mysql/008_model_metrics_user_tier.sql, which explains the column.
--
-- SQLite cannot change a primary key, so the table is rebuilt: create the new shape, copy the
-- rows (user_tier 'all'), drop the old table, rename the new one. v_model_performance reads
-- model_metrics, and SQLite re-checks the views when a table is renamed, so the view is dropped
-- first and created again at the end (as 006 defined it; 010 replaces it). The file applies in
-- one transaction: all of it or none of it.

DROP VIEW IF EXISTS v_model_performance;

CREATE TABLE model_metrics_008 (
    dataset       VARCHAR(64) NOT NULL,
    run_date      DATE        NOT NULL,
    model_version VARCHAR(64) NOT NULL,
    model         VARCHAR(32) NOT NULL,
    metric        VARCHAR(32) NOT NULL,
    k             INT         NOT NULL,
    value         DOUBLE      NOT NULL,
    user_tier     VARCHAR(16) NOT NULL DEFAULT 'all',
    PRIMARY KEY (dataset, run_date, model, user_tier, metric, k)
);

INSERT INTO model_metrics_008 (dataset, run_date, model_version, model, metric, k, value, user_tier)
SELECT dataset, run_date, model_version, model, metric, k, value, 'all' FROM model_metrics;

DROP TABLE model_metrics;

ALTER TABLE model_metrics_008 RENAME TO model_metrics;

CREATE VIEW v_model_performance AS
SELECT m.dataset,
       m.run_date,
       m.model_version,
       m.model,
       m.metric,
       m.k,
       CASE WHEN m.k > 0 THEN m.metric || '@' || m.k ELSE m.metric END AS metric_label,
       m.value,
       g.decision,
       g.forced,
       g.primary_metric,
       g.is_champion,
       r.status AS run_status
FROM model_metrics m
LEFT JOIN model_registry g ON g.dataset = m.dataset AND g.run_date = m.run_date
LEFT JOIN model_runs r ON r.dataset = m.dataset AND r.run_date = m.run_date;
