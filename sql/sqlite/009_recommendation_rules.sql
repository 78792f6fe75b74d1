-- RecFlow warehouse, migration 009 (embedded SQLite warehouse): twin of
-- sql/mysql/009_recommendation_rules.sql, which explains the tables.

CREATE TABLE IF NOT EXISTS recommendation_blocklist (
    dataset  VARCHAR(64)  NOT NULL,
    item_id  VARCHAR(64)  NOT NULL,
    user_id  VARCHAR(64)  NOT NULL DEFAULT '',  -- '' = every user of the dataset
    reason   VARCHAR(255) NOT NULL,
    added_by VARCHAR(64)  NULL,
    added_at DATETIME     NOT NULL,             -- UTC
    PRIMARY KEY (dataset, item_id, user_id)
);

CREATE TABLE IF NOT EXISTS recommendation_rules (
    dataset        VARCHAR(64)  NOT NULL,
    run_date       DATE         NOT NULL,
    model_version  VARCHAR(64)  NOT NULL,
    rule           VARCHAR(32)  NOT NULL,
    enabled        BOOLEAN      NOT NULL,
    setting        VARCHAR(255) NULL,
    items_removed  BIGINT       NOT NULL,
    users_affected INT          NOT NULL,
    PRIMARY KEY (dataset, run_date, rule)
);
