-- RecFlow warehouse, migration 007: the user tier of every recommendation (MySQL 8 and MariaDB
-- 10.11+). One ALTER TABLE per file, as in 003.
--
-- user_tier: how much the model knew about the user when the list was made, which decides where
--            the list comes from (recommendations.source):
--              new   - no history at all: popular / segment_popular lists;
--              cold  - a few interactions: content-based or hybrid;
--              warm  - enough history for the collaborative model (als, hybrid);
--              heavy - the most active users (als).
--            Rows published before this migration were all ALS lists for known users: 'warm'.
-- publish() stages the whole table with CREATE TABLE ... LIKE recommendations before its RENAME
-- swap, so the stage table gets this column (and its default) without any change there.
ALTER TABLE recommendations
    ADD COLUMN user_tier VARCHAR(16) NOT NULL DEFAULT 'warm';
