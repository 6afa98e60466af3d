"""Account objects fakesnow does not have: users, roles, warehouses and grants.

Each supported statement is one small function, found through the table at
the bottom. A handler returns the rows Snowflake would answer with; the
server turns them into a result set. Anything that looks like an account
statement but is not in the table fails with a Snowflake-style error naming
it, never a silent no-op.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

BUILTIN_ROLES = ("ACCOUNTADMIN", "SECURITYADMIN", "USERADMIN", "SYSADMIN", "PUBLIC")
_NAME = r"(?:\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_$]*)"
_QNAME = rf"{_NAME}(?:\.{_NAME})*"
_PROPERTY = re.compile(r"(\w+)\s*=\s*('(?:[^']|'')*'|\([^)]*\)|[^\s]+)", re.S)


class SnowflakeError(Exception):
    """An error with Snowflake's code and wording, sent to the client as a failed query."""

    def __init__(self, code: int, message: str, sqlstate: str = "42000"):
        super().__init__(message)
        self.code = code
        self.message = message
        self.sqlstate = sqlstate


def normalise(name: str) -> str:
    """Snowflake identifier resolution: unquoted folds to upper case, quoted is kept."""
    if name.startswith('"') and name.endswith('"'):
        return name[1:-1].replace('""', '"')
    return name.upper()


def unquote_literal(value: str) -> str:
    return value[1:-1].replace("''", "'") if value.startswith("'") else value


@dataclass
class User:
    name: str
    type: str = "PERSON"
    workload_identity_arn: str | None = None
    default_role: str | None = None
    default_warehouse: str | None = None
    comment: str | None = None
    password: str | None = None  # only the generated local admin has one


@dataclass
class Session:
    user: User
    role: str
    autocommit: bool = True
    in_transaction: bool = False
    lock_timeout_seconds: float = 43200  # Snowflake's default LOCK_TIMEOUT


@dataclass
class Account:
    users: dict[str, User] = field(default_factory=dict)
    roles: set[str] = field(default_factory=lambda: set(BUILTIN_ROLES))
    warehouses: set[str] = field(default_factory=set)
    user_roles: dict[str, set[str]] = field(default_factory=dict)
    privileges: set[tuple[str, str, str, str]] = field(default_factory=set)  # (privilege, kind, object, role)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def add_admin(self, name: str, password: str) -> None:
        self.users[name] = User(name=name, password=password, default_role="ACCOUNTADMIN")
        self.user_roles[name] = {"ACCOUNTADMIN", "PUBLIC"}

    def find_user_trusting(self, role_arn: str) -> User | None:
        with self.lock:
            return next(
                (u for u in self.users.values() if u.type == "SERVICE" and u.workload_identity_arn == role_arn),
                None,
            )

    def role_for_login(self, user: User, requested: str | None) -> str:
        granted = self.user_roles.get(user.name, {"PUBLIC"})
        role = normalise(requested) if requested else (user.default_role or "PUBLIC")
        if role not in granted:
            if requested:
                raise SnowflakeError(
                    390189,
                    f"Role '{role}' specified in the connect string is not granted to this user. "
                    "Contact your local system administrator, or attempt to login with another role, e.g. PUBLIC.",
                    "08004",
                )
            role = "PUBLIC"
        return role


Rows = tuple[list[str], list[tuple]]
Handler = Callable[[Account, Session, re.Match], Rows]


def status(message: str) -> Rows:
    return ["status"], [(message,)]


def parse_properties(text: str) -> dict[str, str]:
    return {m.group(1).upper(): m.group(2) for m in _PROPERTY.finditer(text)}


def parse_workload_identity(value: str) -> str:
    props = parse_properties(value.strip()[1:-1])
    if props.get("TYPE", "").upper() != "AWS" or "ARN" not in props:
        raise SnowflakeError(2029, "WORKLOAD_IDENTITY must be (TYPE = AWS ARN = '<iam role arn>') in the local gateway.")
    return unquote_literal(props["ARN"])


def _apply_user_properties(user: User, props: dict[str, str]) -> None:
    if "TYPE" in props:
        user.type = props["TYPE"].upper()
    if "WORKLOAD_IDENTITY" in props:
        user.workload_identity_arn = parse_workload_identity(props["WORKLOAD_IDENTITY"])
    if "DEFAULT_ROLE" in props:
        user.default_role = normalise(props["DEFAULT_ROLE"])
    if "DEFAULT_WAREHOUSE" in props:
        user.default_warehouse = normalise(props["DEFAULT_WAREHOUSE"])
    if "COMMENT" in props:
        user.comment = unquote_literal(props["COMMENT"])
    if "PASSWORD" in props:
        raise SnowflakeError(2029, "The local gateway keeps no passwords for users: use WORKLOAD_IDENTITY.")


def require_role(account: Account, session: Session, *allowed: str) -> None:
    if session.role not in allowed:
        raise SnowflakeError(3001, "SQL access control error:\nInsufficient privileges to operate on account.")


def create_user(account: Account, session: Session, m: re.Match) -> Rows:
    require_role(account, session, "ACCOUNTADMIN", "SECURITYADMIN", "USERADMIN")
    name = normalise(m["name"])
    if name in account.users and not m["replace"]:
        if m["ifnot"]:
            return status(f"{name} already exists, statement succeeded.")
        raise SnowflakeError(2002, f"SQL compilation error:\nObject '{name}' already exists.")
    user = User(name=name)
    _apply_user_properties(user, parse_properties(m["rest"] or ""))
    account.users[name] = user
    account.user_roles[name] = {"PUBLIC"}
    return status(f"User {name} successfully created.")


def alter_user_workload_identity(account: Account, session: Session, m: re.Match) -> Rows:
    require_role(account, session, "ACCOUNTADMIN", "SECURITYADMIN", "USERADMIN")
    user = _existing_user(account, m["name"], m["ifexists"])
    if user is None:
        return status("Statement executed successfully.")
    if m["action"].upper() == "ADD":
        user.workload_identity_arn = parse_workload_identity(m["rest"].split("=", 1)[1])
    else:
        user.workload_identity_arn = None
    return status("Statement executed successfully.")


def drop_user(account: Account, session: Session, m: re.Match) -> Rows:
    require_role(account, session, "ACCOUNTADMIN", "SECURITYADMIN", "USERADMIN")
    if _existing_user(account, m["name"], m["ifexists"]) is None:
        return status(f"Drop statement executed successfully ({normalise(m['name'])} already dropped).")
    name = normalise(m["name"])
    del account.users[name]
    account.user_roles.pop(name, None)
    return status(f"{name} successfully dropped.")


def _existing_user(account: Account, raw_name: str, if_exists: str | None) -> User | None:
    name = normalise(raw_name)
    if name not in account.users:
        if if_exists:
            return None
        raise SnowflakeError(2003, f"SQL compilation error:\nUser '{name}' does not exist or not authorized.", "02000")
    return account.users[name]


def create_role(account: Account, session: Session, m: re.Match) -> Rows:
    require_role(account, session, "ACCOUNTADMIN", "SECURITYADMIN", "USERADMIN")
    name = normalise(m["name"])
    if name in account.roles and not m["replace"]:
        if m["ifnot"]:
            return status(f"{name} already exists, statement succeeded.")
        raise SnowflakeError(2002, f"SQL compilation error:\nObject '{name}' already exists.")
    account.roles.add(name)
    return status(f"Role {name} successfully created.")


def drop_role(account: Account, session: Session, m: re.Match) -> Rows:
    require_role(account, session, "ACCOUNTADMIN", "SECURITYADMIN", "USERADMIN")
    name = normalise(m["name"])
    if name not in account.roles:
        if m["ifexists"]:
            return status(f"Drop statement executed successfully ({name} already dropped).")
        raise SnowflakeError(2003, f"SQL compilation error:\nRole '{name}' does not exist or not authorized.", "02000")
    if name in BUILTIN_ROLES:
        raise SnowflakeError(3001, f"SQL access control error:\nCannot drop system role '{name}'.")
    account.roles.discard(name)
    for roles in account.user_roles.values():
        roles.discard(name)
    account.privileges = {p for p in account.privileges if p[3] != name}
    return status(f"{name} successfully dropped.")


def _existing_role(account: Account, raw_name: str) -> str:
    name = normalise(raw_name)
    if name not in account.roles:
        raise SnowflakeError(2003, f"SQL compilation error:\nRole '{name}' does not exist or not authorized.", "02000")
    return name


def grant_role(account: Account, session: Session, m: re.Match) -> Rows:
    require_role(account, session, "ACCOUNTADMIN", "SECURITYADMIN", "USERADMIN")
    role = _existing_role(account, m["role"])
    if m["kind"].upper() == "USER":
        user = _existing_user(account, m["grantee"], None)
        account.user_roles.setdefault(user.name, {"PUBLIC"}).add(role)
    else:
        _existing_role(account, m["grantee"])
    return status("Statement executed successfully.")


def revoke_role(account: Account, session: Session, m: re.Match) -> Rows:
    require_role(account, session, "ACCOUNTADMIN", "SECURITYADMIN", "USERADMIN")
    role = _existing_role(account, m["role"])
    if m["kind"].upper() == "USER":
        account.user_roles.get(normalise(m["grantee"]), set()).discard(role)
    return status("Statement executed successfully.")


def grant_privileges(account: Account, session: Session, m: re.Match) -> Rows:
    require_role(account, session, "ACCOUNTADMIN", "SECURITYADMIN", "SYSADMIN")
    role = _existing_role(account, m["role"])
    for privilege in (p.strip().upper() for p in m["privileges"].split(",")):
        account.privileges.add((privilege, " ".join(m["kind"].upper().split()), m["object"].upper(), role))
    return status("Statement executed successfully.")


def revoke_privileges(account: Account, session: Session, m: re.Match) -> Rows:
    require_role(account, session, "ACCOUNTADMIN", "SECURITYADMIN", "SYSADMIN")
    role = normalise(m["role"])
    kind, obj = " ".join(m["kind"].upper().split()), m["object"].upper()
    for privilege in (p.strip().upper() for p in m["privileges"].split(",")):
        account.privileges.discard((privilege, kind, obj, role))
    return status("Statement executed successfully.")


def create_warehouse(account: Account, session: Session, m: re.Match) -> Rows:
    require_role(account, session, "ACCOUNTADMIN", "SYSADMIN")
    name = normalise(m["name"])
    if name in account.warehouses and m["ifnot"]:
        return status(f"{name} already exists, statement succeeded.")
    account.warehouses.add(name)
    return status(f"Warehouse {name} successfully created.")


def use_role(account: Account, session: Session, m: re.Match) -> Rows:
    role = normalise(m["name"])
    if role not in account.user_roles.get(session.user.name, {"PUBLIC"}):
        raise SnowflakeError(3013, f"SQL compilation error:\nRole '{role}' does not exist or not authorized.", "02000")
    session.role = role
    return status("Statement executed successfully.")


def show_users(account: Account, session: Session, m: re.Match) -> Rows:
    require_role(account, session, "ACCOUNTADMIN", "SECURITYADMIN", "USERADMIN")
    pattern = re.compile(_like_to_regex(unquote_literal(m["like"])), re.I) if m["like"] else None
    columns = ["name", "type", "default_role", "default_warehouse", "has_workload_identity", "comment"]
    rows = [
        (u.name, u.type, u.default_role, u.default_warehouse, str(u.workload_identity_arn is not None).lower(), u.comment)
        for u in sorted(account.users.values(), key=lambda u: u.name)
        if pattern is None or pattern.fullmatch(u.name)
    ]
    return columns, rows


def _like_to_regex(like: str) -> str:
    return "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in like)


_IFNOT = r"(?:(?P<ifnot>IF\s+NOT\s+EXISTS)\s+)?"
_IFEXISTS = r"(?:(?P<ifexists>IF\s+EXISTS)\s+)?"
_REPLACE = r"(?:(?P<replace>OR\s+REPLACE)\s+)?"
_GRANTEE_KIND = r"(?P<kind>USER|ROLE)"
_OBJECT_KIND = r"(?P<kind>WAREHOUSE|DATABASE|SCHEMA|TABLE|VIEW|DYNAMIC\s+TABLE|ALL\s+TABLES\s+IN\s+SCHEMA|FUTURE\s+TABLES\s+IN\s+SCHEMA)"

STATEMENTS: list[tuple[re.Pattern, Handler]] = [
    (rf"CREATE\s+{_REPLACE}USER\s+{_IFNOT}(?P<name>{_NAME})(?P<rest>.*)", create_user),
    (rf"ALTER\s+USER\s+{_IFEXISTS}(?P<name>{_NAME})\s+(?P<action>ADD|REMOVE)\s+WORKLOAD\s+IDENTITY(?P<rest>.*)", alter_user_workload_identity),
    (rf"DROP\s+USER\s+{_IFEXISTS}(?P<name>{_NAME})", drop_user),
    (rf"CREATE\s+{_REPLACE}ROLE\s+{_IFNOT}(?P<name>{_NAME})(?P<rest>.*)", create_role),
    (rf"DROP\s+ROLE\s+{_IFEXISTS}(?P<name>{_NAME})", drop_role),
    (rf"GRANT\s+ROLE\s+(?P<role>{_NAME})\s+TO\s+{_GRANTEE_KIND}\s+(?P<grantee>{_NAME})", grant_role),
    (rf"REVOKE\s+ROLE\s+(?P<role>{_NAME})\s+FROM\s+{_GRANTEE_KIND}\s+(?P<grantee>{_NAME})", revoke_role),
    (rf"GRANT\s+(?P<privileges>[\w\s,]+?)\s+ON\s+{_OBJECT_KIND}\s+(?P<object>{_QNAME})\s+TO\s+ROLE\s+(?P<role>{_NAME})", grant_privileges),
    (rf"REVOKE\s+(?P<privileges>[\w\s,]+?)\s+ON\s+{_OBJECT_KIND}\s+(?P<object>{_QNAME})\s+FROM\s+ROLE\s+(?P<role>{_NAME})", revoke_privileges),
    (rf"CREATE\s+{_REPLACE}WAREHOUSE\s+{_IFNOT}(?P<name>{_NAME})(?P<rest>.*)", create_warehouse),
    (rf"USE\s+ROLE\s+(?P<name>{_NAME})", use_role),
    (r"SHOW\s+USERS(?:\s+LIKE\s+(?P<like>'(?:[^']|'')*'))?", show_users),
]
STATEMENTS = [(re.compile(rf"^\s*{pattern}\s*;?\s*$", re.I | re.S), handler) for pattern, handler in STATEMENTS]
_ACCOUNT_STATEMENT = re.compile(r"^\s*(CREATE|ALTER|DROP|GRANT|REVOKE|SHOW|DESC|DESCRIBE)\s+(\w+\s+)*?(USERS?|ROLES?|GRANTS?|WAREHOUSES?)\b|^\s*(GRANT|REVOKE)\b", re.I)


def execute_account_statement(account: Account, session: Session, sql: str) -> Rows | None:
    """Run sql if it is an account statement; None means it is for the SQL engine."""
    for pattern, handler in STATEMENTS:
        if m := pattern.match(sql):
            with account.lock:
                return handler(account, session, m)
    if _ACCOUNT_STATEMENT.match(sql):
        first_line = " ".join(sql.split())[:120]
        raise SnowflakeError(2, f"SQL compilation error:\nUnsupported statement in the local gateway: {first_line}", "0A000")
    return None
