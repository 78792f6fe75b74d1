-- RecFlow warehouse, migration 007 (embedded SQLite warehouse): twin of
-- sql/mysql/007_recommendation_user_tier.sql, which explains the column.
ALTER TABLE recommendations ADD COLUMN user_tier VARCHAR(16) NOT NULL DEFAULT 'warm';
