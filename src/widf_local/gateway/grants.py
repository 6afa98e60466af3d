"""Privileges, and the ones each statement needs - enforced as Snowflake does.

A role may do what it was granted, what it owns, and what roles granted to it
may do. The administrative roles keep full access. What a statement needs is
read from its syntax tree (the way fakesnow's transforms work): the tables it
reads need SELECT, the table it writes needs INSERT, UPDATE or DELETE, a
CREATE needs the CREATE privilege on the schema or database it creates in,
and a DROP or ALTER needs ownership. Every object also needs USAGE on its
database and schema.

Who is asked: a session has one primary role and any number of secondary
roles (a user's DEFAULT_SECONDARY_ROLES, ('ALL') unless set otherwise). The
CREATE privilege of a CREATE statement is looked for in the primary role's
hierarchy alone; every other privilege - the USAGE that resolves a CREATE's
database and schema among them - in any active role's ("Authorization through
primary role and secondary roles", Overview of Access Control).

When a role may not even see an object, Snowflake answers that the object
"does not exist or not authorized", so that nobody learns what exists; when it
can see it but lacks the privilege, the answer is "Insufficient privileges".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache

import sqlglot
from sqlglot import exp

from widf_local.gateway.errors import SnowflakeError, cannot_be_performed, does_not_exist, insufficient_privileges, primary_role_must_have

ADMIN_ROLES = frozenset({"ACCOUNTADMIN", "SECURITYADMIN", "SYSADMIN"})
RELATION_KINDS = ("TABLE", "VIEW", "DYNAMIC TABLE", "MATERIALIZED VIEW", "EXTERNAL TABLE")
INTERNAL_SCHEMAS = ("INFORMATION_SCHEMA", "_FS_INFORMATION_SCHEMA")
ANY = "ANY"  # any privilege at all: what it takes to see an object


@dataclass(frozen=True, order=True)
class Securable:
    """An object privileges are granted on. Relations (tables, views, dynamic
    tables) share one namespace per schema, so they share the kind TABLE."""

    kind: str  # ACCOUNT | WAREHOUSE | DATABASE | SCHEMA | TABLE
    name: str  # resolved and dotted: DB, DB.SCHEMA, DB.SCHEMA.TABLE

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    def contains(self, other: Securable) -> bool:
        return other == self or (self.kind in ("DATABASE", "SCHEMA") and other.name.startswith(self.name + "."))


def relation(name: str) -> Securable:
    return Securable("TABLE", name)


def containers(table: Securable) -> tuple[Securable, Securable]:
    database, schema, _ = table.name.split(".", 2)
    return Securable("DATABASE", database), Securable("SCHEMA", f"{database}.{schema}")


@dataclass(frozen=True)
class Access:
    """The roles a session acts with: the primary role, its hierarchy, and every active role (primary and
    secondary, with theirs)."""

    primary_role: str
    primary: frozenset[str]
    active: frozenset[str]

    @classmethod
    def only(cls, role: str, roles: frozenset[str]) -> Access:
        """A session without secondary roles."""
        return cls(role, roles, roles)


@dataclass(frozen=True)
class Grant:
    privilege: str
    on: Securable
    role: str
    grant_option: bool = False
    granted_by: str = ""
    created_on: datetime = field(default_factory=lambda: datetime.now(UTC), compare=False)


@dataclass(frozen=True)
class FutureGrant:
    """GRANT ... ON FUTURE TABLES IN SCHEMA|DATABASE x: applied to each table created there later."""

    privilege: str
    container: Securable
    role: str


class Privileges:
    """What each role was granted, and who owns what."""

    def __init__(self) -> None:
        self.grants: dict[tuple[str, Securable, str], Grant] = {}
        self.future: set[FutureGrant] = set()
        self.owners: dict[Securable, str] = {}
        self.created_on: dict[Securable, datetime] = {}  # what SHOW answers in created_on
        self.comments: dict[Securable, str] = {}

    def grant(self, privilege: str, on: Securable, role: str, *, grant_option: bool = False, granted_by: str = "") -> None:
        key = (privilege, on, role)
        if key not in self.grants or grant_option:
            self.grants[key] = Grant(privilege, on, role, grant_option, granted_by)

    def revoke(self, privilege: str, on: Securable, role: str) -> None:
        if privilege in ("ALL", "ALL PRIVILEGES"):
            for key in [k for k in self.grants if k[1] == on and k[2] == role]:
                del self.grants[key]
        self.grants.pop((privilege, on, role), None)

    def grant_future(self, privilege: str, container: Securable, role: str) -> None:
        self.future.add(FutureGrant(privilege, container, role))

    def revoke_future(self, privilege: str, container: Securable, role: str) -> None:
        self.future = {
            f
            for f in self.future
            if not (f.container == container and f.role == role and privilege in (f.privilege, "ALL", "ALL PRIVILEGES"))
        }

    def owner_of(self, on: Securable) -> str | None:
        return self.owners.get(on)

    def transfer_ownership(self, on: Securable, role: str, *, current_grants: str | None) -> None:
        """GRANT OWNERSHIP of one object (never of what it contains). `current_grants` is COPY, REVOKE or None:
        without either, the privileges already granted on the object block the move; copied, they are granted
        by the new owner from then on. A move to the role that owns the object already changes nothing."""
        if self.owners.get(on) == role:
            return
        outbound = sorted((g for g in self.grants.values() if g.on == on), key=lambda g: (g.privilege, g.role))
        if outbound and current_grants is None:
            raise dependent_grant(outbound[0])
        for grant in outbound:
            key = (grant.privilege, grant.on, grant.role)
            if current_grants == "COPY":
                self.grants[key] = Grant(grant.privilege, on, grant.role, grant.grant_option, role, grant.created_on)
            else:
                del self.grants[key]
        self.owners[on] = role

    def created(self, on: Securable, role: str, *, comment: str | None = None) -> None:
        """A new object belongs to the role that created it; a table also gets the future grants of where it lives."""
        self.forget(on)
        self.owners[on] = role
        self.created_on[on] = datetime.now(UTC)
        if comment:
            self.comments[on] = comment
        if on.kind == "TABLE":
            for future in self.future:
                if future.container.contains(on):
                    self.grant(future.privilege, on, future.role, granted_by=future.container.name)

    def forget(self, on: Securable) -> None:
        """An object was dropped (or replaced): its grants, and those of everything in it, go with it."""
        self.grants = {k: g for k, g in self.grants.items() if not on.contains(g.on)}
        self.owners = {o: r for o, r in self.owners.items() if not on.contains(o)}
        self.future = {f for f in self.future if not on.contains(f.container)}
        self.created_on = {o: t for o, t in self.created_on.items() if not on.contains(o)}
        self.comments = {o: c for o, c in self.comments.items() if not on.contains(o)}

    def renamed(self, old: Securable, new: Securable) -> None:
        """A renamed object keeps its owner, its grants, its creation time and its comment."""
        self.grants = {(p, new if on == old else on, r): replace(g, on=new) if on == old else g for (p, on, r), g in self.grants.items()}
        if old in self.owners:
            self.owners[new] = self.owners.pop(old)
        if old in self.created_on:
            self.created_on[new] = self.created_on.pop(old)
        if old in self.comments:
            self.comments[new] = self.comments.pop(old)

    def role_dropped(self, role: str) -> None:
        self.grants = {k: g for k, g in self.grants.items() if g.role != role}
        self.future = {f for f in self.future if f.role != role}

    def has(self, roles: frozenset[str], privilege: str, on: Securable) -> bool:
        if self.owners.get(on) in roles:
            return True
        return any(
            role in roles and target == on and (privilege in (granted, ANY) or granted in ("ALL", "ALL PRIVILEGES"))
            for granted, target, role in self.grants
        )

    def sees(self, roles: frozenset[str], on: Securable) -> bool:
        return self.has(roles, ANY, on)

    def visible(self, roles: frozenset[str], on: Securable) -> bool:
        """What SHOW lists: objects an active role holds a privilege on; everything to the administrative roles
        (MANAGE GRANTS "implicitly allows its holder to see every object in the account")."""
        return bool(roles & ADMIN_ROLES) or self.sees(roles, on)

    def of_role(self, role: str) -> list[Grant]:
        owned = [Grant("OWNERSHIP", on, role, True, role) for on, owner in self.owners.items() if owner == role]
        return sorted([*owned, *(g for g in self.grants.values() if g.role == role)], key=lambda g: (g.on, g.privilege))

    def on_object(self, on: Securable) -> list[Grant]:
        owned = [Grant("OWNERSHIP", on, owner, True, owner)] if (owner := self.owners.get(on)) else []
        return [*owned, *sorted((g for g in self.grants.values() if g.on == on), key=lambda g: (g.privilege, g.role))]


# -- what a statement needs ---------------------------------------------------


@dataclass(frozen=True)
class Need:
    """One of `privileges` on `on`. `visible_refusal`: a role that can see the
    object hears "Insufficient privileges", one that cannot hears "does not exist"."""

    privileges: tuple[str, ...]
    on: Securable
    visible_refusal: bool = True
    primary_only: bool = False  # the CREATE <object> privilege: only the primary role's hierarchy authorizes it
    use: bool = False  # for USE DATABASE / SCHEMA, whose refusal names nothing


# Clients send the same statement text again and again (the loader's claim MERGE and its inserts, once per
# file or batch), and the gateway reads a statement in several places: one parse per distinct text, kept,
# spares a MERGE about a third of the gateway's own time. Callers must not change the tree: a rewrite works
# on a copy.
@lru_cache(maxsize=512)
def parse(sql: str) -> exp.Expr | None:
    try:
        return sqlglot.parse_one(sql, read="snowflake")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
        return None


def table_key(table: exp.Table, database: str | None, schema: str | None) -> str | None:
    """db.schema.table for a table reference, resolved against the session; None if it cannot be."""
    if not isinstance(table.this, exp.Identifier):
        return None  # a table function: TABLE(FLATTEN(...)), IDENTIFIER(?)
    names = [identifier_name(p) for p in (table.args.get("catalog"), table.args.get("db"), table.this)]
    catalog, db, name = names
    catalog, db = catalog or database, db or schema
    if not (catalog and db):
        return None
    return f"{catalog}.{db}.{name}"


def identifier_name(node: exp.Expr | None) -> str | None:
    """A name as Snowflake resolves it: unquoted upper-cased, quoted as written."""
    if not isinstance(node, exp.Identifier):
        return None
    return node.this if node.quoted else node.this.upper()


def schema_key(table: exp.Table, database: str | None) -> str | None:
    """db.schema for a schema reference in CREATE / DROP SCHEMA, which sqlglot reads as catalog.db."""
    db = identifier_name(table.args.get("catalog")) or database
    name = identifier_name(table.args.get("db")) or identifier_name(table.this)
    return f"{db}.{name}" if db and name else None


def tables_read(statement: exp.Expr, database: str | None, schema: str | None, *, skip: exp.Expr | None = None) -> list[str]:
    """Every table a statement reads, resolved; CTE names and `skip` (a write target) excluded."""
    ctes = {cte.alias_or_name.upper() for cte in statement.find_all(exp.CTE)}
    found = []
    for table in statement.find_all(exp.Table):
        if table is skip or (not table.args.get("db") and table.name.upper() in ctes):
            continue
        if (key := table_key(table, database, schema)) and key.split(".")[1] not in INTERNAL_SCHEMAS and key not in found:
            found.append(key)
    return found


def _target(node: exp.Expr | None) -> exp.Table | None:
    if isinstance(node, exp.Schema):
        node = node.this
    return node if isinstance(node, exp.Table) else None


def _with_containers(privileges: tuple[str, ...], table: str, *, visible_refusal: bool = True) -> Iterator[Need]:
    on = relation(table)
    for container in containers(on):
        yield Need(("USAGE",), container, visible_refusal=False)
    yield Need(privileges, on, visible_refusal)


def _reads(statement: exp.Expr, database: str | None, schema: str | None, skip: exp.Expr | None = None) -> Iterator[Need]:
    for table in tables_read(statement, database, schema, skip=skip):
        yield from _with_containers(("SELECT",), table, visible_refusal=False)


def _merge_privileges(merge: exp.Merge) -> tuple[str, ...]:
    whens = merge.args.get("whens")
    needed = ["SELECT"]
    for when in whens.expressions if isinstance(whens, exp.Whens) else []:
        then = when.args.get("then")
        needed.append("INSERT" if isinstance(then, exp.Insert) else "DELETE" if "DELETE" in then.sql().upper() else "UPDATE")
    return tuple(dict.fromkeys(needed))


def needs(statement: exp.Expr, database: str | None, schema: str | None) -> list[Need]:
    """The privileges a statement needs, each with what it applies to."""
    return list(_needs(statement, database, schema))


def _needs(statement: exp.Expr, database: str | None, schema: str | None) -> Iterator[Need]:
    if isinstance(statement, exp.Insert | exp.Update | exp.Delete | exp.Merge):
        target = _target(statement.this)
        key = table_key(target, database, schema) if target is not None else None
        if key:
            if isinstance(statement, exp.Merge):
                # Every privilege its clauses use, one by one: a MERGE that inserts needs INSERT, and reads the target in ON.
                for privilege in _merge_privileges(statement):
                    yield from _with_containers((privilege,), key)
            else:
                privilege = {exp.Insert: "INSERT", exp.Update: "UPDATE", exp.Delete: "DELETE"}[type(statement)]
                yield from _with_containers((privilege,), key)
        yield from _reads(statement, database, schema, skip=target)
    elif isinstance(statement, exp.TruncateTable):
        for table in statement.expressions:
            if isinstance(table, exp.Table) and (key := table_key(table, database, schema)):
                yield from _with_containers(("TRUNCATE",), key)
    elif isinstance(statement, exp.Create):
        yield from _create_needs(statement, database, schema)
    elif isinstance(statement, exp.Drop | exp.Alter):
        yield from _owner_needs(statement, database, schema)
    elif isinstance(statement, exp.Use):
        yield from _use_needs(statement, database)
    elif isinstance(statement, exp.Describe) and isinstance(statement.this, exp.Table):
        if key := table_key(statement.this, database, schema):
            yield from _with_containers((ANY,), key, visible_refusal=False)
    elif isinstance(statement, exp.Query):
        yield from _reads(statement, database, schema)


def _create_needs(create: exp.Create, database: str | None, schema: str | None) -> Iterator[Need]:
    kind = str(create.args.get("kind") or "").upper()
    target = _target(create.this)
    if kind == "DATABASE":
        yield Need(("CREATE DATABASE",), Securable("ACCOUNT", ""), primary_only=True)
        return
    if kind == "SCHEMA" and target is not None:
        db = identifier_name(target.args.get("catalog")) or database
        if db:
            yield Need(("USAGE",), Securable("DATABASE", db), visible_refusal=False)
            yield Need(("CREATE SCHEMA",), Securable("DATABASE", db), primary_only=True)
        return
    if target is None or not (key := table_key(target, database, schema)):
        return
    db, sch, _ = key.split(".", 2)
    properties = create.args.get("properties")
    dynamic = bool(properties and properties.find(exp.DynamicProperty))
    privilege = f"CREATE {'DYNAMIC TABLE' if dynamic else kind}"
    yield Need(("USAGE",), Securable("DATABASE", db), visible_refusal=False)
    yield Need(("USAGE",), Securable("SCHEMA", f"{db}.{sch}"), visible_refusal=False)
    yield Need((privilege,), Securable("SCHEMA", f"{db}.{sch}"), primary_only=True)
    if (query := create.expression) is not None:
        yield from _reads(query, database, schema)


def _owner_needs(statement: exp.Drop | exp.Alter, database: str | None, schema: str | None) -> Iterator[Need]:
    kind = str(statement.args.get("kind") or "TABLE").upper()
    tables = (statement.args.get("tables") if isinstance(statement, exp.Drop) else None) or [statement.this]
    for table in tables:
        if not isinstance(table, exp.Table):
            continue
        if kind == "DATABASE":
            yield Need(("OWNERSHIP",), Securable("DATABASE", identifier_name(table.this) or ""))
        elif kind == "SCHEMA":
            if key := schema_key(table, database):
                yield Need(("USAGE",), Securable("DATABASE", key.split(".")[0]), visible_refusal=False)
                yield Need(("OWNERSHIP",), Securable("SCHEMA", key))
        elif kind in (*RELATION_KINDS, "SEQUENCE", "STAGE", "FILE FORMAT") and (key := table_key(table, database, schema)):
            yield from _with_containers(("OWNERSHIP",), key)


def _use_needs(use: exp.Use, database: str | None) -> Iterator[Need]:
    kind = str(use.args.get("kind") or "SCHEMA").upper()
    target = use.this if isinstance(use.this, exp.Table) else None
    if target is None:
        return
    if kind == "DATABASE":
        yield Need(("USAGE",), Securable("DATABASE", identifier_name(target.this) or ""), visible_refusal=False, use=True)
    elif kind == "SCHEMA":
        db = identifier_name(target.args.get("db")) or database
        if db:
            yield Need(("USAGE",), Securable("DATABASE", db), visible_refusal=False, use=True)
            yield Need(("USAGE",), Securable("SCHEMA", f"{db}.{identifier_name(target.this)}"), visible_refusal=False, use=True)


def authorize(privileges: Privileges, access: Access, required: Iterable[Need]) -> None:
    """Raise Snowflake's error for the first need the session's roles do not meet: a CREATE privilege the
    primary role's, every other privilege any active role's."""
    for need in required:
        roles = access.primary if need.primary_only else access.active
        # The administrative roles' full access stops at the account's own privileges: SYSADMIN holds CREATE
        # DATABASE and ACCOUNTADMIN inherits it, SECURITYADMIN does not.
        bypass = need.on.kind != "ACCOUNT" and bool(roles & ADMIN_ROLES)
        if bypass or any(privileges.has(roles, p, need.on) for p in need.privileges):
            continue
        if need.primary_only:
            raise primary_role_must_have(access.primary_role, need.privileges[0], need.on.kind, need.on.name)
        if need.use:
            raise cannot_be_performed()
        if need.on.kind in ("ACCOUNT", "DATABASE", "SCHEMA") and need.visible_refusal:
            raise insufficient_privileges(need.on.kind if need.on.kind != "ACCOUNT" else "account", need.on.short_name or "LOCAL")
        if need.visible_refusal and privileges.sees(roles, need.on):
            raise insufficient_privileges("table", need.on.short_name)
        raise does_not_exist(need.on.name)


def dependent_grant(grant: Grant) -> SnowflakeError:
    """GRANT OWNERSHIP without COPY or REVOKE CURRENT GRANTS on an object others hold privileges on."""
    return SnowflakeError(
        3036,
        f"SQL execution error: Dependent grant of privilege '{grant.privilege}' on securable '{grant.on.name}' to role "
        f"'{grant.role}' exists.  It must be revoked first.  More than one dependent grant may exist: use 'SHOW GRANTS' "
        "command to view them.  To revoke all dependent grants while transferring object ownership, use convenience "
        "command 'GRANT OWNERSHIP ON <target_objects> TO <target_role> REVOKE CURRENT GRANTS'.",
        "23001",
    )
