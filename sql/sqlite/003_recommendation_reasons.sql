-- RecFlow warehouse, migration 003 (embedded SQLite warehouse): twin of
-- sql/mysql/003_recommendation_reasons.sql, which explains the columns. SQLite adds one
-- column per ALTER TABLE; the file applies in one transaction.
ALTER TABLE recommendations ADD COLUMN source VARCHAR(16) NOT NULL DEFAULT 'als';
ALTER TABLE recommendations ADD COLUMN reason VARCHAR(255) NOT NULL DEFAULT '';
