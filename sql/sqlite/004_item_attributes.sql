-- RecFlow warehouse, migration 004 (embedded SQLite warehouse): twin of
-- sql/mysql/004_item_attributes.sql, which explains the columns.
ALTER TABLE items ADD COLUMN category VARCHAR(255) NULL;
ALTER TABLE items ADD COLUMN brand VARCHAR(128) NULL;
ALTER TABLE items ADD COLUMN price DOUBLE NULL;
