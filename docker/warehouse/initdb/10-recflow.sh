# RecFlow warehouse, first start of the mysql image (an empty data volume): the schema, the
# read-only bi_reader account, and the app account's rights for the publish watchdog.
# docker-compose.yaml mounts this folder at /docker-entrypoint-initdb.d and the repository's sql/
# at /opt/recflow/sql.
#
# The image's entrypoint *sources* this file (it is not executable on purpose), against its
# temporary server, as root, with docker_process_sql at hand (the mysql client on the server's
# socket, in the database MYSQL_DATABASE). It runs once: later starts skip /docker-entrypoint-initdb.d.
#
# 1. The migrations sql/mysql/NNN_*.sql, in order, each recorded in schema_migrations, which is
#    what recflow.warehouse.migrate does and what sql/mysql/001_core.sql documents for applying
#    them by hand. The DAG's migrate_warehouse task then finds them applied and runs only newer
#    files. They come first because bi_reader is granted SELECT on the v_* views one by one, and
#    MySQL grants SELECT on a view only once the view exists.
# 2. The project's sql/grants/bi_reader.sql, with @bi_reader_password (and @bi_reader_host) set
#    from RECFLOW_BI_READER_PASSWORD / RECFLOW_BI_READER_HOST: bi_reader may SELECT the views
#    and nothing else. The password goes to the client on stdin, never on a command line.
# 3. A check: every v_* view is granted (a view added by a migration but not to bi_reader.sql
#    would otherwise go unnoticed), and SHOW GRANTS for the log.
# 4. The app account MYSQL_USER (`recflow`, which the image created with ALL on the warehouse
#    database before running this file) gets what the publish's watchdog needs
#    (recflow.warehouse.blocking_readers), so the publish can see which session blocks it
#    (sys.innodb_lock_waits) and end a read-only one:
#      PROCESS          other sessions' transactions in information_schema.INNODB_TRX / PROCESSLIST
#      CONNECTION_ADMIN KILL CONNECTION on another account's session (a BI reader's); MySQL 8
#      SELECT, EXECUTE on sys.*  the sys views are SQL SECURITY INVOKER and call sys functions
#                       (sys.innodb_lock_waits calls sys.format_statement), so the invoker needs both
#      SELECT on performance_schema.*  what the sys views read (data_locks, data_lock_waits)
#    CONNECTION_ADMIN also lets the account log in past max_connections and end any session,
#    root's included: it is the pipeline's own account, and the watchdog ends only readers.
#    A warehouse created before this step existed does not run this file again; give the grants
#    at the mysql prompt as root (docs/docker-compose.md).
#
# Rotate the password later (this file does not run again) at the mysql prompt, as
# sql/grants/bi_reader.sql describes:
#   docker compose exec warehouse mysql -uroot -p recflow
#   mysql> SET @bi_reader_password = '...'; SOURCE /opt/recflow/sql/grants/bi_reader.sql

if ! declare -F docker_process_sql >/dev/null; then
	echo "$0: must be sourced by the mysql image's entrypoint (is it executable? it must not be)" >&2
	exit 1
fi

recflow_sql_root=/opt/recflow/sql
recflow_bi_host=${RECFLOW_BI_READER_HOST:-%}

if [ -z "${RECFLOW_BI_READER_PASSWORD:-}" ]; then
	mysql_error "RECFLOW_BI_READER_PASSWORD is empty: refusing to create bi_reader without a password"
fi
# The rule of recflow.warehouse.grants: printable ASCII, which every client driver sends alike.
if ! LC_ALL=C grep -qxE '[ -~]{1,256}' <<<"$RECFLOW_BI_READER_PASSWORD" \
	|| [ "$(printf '%s' "$RECFLOW_BI_READER_PASSWORD" | wc -l)" -ne 0 ]; then
	mysql_error "RECFLOW_BI_READER_PASSWORD must be 1-256 printable ASCII characters"
fi
if ! LC_ALL=C grep -qxE '[A-Za-z0-9_.%:/-]{1,255}' <<<"$recflow_bi_host"; then
	mysql_error "RECFLOW_BI_READER_HOST '$recflow_bi_host': use a host name, an IP address, a netmask or % wildcards"
fi

# A string literal for the mysql client: backslash and quote escaped (the default sql_mode,
# without NO_BACKSLASH_ESCAPES).
recflow_sql_literal() {
	local value=${1//\\/\\\\}
	printf "'%s'" "${value//\'/\\\'}"
}

# 1. The schema.
recflow_migrations=("$recflow_sql_root"/mysql/[0-9][0-9][0-9]_*.sql)
if [ ${#recflow_migrations[@]} -eq 0 ]; then
	mysql_error "no migrations in $recflow_sql_root/mysql: is ./sql mounted at $recflow_sql_root?"
fi
for recflow_file in "${recflow_migrations[@]}"; do
	recflow_version=$(basename "$recflow_file" .sql)
	mysql_note "RecFlow: applying migration $recflow_version"
	docker_process_sql --default-character-set=utf8mb4 <"$recflow_file"
	docker_process_sql <<<"INSERT IGNORE INTO schema_migrations (version) VALUES ($(recflow_sql_literal "$recflow_version"));"
done

# 2. bi_reader, by the project's own grants file.
mysql_note "RecFlow: creating 'bi_reader'@'$recflow_bi_host' (SELECT on the v_* views only)"
{
	printf 'SET @bi_reader_password = %s, @bi_reader_host = %s;\n' \
		"$(recflow_sql_literal "$RECFLOW_BI_READER_PASSWORD")" "$(recflow_sql_literal "$recflow_bi_host")"
	cat "$recflow_sql_root/grants/bi_reader.sql"
} | docker_process_sql

# 3. Every view granted, nothing else.
recflow_ungranted=$(docker_process_sql --batch --skip-column-names <<-EOSQL
	SELECT v.TABLE_NAME FROM information_schema.VIEWS v
	WHERE v.TABLE_SCHEMA = DATABASE() AND v.TABLE_NAME LIKE 'v\\_%'
	  AND NOT EXISTS (SELECT 1 FROM information_schema.TABLE_PRIVILEGES p
	                  WHERE p.TABLE_SCHEMA = v.TABLE_SCHEMA AND p.TABLE_NAME = v.TABLE_NAME
	                    AND p.PRIVILEGE_TYPE = 'SELECT'
	                    AND p.GRANTEE = CONCAT(QUOTE('bi_reader'), '@', QUOTE($(recflow_sql_literal "$recflow_bi_host"))))
	ORDER BY 1;
EOSQL
)
if [ -n "$recflow_ungranted" ]; then
	mysql_error "bi_reader has no SELECT on these views (add them to sql/grants/bi_reader.sql): $(echo $recflow_ungranted)"
fi
docker_process_sql --batch --skip-column-names <<<"SHOW GRANTS FOR 'bi_reader'@$(recflow_sql_literal "$recflow_bi_host");" \
	| sed 's/^/RecFlow: /'
# 4. The app account's rights for the publish watchdog (see the top of this file).
if [ -z "${MYSQL_USER:-}" ]; then
	mysql_error "MYSQL_USER is empty: the publish account it names needs the watchdog's grants"
fi
recflow_app_account="$(recflow_sql_literal "$MYSQL_USER")@'%'"
mysql_note "RecFlow: granting $MYSQL_USER PROCESS, CONNECTION_ADMIN and the sys views (the publish watchdog)"
docker_process_sql <<-EOSQL
	GRANT PROCESS, CONNECTION_ADMIN ON *.* TO $recflow_app_account;
	GRANT SELECT, EXECUTE ON sys.* TO $recflow_app_account;
	GRANT SELECT ON performance_schema.* TO $recflow_app_account;
EOSQL
docker_process_sql --batch --skip-column-names <<<"SHOW GRANTS FOR $recflow_app_account;" \
	| sed 's/^/RecFlow: /'
unset recflow_app_account recflow_sql_root recflow_bi_host recflow_migrations recflow_file recflow_version recflow_ungranted
