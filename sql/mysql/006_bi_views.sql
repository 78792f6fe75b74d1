-- RecFlow warehouse, migration 006: the views Tableau and other BI tools read (MySQL 8 and
-- MariaDB 10.11+). The read-only bi_reader account may SELECT these views and nothing else
-- (`make bi-reader`, i.e. recflow/warehouse/grants.py; sql/grants/bi_reader.sql to do it by
-- hand); docs/dashboards.md describes the sheets built on them.
--
-- SQL SECURITY DEFINER (the default, spelled out): a view runs with its creator's rights, which
-- is what lets bi_reader read through it without any grant on the base tables. The creator is
-- the account that ran the migration; dropping that account breaks the views.
-- Names are stable: dashboards bind to them. Change a view in a new migration with CREATE OR
-- REPLACE, adding columns rather than renaming them. Ratios divide by NULLIF(x, 0) so an empty
-- day gives NULL, not an error, and multiply by 1e0 first: MySQL's DECIMAL division keeps only 4
-- decimals (3 bad rows in 100,000 would read 0.0000), a DOUBLE keeps them all.
-- Measures that SUM in Tableau never repeat on rows of a finer grain (see v_funnel_daily,
-- v_quarantine).

-- Every user's current list, best first, with the item's title and why it is there.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW v_user_recommendations AS
SELECT r.dataset,
       r.user_id,
       r.`rank` AS recommendation_rank,
       r.item_id,
       i.title,
       i.genres,
       i.category,
       i.brand,
       r.score,
       r.source,
       r.reason,
       r.model_version,
       r.run_date
FROM recommendations r
LEFT JOIN items i ON i.dataset = r.dataset AND i.item_id = r.item_id;

-- One row per dataset and day: volume, reach, value, and the ratios dashboards show.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW v_daily_kpis AS
SELECT k.dataset,
       k.activity_date,
       k.n_interactions,
       k.active_users,
       k.new_users,
       k.active_users - k.new_users AS returning_users,
       k.active_items,
       k.n_interactions * 1e0 / NULLIF(k.active_users, 0) AS interactions_per_user,
       k.avg_rating,
       k.purchases,
       k.revenue,
       k.revenue * 1e0 / NULLIF(k.purchases, 0) AS revenue_per_purchase,
       k.watch_seconds / 3600e0 AS watch_hours,
       k.run_date
FROM daily_kpis k;

-- The funnel per day and step, with conversion from the first and from the previous step
-- (distinct users). The day's revenue sits on its purchase step only, so SUM(revenue) over the
-- steps of a day is the day's revenue, not a multiple of it.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW v_funnel_daily AS
SELECT f.dataset,
       f.activity_date,
       f.step,
       f.step_name,
       f.n_events,
       f.n_users,
       f.n_users * 1e0 / NULLIF(top_step.n_users, 0) AS conversion_from_first,
       f.n_users * 1e0 / NULLIF(prev_step.n_users, 0) AS conversion_from_previous,
       CASE WHEN f.step_name = 'purchase' THEN k.revenue END AS revenue,
       f.run_date
FROM daily_funnel f
LEFT JOIN daily_funnel top_step
       ON top_step.dataset = f.dataset AND top_step.activity_date = f.activity_date AND top_step.step = 1
LEFT JOIN daily_funnel prev_step
       ON prev_step.dataset = f.dataset AND prev_step.activity_date = f.activity_date
      AND prev_step.step = f.step - 1
LEFT JOIN daily_kpis k ON k.dataset = f.dataset AND k.activity_date = f.activity_date;

-- The most popular items overall and per segment, with titles.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW v_popular_items AS
SELECT p.dataset,
       p.segment_type,
       p.segment,
       p.`rank` AS popularity_rank,
       p.item_id,
       i.title,
       i.genres,
       i.category,
       p.n_users,
       p.n_interactions,
       p.avg_rating,
       p.run_date
FROM popular_items p
LEFT JOIN items i ON i.dataset = p.dataset AND i.item_id = p.item_id;

-- Every metric of every model of every run, beside the gate's decision on that run.
-- model: als (the run's model), champion (the served model, re-scored on the same test
-- split), popularity and bias (baselines). metric_label is e.g. 'ndcg@10' or 'rmse'.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW v_model_performance AS
SELECT m.dataset,
       m.run_date,
       m.model_version,
       m.model,
       m.metric,
       m.k,
       CASE WHEN m.k > 0 THEN CONCAT(m.metric, '@', m.k) ELSE m.metric END AS metric_label,
       m.value,
       g.decision,
       g.forced,
       g.primary_metric,
       g.is_champion,
       r.status AS run_status
FROM model_metrics m
LEFT JOIN model_registry g ON g.dataset = m.dataset AND g.run_date = m.run_date
LEFT JOIN model_runs r ON r.dataset = m.dataset AND r.run_date = m.run_date;

-- Every expectation checked on every run, with the run's row accounting for the table it
-- checked (raw = clean + quarantined + duplicates).
CREATE OR REPLACE SQL SECURITY DEFINER VIEW v_data_quality AS
SELECT q.dataset,
       q.run_date,
       q.suite,
       q.expectation_key,
       q.expectation_type,
       q.column_name,
       q.severity,
       q.success,
       CASE WHEN q.success THEN 'passed' WHEN q.severity = 'warning' THEN 'warned' ELSE 'failed' END AS outcome,
       q.unexpected_count,
       q.element_count,
       q.unexpected_count * 1e0 / NULLIF(q.element_count, 0) AS unexpected_share,
       q.observed_value
FROM data_quality_results q;

-- Row accounting per run and table, one row per quarantine reason (reason NULL when the table
-- lost no rows), with where to look for a sample of each. The table's counts sit on its first
-- row only (NULL on the others), so they SUM correctly whatever the number of reasons.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW v_quarantine AS
SELECT c.dataset,
       c.run_date,
       c.table_name,
       CASE WHEN ROW_NUMBER() OVER w = 1 THEN c.raw_rows END AS raw_rows,
       CASE WHEN ROW_NUMBER() OVER w = 1 THEN c.clean_rows END AS clean_rows,
       CASE WHEN ROW_NUMBER() OVER w = 1 THEN c.quarantined_rows END AS quarantined_rows,
       CASE WHEN ROW_NUMBER() OVER w = 1 THEN c.duplicate_rows END AS duplicate_rows,
       q.reason,
       q.column_name,
       q.rows_quarantined,
       q.sample_file,
       q.sample_line,
       q.sample_row
FROM data_reconciliation c
LEFT JOIN quarantine_summary q
       ON q.dataset = c.dataset AND q.run_date = c.run_date AND q.table_name = c.table_name
WINDOW w AS (PARTITION BY c.dataset, c.run_date, c.table_name ORDER BY q.reason);

-- Interactions per day and genre / category.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW v_category_daily AS
SELECT a.dataset,
       a.activity_date,
       a.category,
       a.n_interactions,
       a.active_users,
       a.revenue,
       a.watch_seconds / 3600e0 AS watch_hours,
       a.run_date
FROM daily_category_activity a;

-- Interactions per day and hour (UTC), with the weekday for hour x weekday heat maps.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW v_activity_by_hour AS
SELECT h.dataset,
       h.activity_date,
       DAYOFWEEK(h.activity_date) AS weekday_number,  -- 1 = Sunday .. 7 = Saturday
       ELT(DAYOFWEEK(h.activity_date), 'Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat') AS weekday,  -- not DATE_FORMAT: it follows the reader's lc_time_names
       h.hour,
       h.n_interactions,
       h.active_users,
       h.run_date
FROM hourly_activity h;

-- Users with their demographics and behaviour.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW v_user_profiles AS
SELECT p.dataset,
       p.user_id,
       u.gender,
       u.age,
       u.age_group,
       u.occupation,
       p.activity_level,
       p.n_interactions,
       p.n_items,
       p.active_days,
       u.first_seen,
       u.last_seen,
       p.top_categories,
       p.top_category,
       p.top_category_share,
       p.active_hours,
       p.peak_hour,
       p.active_weekdays,
       p.peak_weekday,
       p.avg_rating,
       p.purchases,
       p.revenue,
       p.watch_seconds / 3600e0 AS watch_hours,
       p.run_date
FROM user_profiles p
LEFT JOIN users u ON u.dataset = p.dataset AND u.user_id = p.user_id;

-- TV: watch time per channel, day and hour, with the channel's name and genre.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW v_watch_time_hourly AS
SELECT w.dataset,
       w.activity_date,
       w.hour,
       w.item_id AS channel_id,
       i.title AS channel_name,
       COALESCE(i.category, NULLIF(i.genres, '')) AS channel_genre,
       w.watch_seconds,
       w.watch_seconds / 3600e0 AS watch_hours,
       w.viewers,
       w.run_date
FROM watch_time_hourly w
LEFT JOIN items i ON i.dataset = w.dataset AND i.item_id = w.item_id;
