"""What the gateway answers itself, and what it checks before the engine runs a statement.

Order of work for one statement: session variables are substituted; `SET`,
`UNSET`, `SHOW VARIABLES`, `SHOW DATABASES | SCHEMAS | TABLES` (`show`),
account statements (users, roles, grants, warehouses), dynamic-table
statements, `DROP DATABASE` and a `CREATE ... IF NOT EXISTS` of what exists
are answered here; anything else is checked
against the session's privileges (`grants.needs` on its syntax tree) and goes
to fakesnow, with a little bookkeeping once it has succeeded: who owns what
was created, the future grants a new table receives, the grants that go with
a dropped object.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlglot import exp

from widf_local.gateway import dynamic_tables as dt
from widf_local.gateway import grants, show, variables
from widf_local.gateway.accounts import Account, Rows, Session, execute_account_statement, status, success
from widf_local.gateway.catalog import EngineCatalog
from widf_local.gateway.dynamic_tables import DynamicTables
from widf_local.gateway.errors import SnowflakeError, already_exists, does_not_exist, insufficient_privileges, unsupported
from widf_local.gateway.grants import ADMIN_ROLES, Securable, relation, table_key
from widf_local.gateway.names import qualified, written

Bookkeeping = Callable[[], None]
_SHOW_VARIABLES = re.compile(r"^\s*SHOW\s+VARIABLES(?:\s+LIKE\s+(?P<like>'(?:[^']|'')*'))?\s*;?\s*$", re.I)
# INFORMATION_SCHEMA is read by name (`db.INFORMATION_SCHEMA.TABLES`); fakesnow cannot make it the current schema.
_USE_INFORMATION_SCHEMA = re.compile(r"^\s*USE\s+(?:SCHEMA\s+)?(?:\S+\.)?\"?INFORMATION_SCHEMA\"?\s*;?\s*$", re.I)


class LocalStatements:
    def __init__(self, account: Account, catalog: EngineCatalog, dynamic_tables: DynamicTables):
        self.account = account
        self.catalog = catalog
        self.dynamic_tables = dynamic_tables

    # -- answered here ------------------------------------------------------------

    def answer(self, session: Session, fake: Any, sql: str) -> Rows | None:
        """Rows for a statement the gateway answers itself; None when it is for the engine."""
        if (names := variables.unset_names(sql)) is not None:
            for name in names:
                session.variables.pop(name, None)
                session.variable_times.pop(name, None)
            return success()
        if (assignments := variables.assignments(sql)) is not None:
            return self.set_variables(session, fake, assignments)
        if m := _SHOW_VARIABLES.match(sql):
            return show.show_variables(session, m["like"])
        if _USE_INFORMATION_SCHEMA.match(sql):
            raise unsupported(sql)
        statement = grants.parse(sql)
        if (
            rows := show.execute_show_statement(self.account, session, sql, fake.database, fake.schema, self.dynamic_tables.names)
        ) is not None:
            return rows
        if (rows := execute_account_statement(self.account, session, sql, fake.database, fake.schema)) is not None:
            return rows
        if dt.is_dynamic_table_statement(sql):
            return self.dynamic_table_statement(session, fake, sql, statement)
        if isinstance(statement, exp.Drop) and str(statement.args.get("kind")).upper() == "DATABASE":
            return self.drop_database(session, fake, statement)
        if isinstance(statement, exp.Create) and statement.args.get("exists") and not statement.args.get("replace"):
            return self.create_if_not_exists(session, fake, statement)
        return None

    def create_if_not_exists(self, session: Session, fake: Any, statement: exp.Create) -> Rows | None:
        """CREATE ... IF NOT EXISTS of what exists: Snowflake still asks for the CREATE privilege (with the primary
        role), then answers that nothing was done; None when the object is new (the engine creates it)."""
        on = self.created_object(statement, fake.database, fake.schema)
        if on is None or not self.catalog.exists(on):
            return None
        grants.authorize(self.account.privileges, self.account.access(session), grants.needs(statement, fake.database, fake.schema))
        return status(f"{on.short_name} already exists, statement succeeded.")

    def set_variables(self, session: Session, fake: Any, assignments: list[tuple[str, str]]) -> Rows:
        """Evaluate every expression once, all before any variable is set (so `SET (min, max) = (50, 2 * $min)`
        uses the old $min), as Snowflake does, and keep the values."""
        select = "SELECT " + ", ".join(expression for _, expression in assignments)
        cursor = fake.cursor()
        cursor.execute(with_session_context(select, session, self.account))
        values = cursor.fetchone()
        checked = [(name, variables.checked_value(name, value)) for (name, _), value in zip(assignments, values, strict=True)]
        moment = datetime.now(UTC)
        for name, value in checked:
            session.variables[name] = value
            session.variable_times[name] = (session.variable_times.get(name, (moment, moment))[0], moment)
        return success()

    def dynamic_table_statement(self, session: Session, fake: Any, sql: str, statement: exp.Expr | None) -> Rows:
        access = self.account.access(session)
        roles = access.active
        database, schema = fake.database, fake.schema
        if isinstance(statement, exp.Create):
            grants.authorize(self.account.privileges, access, grants.needs(statement, database, schema))
            self.require_warehouse(roles, statement)
            message = self.dynamic_tables.create(statement, sql, database=database, schema=schema, role=session.role)
            if message.startswith("Dynamic table"):
                if (name := table_key(statement.this, database, schema)) is not None:
                    self.account.privileges.created(relation(name), session.role)
            return status(message)
        if m := dt.SHOW.match(sql):
            privileges = self.account.privileges
            admin = bool(roles & ADMIN_ROLES)
            return self.dynamic_tables.show(m, database, schema, lambda name: admin or privileges.sees(roles, relation(name)))
        if m := dt.ALTER.match(sql):
            name = self.dynamic_tables.resolve(m["name"], database, schema)
            needed = ("OPERATE", "OWNERSHIP")
            grants.authorize(self.account.privileges, access, [grants.Need(needed, relation(name))])
            return status(self.dynamic_tables.alter(m, database, schema))
        if m := dt.DROP.match(sql):
            name = qualified(m["name"], database, schema)
            if name in self.dynamic_tables.names():
                grants.authorize(self.account.privileges, access, [grants.Need(("OWNERSHIP",), relation(name))])
            message = self.dynamic_tables.drop(m, database, schema)
            self.account.privileges.forget(relation(name))
            return status(message)
        raise unsupported(sql)

    def require_warehouse(self, roles: frozenset[str], create: exp.Create) -> None:
        properties = create.args.get("properties")
        found = (
            next((p for p in properties.expressions if isinstance(p, exp.Property) and p.name.upper() == "WAREHOUSE"), None)
            if properties
            else None
        )
        if found is None:
            return
        name = found.args["value"].name.upper()
        on = Securable("WAREHOUSE", name)
        if name not in self.account.warehouses or not (roles & ADMIN_ROLES or self.account.privileges.has(roles, "USAGE", on)):
            raise does_not_exist(name)

    def drop_database(self, session: Session, fake: Any, statement: exp.Drop) -> Rows:
        table = statement.args["tables"][0]
        name = table.name if table.this.quoted else table.name.upper()
        on = Securable("DATABASE", name)
        if not self.catalog.exists(on):
            if statement.args.get("exists"):
                return status(f"Drop statement executed successfully ({name} already dropped).")
            raise does_not_exist(name)
        grants.authorize(self.account.privileges, self.account.access(session), [grants.Need(("OWNERSHIP",), on)])
        self.dynamic_tables.forget_within(name)
        if fake.database == name:
            fake._duck_conn.execute("SET schema = 'memory.main'")  # noqa: SLF001 - DuckDB refuses to detach a session's default
        self.catalog.drop_database(name)
        self.account.privileges.forget(on)
        if fake.database == name:  # as fakesnow does for its own DROP: the session has no current database now
            fake.database, fake._schema, fake.database_set, fake.schema_set = None, None, False, False  # noqa: SLF001 - fakesnow's current schema
            fake._duck_conn.execute("SET schema = 'memory.main'")  # noqa: SLF001 - DuckDB's own default, not the detached one
        return status(f"{name} successfully dropped.")

    # -- checked, then run by the engine ---------------------------------------------

    def check(self, session: Session, fake: Any, sql: str) -> Bookkeeping | None:
        """Refuse what the session's role may not do; return what to record once the engine has done it."""
        statement = grants.parse(sql)
        if statement is None:
            return None
        access = self.account.access(session)
        database, schema = fake.database, fake.schema
        if isinstance(statement, exp.Command) and (word := statement.name.upper()) in ("CREATE", "DROP", "ALTER", "UNDROP"):
            # DDL sqlglot cannot parse (stages, sequences, ...): only the administrative roles run it (a CREATE
            # with the primary role, as every CREATE).
            if not (access.primary if word == "CREATE" else access.active) & ADMIN_ROLES:
                target = f"{database}.{schema}" if database and schema else ""
                raise insufficient_privileges("schema", target.rsplit(".", 1)[-1] or "PUBLIC")
        if isinstance(statement, exp.Drop) and statement.args.get("exists") and not self.any_dropped_exists(statement, database, schema):
            return None  # DROP ... IF EXISTS of nothing: nothing to authorize, and the engine does nothing
        grants.authorize(self.account.privileges, access, grants.needs(statement, database, schema))
        self.refuse_dml_on_dynamic_tables(statement, database, schema)
        if isinstance(statement, exp.Create):
            return self.before_create(session, fake, statement)
        if isinstance(statement, exp.Drop):
            return self.before_drop(statement, database, schema)
        if isinstance(statement, exp.Alter):
            return self.before_rename(access, statement, database, schema)
        return None

    def before_rename(self, access: grants.Access, statement: exp.Alter, database: str | None, schema: str | None) -> Bookkeeping | None:
        """ALTER TABLE ... RENAME TO: the owner renames (checked with ALTER's needs), with CREATE TABLE on the schema
        it lands in (ALTER TABLE's access control); the table keeps its owner and grants under the new name."""
        rename = next((a for a in statement.args.get("actions") or [] if isinstance(a, exp.AlterRename)), None)
        if rename is None or str(statement.args.get("kind") or "").upper() != "TABLE":
            return None
        old, new = table_key(statement.this, database, schema), table_key(rename.this, database, schema)
        if old is None or new is None:
            return None
        db, sch, _ = new.split(".")
        grants.authorize(self.account.privileges, access, [grants.Need(("CREATE TABLE",), Securable("SCHEMA", f"{db}.{sch}"))])
        if self.catalog.exists(relation(new)):
            raise already_exists(new)
        return lambda: self.account.privileges.renamed(relation(old), relation(new))

    def any_dropped_exists(self, statement: exp.Drop, database: str | None, schema: str | None) -> bool:
        kind = str(statement.args.get("kind") or "").upper()
        if kind not in grants.RELATION_KINDS:
            return True  # databases and schemas are answered elsewhere; anything else is checked as before
        keys = [table_key(t, database, schema) for t in statement.args.get("tables") or []]
        return any(key is None or self.catalog.exists(relation(key)) for key in keys)

    def refuse_dml_on_dynamic_tables(self, statement: exp.Expr, database: str | None, schema: str | None) -> None:
        if not isinstance(statement, exp.Insert | exp.Update | exp.Delete | exp.Merge | exp.TruncateTable):
            return
        targets = statement.expressions if isinstance(statement, exp.TruncateTable) else [statement.this]
        for target in targets:
            table = target.this if isinstance(target, exp.Schema) else target
            if isinstance(table, exp.Table) and (key := table_key(table, database, schema)) in self.dynamic_tables.names():
                raise SnowflakeError(
                    2, f"SQL compilation error:\nDynamic table '{key}' cannot be changed by DML: it changes only by its refreshes."
                )

    def created_object(self, statement: exp.Create, database: str | None, schema: str | None) -> Securable | None:
        kind = str(statement.args.get("kind") or "").upper()
        target = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
        if not isinstance(target, exp.Table):
            return None
        if kind == "DATABASE":
            return Securable("DATABASE", grants.identifier_name(target.this) or "")
        if kind == "SCHEMA":
            return Securable("SCHEMA", key) if (key := grants.schema_key(target, database)) else None
        if kind in grants.RELATION_KINDS and (key := table_key(target, database, schema)):
            return relation(key)
        return None

    def before_create(self, session: Session, fake: Any, statement: exp.Create) -> Bookkeeping | None:
        on = self.created_object(statement, fake.database, fake.schema)
        if on is None:
            return None
        existed = self.catalog.exists(on)
        if existed and on.kind == "DATABASE" and not statement.args.get("exists") and not statement.args.get("replace"):
            raise already_exists(on.name)  # fakesnow would answer with DuckDB's ATTACH error
        if existed and not statement.args.get("replace"):
            return None
        role = session.role
        properties = statement.args.get("properties")
        comment = properties.find(exp.SchemaCommentProperty) if properties else None

        def record() -> None:
            self.account.privileges.created(on, role, comment=comment.name if comment else None)
            if on.kind == "DATABASE":
                # Snowflake creates PUBLIC and INFORMATION_SCHEMA in every new database (fakesnow makes the
                # second); PUBLIC belongs to the role that created the database, and is the current schema.
                public = f"{written(on.name)}.PUBLIC"
                self.catalog.run([f"CREATE SCHEMA IF NOT EXISTS {public}"])
                self.account.privileges.created(Securable("SCHEMA", f"{on.name}.PUBLIC"), role)
                fake.cursor().execute(f"USE SCHEMA {public}")

        return record

    def before_drop(self, statement: exp.Drop, database: str | None, schema: str | None) -> Bookkeeping | None:
        kind = str(statement.args.get("kind") or "").upper()
        dropped = []
        for table in statement.args.get("tables") or []:
            if kind == "SCHEMA" and (key := grants.schema_key(table, database)):
                on = Securable("SCHEMA", key)
            elif kind in grants.RELATION_KINDS and (key := table_key(table, database, schema)):
                on = relation(key)
            else:
                continue
            self.dynamic_tables.forget_within(on.name)
            dropped.append(on)
        if not dropped:
            return None

        def forget_grants() -> None:  # a dropped object takes its grants with it
            for on in dropped:
                self.account.privileges.forget(on)

        return forget_grants


_SESSION_FUNCTIONS = {"CURRENT_USER", "CURRENT_ROLE", "CURRENT_WAREHOUSE", "CURRENT_SECONDARY_ROLES"}


@dataclass(frozen=True)
class SessionValues:
    """What CURRENT_USER(), CURRENT_ROLE(), CURRENT_WAREHOUSE() and CURRENT_SECONDARY_ROLES() answer in a session;
    `secondary_roles` is None when the statement does not ask (it takes the account to work out)."""

    user: str
    role: str | None
    warehouse: str | None
    secondary_roles: str | None = None

    def of(self, node: exp.Expr) -> str | None | bool:
        """The answer for this node; False for other nodes."""
        if isinstance(node, exp.CurrentUser):
            return self.user
        if isinstance(node, exp.CurrentRole):
            return self.role
        if isinstance(node, exp.Anonymous) and node.name.upper() == "CURRENT_WAREHOUSE" or type(node).__name__ == "CurrentWarehouse":
            return self.warehouse
        if self.secondary_roles is not None and type(node).__name__ == "CurrentSecondaryRoles":
            return self.secondary_roles
        return False


def with_session_context(sql: str, session: Session, account: Account | None = None) -> str:
    """CURRENT_USER(), CURRENT_ROLE(), CURRENT_WAREHOUSE() and CURRENT_SECONDARY_ROLES() answer with the
    session's own values (fakesnow answers `duckdb`); a bare projection keeps Snowflake's column name, e.g.
    CURRENT_USER()."""
    upper = sql.upper()
    if not any(f in upper for f in _SESSION_FUNCTIONS):
        return sql
    secondary = account.current_secondary_roles(session) if account is not None and "CURRENT_SECONDARY_ROLES" in upper else None
    return _with_values(sql, SessionValues(session.user.name, session.role, session.warehouse, secondary))


# Kept by text and values: a loader sends the same statements, as the same user, for every file.
@functools.lru_cache(maxsize=256)
def _with_values(sql: str, values: SessionValues) -> str:
    tree = grants.parse(sql)
    if tree is None:
        return sql

    def replace(node: exp.Expr) -> exp.Expr:
        value = values.of(node)
        if value is False:
            return node
        answer = exp.cast(exp.null(), "VARCHAR") if value is None else exp.Literal.string(value)
        if isinstance(node.parent, exp.Select) and node.arg_key == "expressions":
            return exp.alias_(answer, node.sql(dialect="snowflake").upper(), quoted=True)
        return answer

    return tree.transform(replace).sql(dialect="snowflake")
