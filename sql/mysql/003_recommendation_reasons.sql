-- RecFlow warehouse, migration 003: where each recommendation came from and why (MySQL 8 and
-- MariaDB 10.11+). The portability rules of 001_core.sql apply.
--
-- One ALTER TABLE per migration file: MySQL commits each DDL statement on its own and has no
-- ADD COLUMN IF NOT EXISTS, so a file holding two ALTERs that failed after the first could
-- never be re-run. A single statement either happened (and is recorded) or did not.
--
-- source: the model or fallback that produced the row (als today; content, hybrid, popular and
--         segment_popular as those models arrive).
-- reason: a sentence for the person reading the list, e.g. "popular with everyone: 583 users".
ALTER TABLE recommendations
    ADD COLUMN source VARCHAR(16)  NOT NULL DEFAULT 'als',
    ADD COLUMN reason VARCHAR(255) NOT NULL DEFAULT '';
