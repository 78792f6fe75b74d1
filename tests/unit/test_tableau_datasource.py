"""bi/tableau/recflow.tds against the warehouse DDL: the Tableau data source connects as bi_reader,
names only BI views, and declares their columns with the types the SQL gives them.

The column types come from sql/mysql/*.sql itself (tables, ALTERs and views, in migration order);
tests/warehouse/test_bi_reader.py compares the same file with a real server's information_schema.
"""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from collections import deque
from pathlib import Path

import pytest

from recflow.warehouse.migrate import migration_files, split_statements

ROOT = Path(__file__).resolve().parents[2]
TDS = ROOT / "bi" / "tableau" / "recflow.tds"
MYSQL_DDL = ROOT / "sql" / "mysql"
REQUIRED_VIEWS = {
    "v_user_recommendations",
    "v_daily_kpis",
    "v_funnel_daily",
    "v_popular_items",
    "v_model_performance",
    "v_data_quality",
    "v_model_tier_performance",
    "v_recommendation_rules",
    "v_recommendation_mix",
    "v_similar_items",
    "v_blocklist",
}

# SQL type -> the Tableau datatype it reads as. BOOLEAN is MySQL's TINYINT(1).
FAMILY = {
    "varchar": "string", "char": "string", "text": "string", "json": "string",
    "tinyint": "integer", "smallint": "integer", "int": "integer", "bigint": "integer", "boolean": "integer",
    "double": "real", "decimal": "real",
    "date": "date", "datetime": "datetime", "timestamp": "datetime",
}  # fmt: skip
# Tableau remote-type codes (OLE DB DBTYPE numbers) that fit each datatype.
REMOTE_TYPES = {
    "string": {129, 130},
    "integer": {2, 3, 16, 17, 18, 19, 20, 21},
    "real": {4, 5, 131},
    "date": {7, 133},
    "datetime": {135},
}
_COLUMN_REF = re.compile(r"(\w+)\.`?(\w+)`?")
_KEYWORDS = {"ON", "LEFT", "RIGHT", "INNER", "JOIN", "WHERE", "GROUP", "ORDER"}


# --- the views, as the migrations define them ----------------------------------------------


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """``text`` split at ``separator`` outside parentheses and quotes."""
    parts, current, depth, quote = [], [], 0, None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def family_of(sql_type: str) -> str:
    return FAMILY[sql_type.lower()]


def schema_from_migrations(directory: Path = MYSQL_DDL) -> tuple[dict, dict]:
    """(tables, views): name -> {column: Tableau datatype}, in migration order; a later
    CREATE OR REPLACE VIEW replaces the earlier definition."""
    tables: dict[str, dict[str, str]] = {}
    views: dict[str, dict[str, str]] = {}
    for path in migration_files(directory):
        for statement in split_statements(path.read_text(encoding="utf-8"), "mysql"):
            if match := re.match(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*)\)\s*ENGINE", statement, re.S):
                tables[match[1]] = {}
                for part in split_top_level(match[2]):
                    if re.match(r"(PRIMARY|KEY|UNIQUE|INDEX|CONSTRAINT|FOREIGN)\b", part):
                        continue
                    column = re.match(r"`?(\w+)`?\s+(\w+)", part)
                    tables[match[1]][column[1]] = family_of(column[2])
            elif match := re.match(r"ALTER TABLE (\w+)\s+(.*)", statement, re.S):
                for part in split_top_level(match[2]):
                    if re.fullmatch(r"DROP PRIMARY KEY|ADD PRIMARY KEY\s*\(.*\)", part, re.S):
                        continue  # a new key (008) changes no column
                    column = re.fullmatch(r"ADD COLUMN `?(\w+)`?\s+(\w+).*", part, re.S)
                    assert column, f"{path.name}: teach this test the ALTER clause {part!r}"
                    tables[match[1]][column[1]] = family_of(column[2])
            elif match := re.match(
                r"CREATE\s+OR\s+REPLACE\s+(?:SQL\s+SECURITY\s+\w+\s+)?VIEW\s+(\w+)\s+AS\s+(.*)",
                statement,
                re.S,
            ):
                views[match[1]] = _view_columns(match[1], match[2], tables)
    return tables, views


def _view_columns(view: str, query: str, tables: dict[str, dict[str, str]]) -> dict[str, str]:
    select, source = re.match(r"SELECT\s+(.*?)\s+FROM\s+(.*)", query, re.S).groups()
    aliases = {
        alias: table
        for table, alias in re.findall(r"(?:^|\bJOIN\s+)(\w+)\s+(?:AS\s+)?(\w+)", source)
        if alias.upper() not in _KEYWORDS
    }
    for table in aliases.values():
        assert table in tables, f"{view} reads {table}, which no migration creates"

    def column_type(expression: str) -> str | None:
        ref = _COLUMN_REF.fullmatch(expression.strip())
        return tables[aliases[ref[1]]][ref[2]] if ref else None

    columns: dict[str, str] = {}
    for item in split_top_level(select):
        named = re.fullmatch(r"(.*)\s+AS\s+`?(\w+)`?", item, re.S)
        expression, name = (named[1], named[2]) if named else (item, _COLUMN_REF.fullmatch(item)[2])
        columns[name] = column_type(expression) or _expression_type(view, expression, column_type)
    return columns


def _expression_type(view: str, expression: str, column_type) -> str:
    """The Tableau datatype of the computed columns the BI views use; anything new fails loudly."""
    text = " ".join(expression.split())
    unquoted = re.sub(r"'[^']*'", "''", text)
    if "/" in unquoted:  # MySQL division gives DECIMAL (or DOUBLE), never an integer
        return "real"
    if text.upper().startswith("CASE "):
        results = re.findall(r"\b(?:THEN|ELSE)\s+(.+?)(?=\s+WHEN\b|\s+ELSE\b|\s+END$)", text)
        strings = [
            r.startswith("'") or r.upper().startswith("CONCAT(") or column_type(r) == "string"
            for r in results
        ]
        if results and all(strings):
            return "string"
        kinds = {column_type(r) for r in results}
        if results and len(kinds) == 1 and None not in kinds:  # CASE WHEN ... THEN t.c END
            return kinds.pop()
        if results and all(re.fullmatch(r"-?\d+", r) for r in results):  # CASE ... THEN 1 ... END
            return "integer"
    if text.upper().startswith(("DAYOFWEEK(", "ROW_NUMBER(", "COUNT(")):
        return "integer"
    if text.upper().startswith(("DATE_FORMAT(", "CONCAT(", "ELT(")):
        return "string"
    if coalesced := re.fullmatch(r"COALESCE\((\w+\.\w+), NULLIF\((\w+\.\w+), ''\)\)", text):
        if column_type(coalesced[1]) == column_type(coalesced[2]) == "string":
            return "string"
    if difference := re.fullmatch(r"(\w+\.\w+)\s*-\s*(\w+\.\w+)", text):
        if column_type(difference[1]) == column_type(difference[2]) == "integer":
            return "integer"
    raise AssertionError(f"{view}: teach this test the type of {text!r}")


# --- the data source -----------------------------------------------------------------------


def logical(tag: str) -> str:
    """Tableau's feature-flagged names (_.fcp.Flag.true...relation) without the flag."""
    return tag.rsplit("...", 1)[-1]


def elements(root: ET.Element, name: str) -> list[ET.Element]:
    return [element for element in root.iter() if logical(element.tag) == name]


def child_text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if logical(child.tag) == name:
            return child.text
    return None


def unbracket(name: str) -> str:
    assert name.startswith("[") and name.endswith("]"), name
    return name[1:-1]


def tds_problems(root: ET.Element, views: dict[str, dict[str, str]]) -> list[str]:
    """Everything in the data source that does not match the views; [] when it all does."""
    problems: list[str] = []
    collection = [r for r in elements(root, "relation") if r.get("type") == "collection"]
    if len(collection) != 1:
        return [f"expected one relation type='collection', found {len(collection)}"]
    in_model = [r.get("name") for r in collection[0] if logical(r.tag) == "relation"]
    for relation in elements(root, "relation"):
        if relation.get("type") == "collection":
            continue
        name, table = relation.get("name"), relation.get("table", "")
        if relation.get("type") != "table" or table != f"[{name}]" or name not in views:
            problems.append(f"relation {name!r} ({table}) is not a BI view of the migrations")

    objects = {o.get("id"): o for o in elements(root, "object")}
    view_of_object = {}
    for object_id, obj in objects.items():
        tables = [r.get("name") for r in elements(obj, "relation")]
        if len(tables) != 1 or tables[0] not in in_model:
            problems.append(
                f"logical table {object_id} should hold exactly one view of the collection: {tables}"
            )
            continue
        view_of_object[object_id] = tables[0]
    if sorted(view_of_object.values()) != sorted(in_model):
        problems.append(f"logical tables {sorted(view_of_object.values())} != collection {sorted(in_model)}")
    object_of_view = {view: object_id for object_id, view in view_of_object.items()}

    records: dict[str, tuple[str, str, str]] = {}  # local name -> (view, column, datatype)
    declared: dict[str, set[str]] = {view: set() for view in in_model}
    for record in elements(root, "metadata-record"):
        if record.get("class") != "column":
            continue
        view = unbracket(child_text(record, "parent-name"))
        column, local_name = child_text(record, "remote-name"), child_text(record, "local-name")
        local_type, remote_type = child_text(record, "local-type"), int(child_text(record, "remote-type"))
        if view not in declared:
            problems.append(f"{local_name}: parent {view} is not in the collection")
            continue
        if column in declared[view]:
            problems.append(f"{view}.{column} is declared twice")
        declared[view].add(column)
        if local_name in records:
            problems.append(f"local name {local_name} is used twice")
        records[local_name] = (view, column, local_type)
        expected = views.get(view, {}).get(column)
        if expected is None:
            problems.append(f"{view}.{column} is not a column of the view")
        elif local_type != expected:
            problems.append(f"{view}.{column} is {expected} in SQL but {local_type} in the .tds")
        elif remote_type not in REMOTE_TYPES[expected]:
            problems.append(f"{view}.{column}: remote-type {remote_type} does not fit {expected}")
        if child_text(record, "object-id") != f"[{object_of_view.get(view)}]":
            problems.append(f"{view}.{column} belongs to object {child_text(record, 'object-id')}")
    for view in in_model:
        missing = set(views.get(view, {})) - declared[view]
        if missing:
            problems.append(f"{view}: columns {sorted(missing)} of the view are not in the .tds")

    maps = {m.get("key"): m.get("value") for m in elements(root, "map")}
    for local_name, (view, column, _) in records.items():
        if maps.get(local_name) != f"[{view}].[{column}]":
            problems.append(f"cols map of {local_name} is {maps.get(local_name)}, not [{view}].[{column}]")
    for key in set(maps) - set(records):
        problems.append(f"cols map key {key} names no column")

    for column in elements(root, "column"):
        name = column.get("name", "")
        if name.startswith("[__tableau_internal_object_id__]."):
            if unbracket(name.split(".", 1)[1]) not in objects:
                problems.append(f"{name} names no logical table")
        elif name in records:
            if column.get("datatype") != records[name][2]:
                problems.append(f"column {name} is declared {column.get('datatype')}, not {records[name][2]}")
        elif column.get("ordinal") is None:  # <columns><column ordinal=...> would be a text file's
            problems.append(f"column {name} is not a field of any view")

    relationships = elements(root, "relationship")
    edges: dict[str, set[str]] = {object_id: set() for object_id in view_of_object}
    for relationship in relationships:
        ends = [
            child.get("object-id")
            for child in relationship
            if logical(child.tag) in ("first-end-point", "second-end-point")
        ]
        if len(ends) != 2 or not all(end in view_of_object for end in ends):
            problems.append(f"relationship between unknown logical tables {ends}")
            continue
        pairs = [e for e in elements(relationship, "expression") if e.get("op") == "="]
        if not pairs:
            problems.append(f"relationship {ends} relates no fields")
        for pair in pairs:
            sides = [side.get("op") for side in pair]
            fields = [records.get(side) for side in sides]
            if len(fields) != 2 or None in fields:
                problems.append(f"relationship {ends}: {sides} are not fields of the views")
                continue
            if {fields[0][0], fields[1][0]} != {view_of_object[end] for end in ends}:
                problems.append(f"relationship {ends}: {sides} do not come one from each end")
            if fields[0][2] != fields[1][2]:
                problems.append(f"relationship {ends}: {sides} have different types")
        edges[ends[0]].add(ends[1])
        edges[ends[1]].add(ends[0])
    # Tableau's logical layer is a tree: every table related, no cycles.
    if view_of_object:
        seen, todo = set(), deque([next(iter(view_of_object))])
        while todo:
            node = todo.popleft()
            if node not in seen:
                seen.add(node)
                todo.extend(edges[node] - seen)
        if seen != set(view_of_object) or len(relationships) != len(view_of_object) - 1:
            problems.append(
                f"relationships do not form a tree over the logical tables: {len(relationships)} "
                f"relationships, {len(seen)} of {len(view_of_object)} tables reachable"
            )
    return problems


@pytest.fixture(scope="module")
def views() -> dict[str, dict[str, str]]:
    return schema_from_migrations()[1]


@pytest.fixture(scope="module")
def tds() -> ET.Element:
    return ET.parse(TDS).getroot()


# --- tests -----------------------------------------------------------------------------------


def test_migrations_define_the_views_with_their_types(views):
    assert REQUIRED_VIEWS <= set(views)
    assert views["v_daily_kpis"]["activity_date"] == "date"
    assert views["v_daily_kpis"]["watch_hours"] == "real"  # watch_seconds / 3600
    assert views["v_daily_kpis"]["returning_users"] == "integer"
    assert views["v_user_recommendations"]["recommendation_rank"] == "integer"
    assert views["v_user_recommendations"]["title"] == "string"  # from items, through the join
    assert views["v_model_performance"]["metric_label"] == "string"
    assert views["v_activity_by_hour"]["weekday_number"] == "integer"
    assert views["v_user_profiles"]["first_seen"] == "datetime"
    assert views["v_user_recommendations"]["user_tier"] == "string"  # from the 007 ALTER
    assert views["v_model_performance"]["user_tier"] == "string"  # from the 008 ALTER
    assert views["v_model_tier_performance"]["tier_order"] == "integer"
    assert views["v_recommendation_mix"]["n_users"] == "integer"  # COUNT(DISTINCT ...)
    assert views["v_recommendation_mix"]["share_of_recommendations"] == "real"
    assert views["v_recommendation_rules"]["enabled"] == "integer"  # BOOLEAN
    assert views["v_blocklist"]["added_at"] == "datetime"
    assert views["v_similar_items"]["similar_title"] == "string"
    # The views only ever gain columns: 006's columns come first, in their order.
    assert list(views["v_user_recommendations"])[-2:] == ["run_date", "user_tier"]
    assert list(views["v_model_performance"])[-2:] == ["run_status", "user_tier"]


def test_the_datasource_is_a_live_mysql_connection_as_bi_reader(tds):
    assert logical(tds.tag) == "datasource"
    connections = [c for c in elements(tds, "connection") if c.get("class") != "federated"]
    assert [c.get("class") for c in connections] == ["mysql"]
    (mysql,) = connections
    assert mysql.get("username") == "bi_reader"
    assert mysql.get("server") and mysql.get("port") == "3306" and mysql.get("dbname")
    # No password, not even an empty one: Tableau asks for it when the file is opened.
    assert [(e.tag, key) for e in tds.iter() for key in e.attrib if "password" in key.lower()] == []
    assert "password=" not in TDS.read_text(encoding="utf-8").lower()
    # Live: no extract to go stale or to carry the data around.
    assert elements(tds, "extract") == []
    (named,) = elements(tds, "named-connection")
    assert list(named) == [mysql]
    tables = [r for r in elements(tds, "relation") if r.get("type") == "table"]
    assert tables and {r.get("connection") for r in tables} == {named.get("name")}


def test_every_relation_is_a_view_and_the_required_views_are_there(tds, views):
    tables = {r.get("name") for r in elements(tds, "relation") if r.get("type") == "table"}
    assert tables <= set(views)
    assert REQUIRED_VIEWS - tables == set()


def test_fields_relationships_and_logical_tables_match_the_views(tds, views):
    assert tds_problems(tds, views) == []


def _rename_column(root):
    record = next(r for r in elements(root, "metadata-record") if child_text(r, "remote-name") == "revenue")
    next(c for c in record if logical(c.tag) == "remote-name").text = "revenu"


def _retype_date(root):
    record = next(
        r for r in elements(root, "metadata-record") if child_text(r, "remote-name") == "activity_date"
    )
    next(c for c in record if logical(c.tag) == "local-type").text = "string"


def _point_at_a_table(root):
    next(r for r in elements(root, "relation") if r.get("type") == "table").set("table", "[recommendations]")


def _drop_a_relationship(root):
    parent = next(p for p in root.iter() if any(logical(c.tag) == "relationship" for c in p))
    parent.remove(next(c for c in parent if logical(c.tag) == "relationship"))


def _drop_a_field(root):
    parent = next(p for p in root.iter() if any(logical(c.tag) == "metadata-record" for c in p))
    parent.remove(next(c for c in parent if logical(c.tag) == "metadata-record"))


def _relate_a_date_with_a_string(root):
    side = next(e for e in elements(root, "expression") if e.get("op") == "[activity_date]")
    side.set("op", "[dataset]")


@pytest.mark.parametrize(
    "break_it",
    [
        _rename_column,
        _retype_date,
        _point_at_a_table,
        _drop_a_relationship,
        _drop_a_field,
        _relate_a_date_with_a_string,
    ],
)
def test_the_check_catches_a_broken_datasource(tds, views, break_it):
    broken = copy.deepcopy(tds)
    break_it(broken)
    assert tds_problems(broken, views) != []


def test_a_view_column_missing_from_the_sql_is_reported(tds, views):
    fewer = copy.deepcopy(views)
    del fewer["v_funnel_daily"]["conversion_from_first"]
    assert any("conversion_from_first" in p for p in tds_problems(tds, fewer))
