-- RecFlow warehouse, migration 005 (embedded SQLite warehouse): twin of
-- sql/mysql/005_analytics.sql, which explains the tables. Same tables, columns and keys;
-- DECIMAL is stored as SQLite's NUMERIC, so revenue sums are exact only up to 15 digits here.

-- Who the users are, where the source says (MovieLens demographics), and when they were active.
CREATE TABLE IF NOT EXISTS users (
    dataset        VARCHAR(64) NOT NULL,
    user_id        VARCHAR(64) NOT NULL,
    gender         VARCHAR(16) NULL,  -- as the source spells it (M, F); NULL where unknown
    age            SMALLINT    NULL,  -- MovieLens 100K: years; 1M: its bucket's lower bound
    age_group      VARCHAR(16) NULL,  -- MovieLens 1M's buckets for both: Under 18, 18-24, ..., 56+
    occupation     VARCHAR(64) NULL,
    zip_code       VARCHAR(16) NULL,
    first_seen     DATETIME    NULL,  -- first and last interaction (UTC)
    last_seen      DATETIME    NULL,
    n_interactions BIGINT      NOT NULL,
    run_date       DATE        NOT NULL,
    PRIMARY KEY (dataset, user_id)
);
CREATE INDEX IF NOT EXISTS ix_users_segment ON users (dataset, age_group, gender);

-- What each user does: tastes, rhythm and volume, from all of the user's interactions.
CREATE TABLE IF NOT EXISTS user_profiles (
    dataset            VARCHAR(64)   NOT NULL,
    user_id            VARCHAR(64)   NOT NULL,
    n_interactions     BIGINT        NOT NULL,
    n_items            INT           NOT NULL,  -- distinct items
    active_days        INT           NOT NULL,  -- distinct days with an interaction
    activity_level     VARCHAR(16)   NOT NULL,  -- light (bottom half by interactions), regular, heavy (top 10 %)
    top_categories     VARCHAR(512)  NULL,      -- up to 3 genres / categories / channel genres, most first, '|'-joined
    top_category       VARCHAR(128)  NULL,
    top_category_share DOUBLE        NULL,      -- share of the user's interactions in top_category
    active_hours       VARCHAR(64)   NULL,      -- up to 3 hours of day (UTC), busiest first, e.g. 20|21|19
    peak_hour          TINYINT       NULL,
    active_weekdays    VARCHAR(64)   NULL,      -- up to 3 weekdays, busiest first, e.g. Sat|Sun|Fri
    peak_weekday       VARCHAR(3)    NULL,
    avg_rating         DOUBLE        NULL,      -- rating sources
    purchases          BIGINT        NULL,      -- e-commerce
    revenue            DECIMAL(18,2) NULL,      -- e-commerce: sum of purchase prices
    watch_seconds      BIGINT        NULL,      -- TV
    run_date           DATE          NOT NULL,
    PRIMARY KEY (dataset, user_id)
);
CREATE INDEX IF NOT EXISTS ix_user_profiles_level ON user_profiles (dataset, activity_level);
CREATE INDEX IF NOT EXISTS ix_user_profiles_category ON user_profiles (dataset, top_category);

-- The most popular items overall (segment_type 'overall', segment 'all') and per segment:
-- user demographics where known (gender, age_group, occupation) and item category (genre).
-- Ranked by distinct users, then interactions, then item id; top K per segment. Also the
-- cold-start answer for a user the model has never seen.
CREATE TABLE IF NOT EXISTS popular_items (
    dataset        VARCHAR(64)  NOT NULL,
    segment_type   VARCHAR(32)  NOT NULL,  -- overall, gender, age_group, occupation, category
    segment        VARCHAR(128) NOT NULL,
    "rank"         SMALLINT     NOT NULL,  -- 1 = most popular in the segment
    item_id        VARCHAR(64)  NOT NULL,
    n_users        BIGINT       NOT NULL,
    n_interactions BIGINT       NOT NULL,
    avg_rating     DOUBLE       NULL,      -- rating sources
    run_date       DATE         NOT NULL,
    PRIMARY KEY (dataset, segment_type, segment, "rank")
);
CREATE INDEX IF NOT EXISTS ix_popular_items_item ON popular_items (dataset, item_id);

-- Items like each item (top K by similarity), when the run computes them.
CREATE TABLE IF NOT EXISTS similar_items (
    dataset         VARCHAR(64) NOT NULL,
    item_id         VARCHAR(64) NOT NULL,
    "rank"          SMALLINT    NOT NULL,
    similar_item_id VARCHAR(64) NOT NULL,
    score           DOUBLE      NOT NULL,
    model_version   VARCHAR(64) NOT NULL,
    run_date        DATE        NOT NULL,
    PRIMARY KEY (dataset, item_id, "rank")
);
CREATE INDEX IF NOT EXISTS ix_similar_items_similar ON similar_items (dataset, similar_item_id);

-- One row per dataset and day: volume, reach and value.
CREATE TABLE IF NOT EXISTS daily_kpis (
    dataset        VARCHAR(64)   NOT NULL,
    activity_date  DATE          NOT NULL,
    n_interactions BIGINT        NOT NULL,
    active_users   INT           NOT NULL,
    new_users      INT           NOT NULL,  -- users whose first interaction in the data is this day
    active_items   INT           NOT NULL,
    avg_rating     DOUBLE        NULL,      -- rating sources
    purchases      BIGINT        NULL,      -- e-commerce
    revenue        DECIMAL(18,2) NULL,      -- e-commerce
    watch_seconds  BIGINT        NULL,      -- TV
    run_date       DATE          NOT NULL,
    PRIMARY KEY (dataset, activity_date)
);

-- Interactions per day and genre / category / channel genre (an item in two genres counts in both).
CREATE TABLE IF NOT EXISTS daily_category_activity (
    dataset        VARCHAR(64)   NOT NULL,
    activity_date  DATE          NOT NULL,
    category       VARCHAR(128)  NOT NULL,
    n_interactions BIGINT        NOT NULL,
    active_users   INT           NOT NULL,
    revenue        DECIMAL(18,2) NULL,  -- e-commerce
    watch_seconds  BIGINT        NULL,  -- TV
    run_date       DATE          NOT NULL,
    PRIMARY KEY (dataset, activity_date, category)
);
CREATE INDEX IF NOT EXISTS ix_daily_category_activity_category ON daily_category_activity (dataset, category, activity_date);

-- The engagement funnel per day, one row per step. E-commerce: 1 view, 2 cart, 3 purchase.
-- Ratings: 1 rated, 2 liked (a rating at least 70 % of the way up the scale: 4 or more of 5).
-- TV: 1 tuned in, 2 watched 5+ minutes of an hour, 3 watched 30+ minutes.
CREATE TABLE IF NOT EXISTS daily_funnel (
    dataset       VARCHAR(64) NOT NULL,
    activity_date DATE        NOT NULL,
    step          TINYINT     NOT NULL,  -- 1 = top of the funnel
    step_name     VARCHAR(32) NOT NULL,
    n_events      BIGINT      NOT NULL,
    n_users       INT         NOT NULL,  -- distinct users who reached the step that day
    run_date      DATE        NOT NULL,
    PRIMARY KEY (dataset, activity_date, step)
);

-- Interactions per day and hour of day (UTC): when people use the service.
CREATE TABLE IF NOT EXISTS hourly_activity (
    dataset        VARCHAR(64) NOT NULL,
    activity_date  DATE        NOT NULL,
    hour           TINYINT     NOT NULL,  -- 0..23
    n_interactions BIGINT      NOT NULL,
    active_users   INT         NOT NULL,
    run_date       DATE        NOT NULL,
    PRIMARY KEY (dataset, activity_date, hour)
);

-- TV: watch time per channel, day and program hour.
CREATE TABLE IF NOT EXISTS watch_time_hourly (
    dataset       VARCHAR(64) NOT NULL,
    activity_date DATE        NOT NULL,
    item_id       VARCHAR(64) NOT NULL,  -- the channel
    hour          TINYINT     NOT NULL,
    watch_seconds BIGINT      NOT NULL,
    viewers       INT         NOT NULL,  -- distinct households
    run_date      DATE        NOT NULL,
    PRIMARY KEY (dataset, activity_date, item_id, hour)
);
CREATE INDEX IF NOT EXISTS ix_watch_time_hourly_channel ON watch_time_hourly (dataset, item_id, activity_date);
