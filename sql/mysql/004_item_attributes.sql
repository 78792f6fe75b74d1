-- RecFlow warehouse, migration 004: the item attributes dashboards filter and group by
-- (MySQL 8 and MariaDB 10.11+). One ALTER TABLE per file, as in 003.
--
-- category: e-commerce category_code (electronics.smartphone) or the TV channel's genre;
--           MovieLens keeps its genres in `genres` and leaves this NULL.
-- brand, price: e-commerce only, as of the item's latest event.
ALTER TABLE items
    ADD COLUMN category VARCHAR(255) NULL,
    ADD COLUMN brand    VARCHAR(128) NULL,
    ADD COLUMN price    DOUBLE       NULL;
