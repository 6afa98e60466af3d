"""SHOW DATABASES, SCHEMAS, TABLES and VARIABLES, answered as Snowflake answers them.

Each lists only what the session may see: the objects an active role (primary
or secondary) holds any privilege on, ownership included, and everything to
the administrative roles (MANAGE GRANTS "implicitly allows its holder to see
every object in the account"). The columns are the documentation's, in its
order; the rows come from the engine's catalog, their owners, comments and
creation times from what the gateway recorded when each object was created.
An explicit `IN DATABASE d` or `IN SCHEMA s` that names what the session cannot
see fails as Snowflake fails: "Schema 'D.S' does not exist or not authorized."
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from widf_local.gateway.accounts import Account, Rows, Session
from widf_local.gateway.errors import does_not_exist, unsupported
from widf_local.gateway.grants import Securable
from widf_local.gateway.names import NAME, like, parts, unquote_literal

_N = NAME.pattern
_STRING = r"'(?:[^']|'')*'"
_FILTERS = rf"(?:\s+STARTS\s+WITH\s+(?P<starts>{_STRING}))?(?:\s+LIMIT\s+(?P<limit>\d+)(?:\s+FROM\s+(?P<from>{_STRING}))?)?"
_LIKE = rf"(?:\s+LIKE\s+(?P<like>{_STRING}))?"
_TERSE = r"(?P<terse>TERSE\s+)?"
INFORMATION_SCHEMA = "INFORMATION_SCHEMA"
INFORMATION_SCHEMA_COMMENT = "Views describing the contents of schemas in this database"

# The output's columns in the documentation's order, packed as the pages list them (hence fmt: skip).
DATABASES_COLUMNS = [  # SHOW DATABASES, Examples
    "created_on", "name", "is_default", "is_current", "origin", "owner", "comment", "options", "retention_time",
    "kind", "owner_role_type", "object_visibility", "data_quality_monitoring_settings",
]  # fmt: skip
SCHEMAS_COLUMNS = [  # SHOW SCHEMAS, Examples, and its usage note: "an is_nested column for all schemas"
    "created_on", "name", "is_default", "is_current", "database_name", "owner", "comment", "options",
    "retention_time", "owner_role_type", "object_visibility", "is_nested",
]  # fmt: skip
TABLES_COLUMNS = [  # SHOW TABLES, Output (is_dynamic: not in the page's table, but in Snowflake's answer)
    "created_on", "name", "database_name", "schema_name", "kind", "comment", "cluster_by", "rows", "bytes", "owner",
    "retention_time", "automatic_clustering", "change_tracking", "search_optimization",
    "search_optimization_progress", "search_optimization_bytes", "is_external", "enable_schema_evolution",
    "owner_role_type", "is_event", "is_hybrid", "is_iceberg", "is_dynamic", "is_immutable",
]  # fmt: skip
TERSE_COLUMNS = ["created_on", "name", "kind", "database_name", "schema_name"]
VARIABLES_COLUMNS = ["session_id", "created_on", "updated_on", "name", "value", "type", "comment"]


class Lister:
    """One SHOW statement: the session's view of the account."""

    def __init__(
        self,
        account: Account,
        session: Session,
        m: re.Match,
        context: tuple[str | None, str | None],
        dynamic_tables: Callable[[], set[str]],
    ):
        self.account, self.session, self.m = account, session, m
        self.database, self.schema = context
        self.dynamic_tables = dynamic_tables
        self.roles = account.access(session).active

    def visible(self, on: Securable) -> bool:
        return self.account.privileges.visible(self.roles, on)

    def container(self, kind: str, name: str) -> Securable:
        """An explicitly named scope: it must exist and be visible."""
        on = Securable(kind, name)
        if not (self.account.catalog.exists(on) and self.visible(on)):
            raise does_not_exist(name, kind.title())
        return on

    def created_on(self, on: Securable) -> datetime:
        return self.account.privileges.created_on.get(on, self.account.created_on)

    def owner(self, on: Securable) -> tuple[str, str]:
        """The owner, and its owner_role_type."""
        owner = self.account.privileges.owner_of(on) or ""
        return owner, "ROLE" if owner else ""

    def comment(self, on: Securable) -> str:
        return self.account.privileges.comments.get(on, "")

    def filtered(self, rows: list[dict[str, Any]], columns: list[str]) -> Rows:
        """LIKE (case-insensitive), STARTS WITH (case-sensitive), LIMIT n [FROM 'name']."""
        pattern = like(self.m["like"])
        starts = unquote_literal(self.m["starts"]) if self.m["starts"] else ""
        kept = [r for r in rows if (pattern is None or pattern.fullmatch(r["name"])) and r["name"].startswith(starts)]
        if self.m["from"]:
            after = unquote_literal(self.m["from"])
            kept = kept[next((i for i, r in enumerate(kept) if r["name"] >= after), len(kept)) :]
        if self.m["limit"]:
            kept = kept[: int(self.m["limit"])]
        return columns, [tuple(r.get(c) for c in columns) for r in kept]


def show_databases(lister: Lister) -> Rows:
    default = (lister.session.user.default_namespace or "").split(".")[0]
    rows = []
    for name in lister.account.catalog.databases():
        on = Securable("DATABASE", name)
        if not lister.visible(on):
            continue
        owner, owner_role_type = lister.owner(on)
        rows.append(
            {
                "created_on": lister.created_on(on),
                "name": name,
                "is_default": "Y" if name == default else "N",
                "is_current": "Y" if name == lister.database else "N",
                "origin": "",
                "owner": owner,
                "comment": lister.comment(on),
                "options": "",
                "retention_time": "1",
                "kind": "STANDARD",
                "owner_role_type": owner_role_type,
            }
        )
    return lister.filtered(rows, TERSE_COLUMNS if lister.m["terse"] else DATABASES_COLUMNS)


def show_schemas(lister: Lister) -> Rows:
    m = lister.m
    named = m["database"] or m["bare"]
    name = ".".join(parts(named)) if named else lister.database
    if m["account"] or not name:  # no database in use: the account
        databases = lister.account.catalog.databases()
    else:
        databases = [lister.container("DATABASE", name).name]
    default = lister.session.user.default_namespace or ""
    rows = []
    for database in databases:
        database_on = Securable("DATABASE", database)
        schemas = [(s, Securable("SCHEMA", f"{database}.{s}")) for s in lister.account.catalog.schemas(database)]
        entries: list[tuple[str, Securable | None]] = [(INFORMATION_SCHEMA, None)] if lister.visible(database_on) else []
        entries += [(s, on) for s, on in schemas if lister.visible(on)]
        for schema, on in sorted(entries, key=lambda e: e[0]):
            owner, owner_role_type = lister.owner(on) if on else ("", "")
            rows.append(
                {
                    "created_on": lister.created_on(on or database_on),
                    "name": schema,
                    "is_default": "Y" if default == f"{database}.{schema}" else "N",
                    "is_current": "Y" if (database, schema) == (lister.database, lister.schema) else "N",
                    "database_name": database,
                    "owner": owner,
                    "comment": lister.comment(on) if on else INFORMATION_SCHEMA_COMMENT,
                    "options": "",
                    "retention_time": "1",
                    "owner_role_type": owner_role_type,
                    "is_nested": "N",
                }
            )
    return lister.filtered(rows, TERSE_COLUMNS if m["terse"] else SCHEMAS_COLUMNS)


def _tables_scope(lister: Lister) -> tuple[str | None, str | None]:
    """(database, schema) to list, None for all: the scope SHOW TABLES's IN clause names, or its default (the
    current database, else the account). A scope that cannot be resolved (IN SCHEMA with no database in use)
    has no effect."""
    m = lister.m
    if m["account"]:
        return None, None
    if m["in_database"] is not None:
        name = ".".join(parts(m["database"])) if m["database"] else lister.database
        return (lister.container("DATABASE", name).name, None) if name else (None, None)
    if m["in_schema"] is not None or m["schema"] or m["bare"]:
        named = m["schema"] or m["bare"]
        given = parts(named) if named else [p for p in (lister.schema,) if p]
        full = given if len(given) == 2 else [lister.database, *given] if lister.database and given else []
        if not full:
            return None, None
        on = lister.container("SCHEMA", ".".join(p for p in full if p))
        database, schema = on.name.split(".", 1)
        return database, schema
    return lister.database, None


def show_tables(lister: Lister) -> Rows:
    database, schema = _tables_scope(lister)
    catalog, terse = lister.account.catalog, bool(lister.m["terse"])
    dynamic = lister.dynamic_tables()
    rows = []
    for key in catalog.tables(database, schema):
        on = Securable("TABLE", key)
        if not lister.visible(on):
            continue
        db, sch, name = key.split(".", 2)
        owner, owner_role_type = lister.owner(on)
        row: dict[str, Any] = {
            "created_on": lister.created_on(on),
            "name": name,
            "database_name": db,
            "schema_name": sch,
            "kind": "TABLE",
        }
        if not terse:
            row |= {
                "comment": lister.comment(on),
                "cluster_by": "",
                "rows": catalog.count_rows(key),
                "bytes": 0,
                "owner": owner,
                "retention_time": "1",
                "automatic_clustering": "OFF",
                "change_tracking": "OFF",
                "search_optimization": "OFF",
                "is_external": "N",
                "enable_schema_evolution": "N",
                "owner_role_type": owner_role_type,
                "is_event": "N",
                "is_hybrid": "N",
                "is_iceberg": "N",
                "is_dynamic": "Y" if key in dynamic else "N",
                "is_immutable": "N",
            }
        rows.append(row)
    return lister.filtered(rows, TERSE_COLUMNS if terse else TABLES_COLUMNS)


Handler = Callable[[Lister], Rows]
STATEMENTS: list[tuple[str, Handler]] = [
    (rf"SHOW\s+{_TERSE}DATABASES{_LIKE}{_FILTERS}", show_databases),
    (
        rf"SHOW\s+{_TERSE}SCHEMAS{_LIKE}(?:\s+IN\s+(?:(?P<account>ACCOUNT)|(?P<in_database>DATABASE)(?:\s+(?P<database>{_N}))?"
        rf"|(?P<bare>{_N})))?{_FILTERS}",
        show_schemas,
    ),
    (
        rf"SHOW\s+{_TERSE}TABLES{_LIKE}(?:\s+IN\s+(?:(?P<account>ACCOUNT)|(?P<in_database>DATABASE)(?:\s+(?P<database>{_N}))?"
        rf"|(?P<in_schema>SCHEMA)(?:\s+(?P<schema>{_N}))?|(?P<bare>{_N})))?{_FILTERS}",
        show_tables,
    ),
]
COMPILED = [(re.compile(rf"^\s*{pattern}\s*;?\s*$", re.I | re.S), handler) for pattern, handler in STATEMENTS]
# Every other form (HISTORY, WITH PRIVILEGES, IN APPLICATION ...) fails by name rather than reach fakesnow.
SHOW_STATEMENT = re.compile(r"^\s*SHOW\s+(?:TERSE\s+)?(?:DATABASES|SCHEMAS|TABLES)\b", re.I)


def execute_show_statement(
    account: Account,
    session: Session,
    sql: str,
    database: str | None,
    schema: str | None,
    dynamic_tables: Callable[[], set[str]] = set,
) -> Rows | None:
    """Rows for SHOW DATABASES / SCHEMAS / TABLES; None for any other statement."""
    for pattern, handler in COMPILED:
        if m := pattern.match(sql):
            with account.lock:
                return handler(Lister(account, session, m, (database, schema), dynamic_tables))
    if SHOW_STATEMENT.match(sql):
        raise unsupported(sql)
    return None


def variable_type(value: Any) -> str:
    """SHOW VARIABLES's type of a value (the page shows `fixed` for a number)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal):
        return "fixed"
    if isinstance(value, float):
        return "real"
    if isinstance(value, datetime):
        return "timestamp_ltz"
    if isinstance(value, date):
        return "date"
    return "text"


def show_variables(session: Session, like_pattern: str | None) -> Rows:
    pattern = like(like_pattern)
    rows = []
    for name in sorted(session.variables):
        if pattern and not pattern.fullmatch(name):
            continue
        value = session.variables[name]
        created, updated = session.variable_times.get(name, (None, None))
        text = None if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        rows.append((session.session_id, created, updated, name, text, variable_type(value), ""))
    return VARIABLES_COLUMNS, rows
