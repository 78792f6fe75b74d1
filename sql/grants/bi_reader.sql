-- RecFlow warehouse: the read-only bi_reader account, by hand (MySQL 8 and MariaDB 10.11+).
--
-- `make bi-reader` (scripts/create_bi_reader.sh -> python -m recflow.warehouse.grants) does the
-- same from the v_* views the database actually holds, and checks the result; this file is for a
-- DBA who applies grants at the mysql prompt. Connect to the warehouse database as an account
-- that may create users and grant, type the password at the prompt (not on the command line,
-- where `ps` would show it), then source the file:
--
--     mysql -h <server> -u root -p <database>
--     mysql> SET @bi_reader_password = '...';
--     mysql> SOURCE sql/grants/bi_reader.sql
--
-- Optional, before SOURCE: SET @bi_reader_user = 'bi_reader', @bi_reader_host = '%';
--
-- bi_reader may SELECT the BI views and nothing else. The views are SQL SECURITY DEFINER, so the
-- SELECT on a view alone lets it read through to the base tables. Idempotent: re-running it
-- with another password rotates the password, and REVOKE ALL drops grants no longer wanted,
-- on every database of the server (give each warehouse its own reader account).
-- Without a password, or without a current database, every PREPARE fails (the mysql client goes
-- on after an error in a sourced file) and nothing changes. Check the result with: SHOW GRANTS FOR 'bi_reader'@'%';
--
-- The GRANT list names every view the migrations of sql/mysql/ create (006_bi_views.sql,
-- 010_recommendation_views.sql; the tests check it): add a line here with each new view.

SET @bi_reader_ok = COALESCE(@bi_reader_password, '') <> '' AND DATABASE() IS NOT NULL;
SET @bi_reader_account = CONCAT(QUOTE(COALESCE(@bi_reader_user, 'bi_reader')), '@',
                                QUOTE(COALESCE(@bi_reader_host, '%')));
-- QUOTE() escapes with backslashes, which a server in NO_BACKSLASH_ESCAPES mode reads literally;
-- there only the quote needs doubling.
SET @bi_reader_secret = IF(@@SESSION.sql_mode LIKE '%NO_BACKSLASH_ESCAPES%',
                           CONCAT('''', REPLACE(@bi_reader_password, '''', ''''''), ''''),
                           QUOTE(@bi_reader_password));

SET @stmt = IF(@bi_reader_ok, CONCAT('CREATE USER IF NOT EXISTS ', @bi_reader_account, ' IDENTIFIED BY ', @bi_reader_secret), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('ALTER USER ', @bi_reader_account, ' IDENTIFIED BY ', @bi_reader_secret), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @bi_reader_secret = NULL, @stmt = NULL;

SET @stmt = IF(@bi_reader_ok, CONCAT('REVOKE ALL PRIVILEGES, GRANT OPTION FROM ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;

-- Unqualified names: the views of the current database.
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_activity_by_hour TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_blocklist TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_category_daily TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_daily_kpis TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_data_quality TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_funnel_daily TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_model_performance TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_model_tier_performance TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_popular_items TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_quarantine TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_recommendation_mix TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_recommendation_rules TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_similar_items TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_user_profiles TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_user_recommendations TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;
SET @stmt = IF(@bi_reader_ok, CONCAT('GRANT SELECT ON v_watch_time_hourly TO ', @bi_reader_account), NULL);
PREPARE stmt FROM @stmt;
EXECUTE stmt;

DEALLOCATE PREPARE stmt;
SET @stmt = NULL, @bi_reader_password = NULL, @bi_reader_ok = NULL;
