-- RecFlow warehouse, migration 010 (embedded SQLite warehouse): twin of
-- sql/mysql/010_recommendation_views.sql, which explains the views. Same names and columns;
-- SQLite has no CREATE OR REPLACE VIEW and no definer rights, and divides as REAL here.

-- 006's view with user_tier appended: which tier the user was in when the list was made.
DROP VIEW IF EXISTS v_user_recommendations;
CREATE VIEW v_user_recommendations AS
SELECT r.dataset,
       r.user_id,
       r."rank" AS recommendation_rank,
       r.item_id,
       i.title,
       i.genres,
       i.category,
       i.brand,
       r.score,
       r.source,
       r.reason,
       r.model_version,
       r.run_date,
       r.user_tier
FROM recommendations r
LEFT JOIN items i ON i.dataset = r.dataset AND i.item_id = r.item_id;

-- 006's view, still one row per run, model, metric and k: the metrics over all test users
-- (user_tier 'all'), so sheets built on it keep their meaning now that model_metrics also holds
-- per-tier rows. user_tier is appended (always 'all' here); the tiers are in
-- v_model_tier_performance.
DROP VIEW IF EXISTS v_model_performance;
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
       r.status AS run_status,
       m.user_tier
FROM model_metrics m
LEFT JOIN model_registry g ON g.dataset = m.dataset AND g.run_date = m.run_date
LEFT JOIN model_runs r ON r.dataset = m.dataset AND r.run_date = m.run_date
WHERE m.user_tier = 'all';

-- Every metric of every model per user tier: cold, warm and heavy users side by side, with the
-- 'all' rows of v_model_performance for comparison. One row per run, tier, model, metric and k;
-- a tier's user count is the metric 'n_users' (k 0). tier_order sorts the tiers by history:
-- all 0, new 1, cold 2, warm 3, heavy 4.
DROP VIEW IF EXISTS v_model_tier_performance;
CREATE VIEW v_model_tier_performance AS
SELECT m.dataset,
       m.run_date,
       m.model_version,
       m.user_tier,
       CASE m.user_tier WHEN 'all' THEN 0 WHEN 'new' THEN 1 WHEN 'cold' THEN 2 WHEN 'warm' THEN 3
                        WHEN 'heavy' THEN 4 ELSE 9 END AS tier_order,
       m.model,
       m.metric,
       m.k,
       CASE WHEN m.k > 0 THEN m.metric || '@' || m.k ELSE m.metric END AS metric_label,
       m.value,
       g.decision,
       g.is_champion,
       r.status AS run_status
FROM model_metrics m
LEFT JOIN model_registry g ON g.dataset = m.dataset AND g.run_date = m.run_date
LEFT JOIN model_runs r ON r.dataset = m.dataset AND r.run_date = m.run_date;

-- What each business rule removed in each run, beside the gate's decision on the run.
DROP VIEW IF EXISTS v_recommendation_rules;
CREATE VIEW v_recommendation_rules AS
SELECT u.dataset,
       u.run_date,
       u.model_version,
       u.rule,
       u.enabled,
       u.setting,
       u.items_removed,
       u.users_affected,
       CAST(u.items_removed AS REAL) / NULLIF(u.users_affected, 0) AS items_removed_per_user,
       g.decision,
       g.is_champion,
       r.status AS run_status
FROM recommendation_rules u
LEFT JOIN model_registry g ON g.dataset = u.dataset AND g.run_date = u.run_date
LEFT JOIN model_runs r ON r.dataset = u.dataset AND r.run_date = u.run_date;

-- The blocklist as it stands, with titles: user_id '' (applies_to 'all users') blocks the item
-- for everyone.
DROP VIEW IF EXISTS v_blocklist;
CREATE VIEW v_blocklist AS
SELECT b.dataset,
       b.item_id,
       i.title,
       i.genres,
       i.category,
       b.user_id,
       CASE WHEN b.user_id = '' THEN 'all users' ELSE 'one user' END AS applies_to,
       b.reason,
       b.added_by,
       b.added_at
FROM recommendation_blocklist b
LEFT JOIN items i ON i.dataset = b.dataset AND i.item_id = b.item_id;

-- Items like each item (the champion model's, by cosine of the ALS item factors), with titles.
DROP VIEW IF EXISTS v_similar_items;
CREATE VIEW v_similar_items AS
SELECT s.dataset,
       s.item_id,
       i.title,
       i.genres,
       i.category,
       s."rank" AS similarity_rank,
       s.similar_item_id,
       j.title AS similar_title,
       j.genres AS similar_genres,
       j.category AS similar_category,
       s.score,
       s.model_version,
       s.run_date
FROM similar_items s
LEFT JOIN items i ON i.dataset = s.dataset AND i.item_id = s.item_id
LEFT JOIN items j ON j.dataset = s.dataset AND j.item_id = s.similar_item_id;

-- Which users got what: the current lists per user tier and source. n_users counts the users
-- with at least one recommendation from the source, so a user whose list mixes sources counts
-- once per source; n_recommendations sums. share_of_recommendations is of the dataset's set.
DROP VIEW IF EXISTS v_recommendation_mix;
CREATE VIEW v_recommendation_mix AS
SELECT r.dataset,
       r.run_date,
       r.model_version,
       r.user_tier,
       CASE r.user_tier WHEN 'new' THEN 1 WHEN 'cold' THEN 2 WHEN 'warm' THEN 3 WHEN 'heavy' THEN 4
                        ELSE 9 END AS tier_order,
       r.source,
       COUNT(DISTINCT r.user_id) AS n_users,
       COUNT(*) AS n_recommendations,
       CAST(COUNT(*) AS REAL) / SUM(COUNT(*)) OVER (PARTITION BY r.dataset) AS share_of_recommendations
FROM recommendations r
GROUP BY r.dataset, r.run_date, r.model_version, r.user_tier, r.source;
