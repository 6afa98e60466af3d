"""Account objects fakesnow does not have: users, roles, warehouses and grants.

Each supported statement is one small function, found through the table at
the bottom. A handler returns the rows Snowflake would answer with (same
column names); the server turns them into a result set. Anything that looks
like an account statement but is not in the table fails with a
Snowflake-style error naming it, never a silent no-op.

Session variables have been substituted before a statement gets here, so
`GRANT ROLE r TO USER IDENTIFIER($me)` arrives as `GRANT ROLE r TO USER ME`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from widf_local.gateway.aws_principals import IamRole, role_in_arn
from widf_local.gateway.errors import (
    ACCOUNT_NAME,
    SnowflakeError,
    already_exists,
    cannot_be_performed,
    does_not_exist,
    insufficient_privileges,
    primary_role_must_have,
    unsupported,
)
from widf_local.gateway.grants import ADMIN_ROLES, Access, Privileges, Securable
from widf_local.gateway.names import NAME, like, normalise, parts, qualified, unquote_literal

__all__ = ["Account", "Session", "SnowflakeError", "User", "execute_account_statement", "normalise"]

ACCOUNT = Securable("ACCOUNT", "")
BUILTIN_ROLES = ("ACCOUNTADMIN", "SECURITYADMIN", "USERADMIN", "SYSADMIN", "PUBLIC")
# Snowflake's system role hierarchy: a role inherits the roles granted to it.
BUILTIN_ROLE_GRANTS = {"ACCOUNTADMIN": {"SECURITYADMIN", "SYSADMIN"}, "SECURITYADMIN": {"USERADMIN"}}
_PROPERTY = re.compile(r"(\w+)\s*=\s*('(?:[^']|'')*'|\((?:[^()']|'(?:[^']|'')*')*\)|[^\s]+)", re.S)
_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):(?P<kind>role|user)/(?:.*/)?(?P<name>[^/]+)$")
# Not what a user should trust (Snowflake maps the session to its IAM role), but accepted and stored as given.
_SESSION_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):sts::(?P<account>\d{12}):assumed-role/(?P<name>[^/]+)/(?P<session>[^/]+)$")


def now() -> datetime:
    return datetime.now(UTC)


class Catalog(Protocol):
    """What the SQL engine holds: databases, schemas and tables."""

    def exists(self, on: Securable) -> bool: ...

    def tables_in(self, container: Securable) -> list[str]: ...

    def databases(self) -> list[str]: ...

    def schemas(self, database: str) -> list[str]: ...

    def tables(self, database: str | None = None, schema: str | None = None) -> list[str]: ...

    def count_rows(self, table: str) -> int: ...


class NoCatalog:
    def exists(self, on: Securable) -> bool:
        return True

    def tables_in(self, container: Securable) -> list[str]:
        return []

    def databases(self) -> list[str]:
        return []

    def schemas(self, database: str) -> list[str]:
        return []

    def tables(self, database: str | None = None, schema: str | None = None) -> list[str]:
        return []

    def count_rows(self, table: str) -> int:
        return 0


@dataclass
class WorkloadIdentity:
    """A trusted cloud identity; DEFAULT is the one set by the WORKLOAD_IDENTITY property."""

    name: str
    type: str
    arn: str | None = None
    issuer: str | None = None
    created_on: datetime = field(default_factory=now)
    last_used: datetime | None = None

    def additional_info(self) -> str:
        if self.type == "AWS" and self.arn and (m := _ARN.match(self.arn)):
            info = {"awsPartition": m["partition"], "awsAccount": m["account"], "type": f"IAM_{m['kind'].upper()}", "iamRole": m["name"]}
            return json.dumps(info | ({"issuer": self.issuer} if self.issuer else {}))
        if self.type == "AWS" and self.arn and (m := _SESSION_ARN.match(self.arn)):
            # A session ARN is stored as given; no login ever presents it as a role, so it never matches.
            info = {
                "awsPartition": m["partition"],
                "awsAccount": m["account"],
                "type": "ASSUMED_ROLE",
                "iamRole": m["name"],
                "sessionName": m["session"],
                "arn": self.arn,
            }
            return json.dumps(info)
        return json.dumps({k: v for k, v in (("arn", self.arn), ("issuer", self.issuer)) if v})

    def trusts(self, role: IamRole) -> bool:
        """Snowflake matches the role by partition, account and name: an STS session ARN carries no path."""
        trusted = role_in_arn(self.arn) if self.type == "AWS" and self.arn else None
        return trusted == role


@dataclass
class User:
    name: str
    type: str = "PERSON"
    default_role: str | None = None
    default_warehouse: str | None = None
    default_namespace: str | None = None
    login_name: str | None = None
    display_name: str | None = None
    email: str | None = None
    comment: str | None = None
    disabled: bool = False
    password: str | None = field(default=None, repr=False)  # only the generated local admin has one; never printed
    identities: dict[str, WorkloadIdentity] = field(default_factory=dict)
    owner: str | None = None
    created_on: datetime = field(default_factory=now)
    last_success_login: datetime | None = None
    # ('ALL') unless set: Snowflake's default since the 2024_08 behaviour change bundle (BCR-1692); () is none.
    default_secondary_roles: tuple[str, ...] = ("ALL",)


@dataclass
class Role:
    name: str
    comment: str | None = None
    owner: str | None = None
    created_on: datetime = field(default_factory=now)


@dataclass
class Warehouse:
    """CREATE WAREHOUSE's defaults: X-Small, suspended after 600 seconds idle, resumed by the next statement."""

    name: str
    size: str = "X-Small"
    auto_suspend: int = 600
    auto_resume: bool = True
    suspended: bool = False
    comment: str | None = None
    owner: str | None = None
    created_on: datetime = field(default_factory=now)


# A fresh trial account's warehouse: X-Small, CREATE WAREHOUSE's AUTO_SUSPEND and AUTO_RESUME, suspended until
# used, owned by SYSADMIN (docs/local-stack.md names the pages).
TRIAL_WAREHOUSE = "COMPUTE_WH"


@dataclass
class Session:
    user: User
    role: str
    autocommit: bool = True
    in_transaction: bool = False
    lock_timeout_seconds: float = 43200  # Snowflake's default LOCK_TIMEOUT
    warehouse: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    variable_times: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)  # created, updated
    secondary_roles: tuple[str, ...] = ("ALL",)  # USE SECONDARY ROLES: ALL, () for NONE, or the roles named
    session_id: int = 0
    transaction_id: int | None = None  # the open transaction's, while in_transaction
    transaction_started: datetime | None = None
    query_tag: str = ""  # the session's QUERY_TAG; a statement may carry its own
    running: int = 0  # its statements in flight (SYSTEM$CANCEL_ALL_QUERIES cannot stop one)


@dataclass
class Account:
    users: dict[str, User] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=lambda: {r: Role(r, owner="ACCOUNTADMIN") for r in BUILTIN_ROLES})
    warehouses: dict[str, Warehouse] = field(default_factory=dict)
    user_roles: dict[str, set[str]] = field(default_factory=dict)  # roles granted to each user
    role_grants: dict[str, set[str]] = field(default_factory=lambda: {k: set(v) for k, v in BUILTIN_ROLE_GRANTS.items()})
    privileges: Privileges = field(default_factory=Privileges)
    catalog: Catalog = field(default_factory=NoCatalog)
    lock: threading.RLock = field(default_factory=threading.RLock)
    created_on: datetime = field(default_factory=now)

    def __post_init__(self) -> None:
        """The account as Snowflake makes one: the system roles' account privileges, and a trial's warehouse."""
        self.privileges.grant("CREATE DATABASE", ACCOUNT, "SYSADMIN")
        self.privileges.grant("CREATE WAREHOUSE", ACCOUNT, "SYSADMIN")
        self.privileges.grant("CREATE USER", ACCOUNT, "USERADMIN")
        self.privileges.grant("CREATE ROLE", ACCOUNT, "USERADMIN")
        self.warehouses[TRIAL_WAREHOUSE] = Warehouse(TRIAL_WAREHOUSE, suspended=True, owner="SYSADMIN")
        self.privileges.created(Securable("WAREHOUSE", TRIAL_WAREHOUSE), "SYSADMIN")

    def add_admin(self, name: str, password: str) -> None:
        self.users[name] = User(name=name, password=password, default_role="ACCOUNTADMIN", owner="ACCOUNTADMIN")
        self.user_roles[name] = {"ACCOUNTADMIN", "PUBLIC"}

    def find_user_trusting(self, role_arn: str) -> User | None:
        if (role := role_in_arn(role_arn)) is None:
            return None
        with self.lock:
            for user in self.users.values():
                if user.type != "SERVICE" or user.disabled:
                    continue
                for identity in user.identities.values():
                    if identity.trusts(role):
                        identity.last_used = user.last_success_login = now()
                        return user
            return None

    def roles_of(self, role: str) -> frozenset[str]:
        """A role and every role it inherits, PUBLIC included."""
        seen, pending = {"PUBLIC"}, [role]
        while pending:
            current = pending.pop()
            if current not in seen or current == role:
                seen.add(current)
                pending.extend(r for r in self.role_grants.get(current, ()) if r not in seen)
        return frozenset(seen)

    def available_roles(self, user: User) -> frozenset[str]:
        """Every role a user may USE: those granted, and those they inherit."""
        available: set[str] = set()
        for role in self.user_roles.get(user.name, {"PUBLIC"}):
            available |= self.roles_of(role)
        return frozenset(available)

    def active_roles(self, session: Session) -> frozenset[str]:
        """The primary role's hierarchy and the secondary roles' (ALL: every role granted to the user, as
        granted when the statement runs)."""
        roles = set(self.roles_of(session.role))
        if session.secondary_roles == ("ALL",):
            roles |= self.available_roles(session.user)
        else:
            granted = self.available_roles(session.user)
            for role in session.secondary_roles:
                if role in granted:
                    roles |= self.roles_of(role)
        return frozenset(roles)

    def access(self, session: Session) -> Access:
        return Access(session.role, self.roles_of(session.role), self.active_roles(session))

    def current_secondary_roles(self, session: Session) -> str:
        """CURRENT_SECONDARY_ROLES(): the active secondary roles granted to the user directly, and what was asked."""
        if session.secondary_roles == ("ALL",):
            active = sorted(r for r in self.user_roles.get(session.user.name, ()) if r not in ("PUBLIC", session.role))
            requested = "ALL"
        else:
            granted = self.available_roles(session.user)
            active = [r for r in session.secondary_roles if r in granted]
            requested = ",".join(session.secondary_roles)
        return json.dumps({"roles": ",".join(active), "value": requested}, separators=(",", ":"))

    def role_for_login(self, user: User, requested: str | None) -> str:
        role = normalise(requested) if requested else (user.default_role or "PUBLIC")
        if role not in self.available_roles(user):
            if requested:
                raise SnowflakeError(
                    390189,
                    f"Role '{role}' specified in the connect string is not granted to this user. "
                    "Contact your local system administrator, or attempt to login with another role, e.g. PUBLIC.",
                    "08004",
                )
            role = "PUBLIC"
        return role


@dataclass
class Context:
    """Where a statement runs: the account, the session, its current database and schema."""

    account: Account
    session: Session
    database: str | None = None
    schema: str | None = None

    @property
    def roles(self) -> frozenset[str]:
        """Every active role: what authorizes anything but a CREATE."""
        return self.account.active_roles(self.session)

    @property
    def primary(self) -> frozenset[str]:
        """The primary role and the roles it inherits: what authorizes a CREATE."""
        return self.account.roles_of(self.session.role)

    def require(self, role: str) -> None:
        """An active role must be, or inherit, this system role."""
        if role not in self.roles:
            raise insufficient_privileges("account", ACCOUNT_NAME)

    def require_to_create(self, privilege: str) -> None:
        """CREATE USER, ROLE, WAREHOUSE ...: the primary role must hold the account privilege (no system role
        bypasses it: SECURITYADMIN has no CREATE DATABASE)."""
        if not self.account.privileges.has(self.primary, privilege, ACCOUNT):
            raise primary_role_must_have(self.session.role, privilege, "ACCOUNT", "")


Rows = tuple[list[str], list[tuple]]
Handler = Callable[[Context, re.Match], Rows]


def status(message: str) -> Rows:
    return ["status"], [(message,)]


def success() -> Rows:
    return status("Statement executed successfully.")


def parse_properties(text: str) -> dict[str, str]:
    return {m.group(1).upper(): m.group(2) for m in _PROPERTY.finditer(text or "")}


def boolean(value: str) -> bool:
    return value.strip("'").upper() in ("TRUE", "YES", "1")


# -- users ---------------------------------------------------------------------

_USER_TEXT = {"COMMENT": "comment", "LOGIN_NAME": "login_name", "DISPLAY_NAME": "display_name", "EMAIL": "email"}
_USER_NAMES = {"DEFAULT_ROLE": "default_role", "DEFAULT_WAREHOUSE": "default_warehouse", "DEFAULT_NAMESPACE": "default_namespace"}
_USER_IGNORED = {"FIRST_NAME", "MIDDLE_NAME", "LAST_NAME", "NETWORK_POLICY", "DAYS_TO_EXPIRY", "MINS_TO_UNLOCK"}
_SECONDARY_ROLES = re.compile(r"^\(\s*(?:'ALL')?\s*\)$", re.I)
_USER_SECRETS = {"PASSWORD", "RSA_PUBLIC_KEY", "RSA_PUBLIC_KEY_2", "MUST_CHANGE_PASSWORD"}


def workload_identity(name: str, text: str) -> WorkloadIdentity:
    """`TYPE = AWS ARN = '...' [ISSUER = '...']`, with or without the surrounding parentheses."""
    text = text.strip()
    props = parse_properties(text[1:-1] if text.startswith("(") else text)
    kind = props.get("TYPE", "").upper()
    if kind != "AWS" or "ARN" not in props:
        raise SnowflakeError(
            2029, "SQL compilation error:\nThe local gateway verifies AWS workload identities: use TYPE = AWS ARN = '<IAM role ARN>'."
        )
    arn = unquote_literal(props["ARN"])
    if not (_ARN.match(arn) or _SESSION_ARN.match(arn)):
        raise SnowflakeError(
            2029, f"SQL compilation error:\ninvalid value '{arn}' for property 'ARN': an IAM role or user ARN is expected."
        )
    issuer = unquote_literal(props["ISSUER"]) if "ISSUER" in props else None
    return WorkloadIdentity(name=name, type=kind, arn=arn, issuer=issuer)


def apply_user_properties(user: User, props: dict[str, str]) -> None:
    for key, value in props.items():
        if key == "TYPE":
            if value.upper().strip("'") not in ("PERSON", "SERVICE", "LEGACY_SERVICE", "NULL"):
                raise SnowflakeError(2029, f"SQL compilation error:\ninvalid value '{value}' for property 'TYPE'")
            user.type = value.upper().strip("'")
        elif key == "WORKLOAD_IDENTITY":
            user.identities["DEFAULT"] = workload_identity("DEFAULT", value)
        elif key in _USER_NAMES:
            setattr(user, _USER_NAMES[key], ".".join(parts(unquote_literal(value))))
        elif key in _USER_TEXT:
            setattr(user, _USER_TEXT[key], unquote_literal(value))
        elif key == "DISABLED":
            user.disabled = boolean(value)
        elif key == "DEFAULT_SECONDARY_ROLES":
            # ( 'ALL' ) or (): CREATE USER's only values
            if not _SECONDARY_ROLES.match(value.strip()):
                raise SnowflakeError(2029, f"SQL compilation error:\ninvalid value '{value}' for property 'DEFAULT_SECONDARY_ROLES'")
            user.default_secondary_roles = ("ALL",) if "ALL" in value.upper() else ()
        elif key in _USER_SECRETS:
            raise SnowflakeError(
                2029, f"SQL compilation error:\nThe local gateway keeps no passwords or keys for users ({key}): use WORKLOAD_IDENTITY."
            )
        elif key not in _USER_IGNORED:
            raise SnowflakeError(2029, f"SQL compilation error:\ninvalid property '{key}' for 'USER'")


def existing_user(account: Account, raw_name: str, if_exists: str | None = None) -> User | None:
    name = normalise(raw_name)
    if name not in account.users:
        if if_exists:
            return None
        raise SnowflakeError(2003, f"SQL compilation error:\nUser '{name}' does not exist or not authorized.", "02000")
    return account.users[name]


def create_user(ctx: Context, m: re.Match) -> Rows:
    ctx.require_to_create("CREATE USER")
    account, name = ctx.account, normalise(m["name"])
    if name in account.users and not m["replace"]:
        if m["ifnot"]:
            return status(f"{name} already exists, statement succeeded.")
        raise already_exists(name)
    user = User(name=name, login_name=name, display_name=name, owner=ctx.session.role)
    apply_user_properties(user, parse_properties(m["rest"]))
    account.users[name] = user
    account.user_roles[name] = {"PUBLIC"}
    return status(f"User {name} successfully created.")


def alter_user_set(ctx: Context, m: re.Match) -> Rows:
    ctx.require("USERADMIN")
    if (user := existing_user(ctx.account, m["name"], m["ifexists"])) is None:
        return success()
    if m["action"].upper() == "SET":
        apply_user_properties(user, parse_properties(m["rest"]))
    else:
        for key in (k.strip().upper() for k in m["rest"].split(",")):
            if key == "WORKLOAD_IDENTITY":
                user.identities.pop("DEFAULT", None)
            elif key in _USER_NAMES:
                setattr(user, _USER_NAMES[key], None)
            elif key in _USER_TEXT:
                setattr(user, _USER_TEXT[key], None)
            elif key == "DEFAULT_SECONDARY_ROLES":
                user.default_secondary_roles = ("ALL",)  # unset is ('ALL') since BCR-1692
    return success()


def _identity_of_user(ctx: Context, m: re.Match) -> tuple[User | None, str]:
    """The user an ALTER USER ... ADD/REMOVE WORKLOAD IDENTITY names (None: IF EXISTS and no such user), and
    the identity's name."""
    ctx.require("USERADMIN")
    user = existing_user(ctx.account, m["name"], m["ifexists"]) if m["name"] else ctx.session.user
    return user, normalise(m["identity"])


def alter_user_add_workload_identity(ctx: Context, m: re.Match) -> Rows:
    user, name = _identity_of_user(ctx, m)
    if user is None:
        return success()
    if name == "DEFAULT":
        raise SnowflakeError(
            2029,
            "SQL compilation error:\nThe workload identity name DEFAULT is reserved for the WORKLOAD_IDENTITY property: use ALTER USER ... SET WORKLOAD_IDENTITY.",
        )
    if name in user.identities:
        raise already_exists(name)
    user.identities[name] = workload_identity(name, m["rest"])
    return success()


def alter_user_remove_workload_identity(ctx: Context, m: re.Match) -> Rows:
    user, name = _identity_of_user(ctx, m)
    if user is None:
        return success()
    if name == "DEFAULT":
        raise SnowflakeError(
            2029, "SQL compilation error:\nThe DEFAULT workload identity cannot be removed: use ALTER USER ... UNSET WORKLOAD_IDENTITY."
        )
    if user.identities.pop(name, None) is None:
        raise does_not_exist(name)
    return success()


def drop_user(ctx: Context, m: re.Match) -> Rows:
    ctx.require("USERADMIN")
    if existing_user(ctx.account, m["name"], m["ifexists"]) is None:
        return status(f"Drop statement executed successfully ({normalise(m['name'])} already dropped).")
    name = normalise(m["name"])
    del ctx.account.users[name]
    ctx.account.user_roles.pop(name, None)
    return status(f"{name} successfully dropped.")


def secondary_roles_text(roles: tuple[str, ...]) -> str:
    """How SHOW USERS and DESCRIBE USER write DEFAULT_SECONDARY_ROLES: ["ALL"], or [] for ()."""
    return json.dumps(list(roles))


def _text(value: Any) -> str | None:
    return None if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def describe_user(ctx: Context, m: re.Match) -> Rows:
    user = existing_user(ctx.account, m["name"])
    assert user is not None
    if user.name != ctx.session.user.name:
        ctx.require("USERADMIN")
    properties = [
        ("NAME", user.name, None, "Name"),
        ("COMMENT", user.comment, None, "user comment associated to an object in the dictionary"),
        ("DISPLAY_NAME", user.display_name, None, "Display name of the associated object"),
        ("TYPE", user.type, None, "Type of the user"),
        ("LOGIN_NAME", user.login_name, None, "Login name of the user"),
        ("EMAIL", user.email, None, "Email address of the user"),
        ("PASSWORD", "****" if user.password else None, None, "Password of the user"),
        ("DISABLED", user.disabled, False, "Whether the user is disabled"),
        ("DEFAULT_WAREHOUSE", user.default_warehouse, None, "Default warehouse for this user"),
        ("DEFAULT_NAMESPACE", user.default_namespace, None, "Default database namespace prefix for this user"),
        ("DEFAULT_ROLE", user.default_role, None, "Primary principal of user session will be set to this role"),
        (
            "DEFAULT_SECONDARY_ROLES",
            secondary_roles_text(user.default_secondary_roles),
            "[ALL]",
            "The secondary roles will be set to all roles provided here.",
        ),
        ("HAS_PASSWORD", bool(user.password), False, "Whether the user has a password"),
        ("HAS_RSA_PUBLIC_KEY", False, False, "Whether the user has an RSA public key"),
        ("HAS_MFA", False, False, "Whether the user is enrolled in multi-factor authentication"),
        ("HAS_PAT", False, False, "Whether the user has programmatic access tokens"),
        ("HAS_WORKLOAD_IDENTITY", bool(user.identities), False, "Whether the user authenticates with workload identity federation"),
    ]
    return ["property", "value", "default", "description"], [(p, _text(v), _text(d), text) for p, v, d, text in properties]


# The output's columns in the documentation's order, packed as the page lists them (hence fmt: skip).
SHOW_USERS_COLUMNS = [
    "name", "created_on", "login_name", "display_name", "first_name", "last_name", "email", "mins_to_unlock",
    "days_to_expiry", "comment", "disabled", "must_change_password", "snowflake_lock", "default_warehouse",
    "default_namespace", "default_role", "default_secondary_roles", "ext_authn_duo", "ext_authn_uid",
    "mins_to_bypass_mfa", "owner", "last_success_login", "expires_at_time", "locked_until_time", "has_password",
    "has_rsa_public_key", "type", "has_mfa", "has_pat", "has_workload_identity", "is_from_organization_user",
]  # fmt: skip
SHOW_USERS_TERSE = [
    "name",
    "created_on",
    "display_name",
    "first_name",
    "last_name",
    "email",
    "comment",
    "has_password",
    "has_rsa_public_key",
    "type",
    "has_mfa",
    "has_pat",
    "has_workload_identity",
    "is_from_organization_user",
]


def show_users(ctx: Context, m: re.Match) -> Rows:
    pattern = like(m["like"])
    starts = unquote_literal(m["starts"]) if m["starts"] else ""
    admin = "USERADMIN" in ctx.roles
    users = [
        u
        for u in sorted(ctx.account.users.values(), key=lambda u: u.name)
        if (pattern is None or pattern.fullmatch(u.name)) and u.name.startswith(starts) and (admin or u.name == ctx.session.user.name)
    ]
    rows = []
    for u in users:
        row = {
            "name": u.name,
            "created_on": u.created_on,
            "login_name": u.login_name,
            "display_name": u.display_name,
            "email": u.email,
            "comment": u.comment,
            "disabled": _text(u.disabled),
            "must_change_password": "false",  # pragma: allowlist secret (a column of SHOW USERS, not a password)
            "snowflake_lock": "false",
            "default_warehouse": u.default_warehouse,
            "default_namespace": u.default_namespace,
            "default_role": u.default_role,
            "default_secondary_roles": secondary_roles_text(u.default_secondary_roles),
            "ext_authn_duo": "false",
            "owner": u.owner,
            "last_success_login": u.last_success_login,
            "has_password": _text(bool(u.password)),
            "has_rsa_public_key": "false",
            "type": u.type,
            "has_mfa": "false",
            "has_pat": "false",
            "has_workload_identity": _text(bool(u.identities)),
            "is_from_organization_user": "false",
        }
        rows.append(row)
    columns = SHOW_USERS_TERSE if m["terse"] else SHOW_USERS_COLUMNS
    limit = int(m["limit"]) if m["limit"] else None
    return columns, [tuple(r.get(c) for c in columns) for r in rows[:limit]]


def show_workload_identity_methods(ctx: Context, m: re.Match) -> Rows:
    user = existing_user(ctx.account, m["name"]) if m["name"] else ctx.session.user
    assert user is not None
    if user.name != ctx.session.user.name:
        ctx.require("USERADMIN")
    columns = ["name", "type", "comment", "last_used", "created_on", "additional_info"]
    return columns, [(i.name, i.type, None, i.last_used, i.created_on, i.additional_info()) for i in user.identities.values()]


# -- roles ---------------------------------------------------------------------


def existing_role(account: Account, raw_name: str) -> str:
    name = normalise(raw_name)
    if name not in account.roles:
        raise SnowflakeError(2003, f"SQL compilation error:\nRole '{name}' does not exist or not authorized.", "02000")
    return name


def create_role(ctx: Context, m: re.Match) -> Rows:
    ctx.require_to_create("CREATE ROLE")
    account, name = ctx.account, normalise(m["name"])
    if name in account.roles and not m["replace"]:
        if m["ifnot"]:
            return status(f"{name} already exists, statement succeeded.")
        raise already_exists(name)
    props = parse_properties(m["rest"])
    account.roles[name] = Role(name, unquote_literal(props["COMMENT"]) if "COMMENT" in props else None, owner=ctx.session.role)
    return status(f"Role {name} successfully created.")


def drop_role(ctx: Context, m: re.Match) -> Rows:
    ctx.require("USERADMIN")
    account, name = ctx.account, normalise(m["name"])
    if name not in account.roles:
        if m["ifexists"]:
            return status(f"Drop statement executed successfully ({name} already dropped).")
        existing_role(account, name)
    if name in BUILTIN_ROLES:
        raise SnowflakeError(3001, f"SQL access control error:\nCannot drop system role '{name}'.", "42501")
    del account.roles[name]
    account.role_grants.pop(name, None)
    for granted in [*account.user_roles.values(), *account.role_grants.values()]:
        granted.discard(name)
    account.privileges.role_dropped(name)
    return status(f"{name} successfully dropped.")


def _may_grant_role(ctx: Context, role: str) -> None:
    if "SECURITYADMIN" not in ctx.roles and ctx.account.roles[role].owner not in ctx.roles:
        raise insufficient_privileges("role", role)


def grant_role(ctx: Context, m: re.Match) -> Rows:
    account = ctx.account
    role = existing_role(account, m["role"])
    _may_grant_role(ctx, role)
    if m["kind"].upper() == "USER":
        user = existing_user(account, m["grantee"])
        assert user is not None
        account.user_roles.setdefault(user.name, {"PUBLIC"}).add(role)
    else:
        grantee = existing_role(account, m["grantee"])
        if grantee in account.roles_of(role):
            raise SnowflakeError(3221, f"SQL compilation error:\nGranting role '{role}' to role '{grantee}' would create a cycle.")
        account.role_grants.setdefault(grantee, set()).add(role)
    return success()


def revoke_role(ctx: Context, m: re.Match) -> Rows:
    account = ctx.account
    role = existing_role(account, m["role"])
    _may_grant_role(ctx, role)
    grantees = account.user_roles if m["kind"].upper() == "USER" else account.role_grants
    grantees.get(normalise(m["grantee"]), set()).discard(role)
    return success()


def show_roles(ctx: Context, m: re.Match) -> Rows:
    account, pattern = ctx.account, like(m["like"])
    columns = [
        "created_on",
        "name",
        "is_default",
        "is_current",
        "is_inherited",
        "assigned_to_users",
        "granted_to_roles",
        "granted_roles",
        "owner",
        "comment",
        "owner_role_type",
    ]
    rows = []
    for role in sorted(account.roles.values(), key=lambda r: r.name):
        if pattern and not pattern.fullmatch(role.name):
            continue
        users = sum(role.name in granted for granted in account.user_roles.values())
        to_roles = sum(role.name in granted for granted in account.role_grants.values())
        current = ctx.session.role
        rows.append(
            (
                role.created_on,
                role.name,
                "Y" if role.name == ctx.session.user.default_role else "N",
                "Y" if role.name == current else "N",
                "Y" if role.name != current and role.name in ctx.primary else "N",
                users,
                to_roles,
                len(account.role_grants.get(role.name, ())),
                role.owner or "",
                role.comment or "",
                "ROLE" if role.owner else "",
            )
        )
    return columns, rows


def use_role(ctx: Context, m: re.Match) -> Rows:
    role = normalise(m["name"])
    if role not in ctx.account.available_roles(ctx.session.user):
        raise SnowflakeError(3013, f"SQL compilation error:\nRole '{role}' does not exist or not authorized.", "02000")
    ctx.session.role = role
    return success()


def use_secondary_roles(ctx: Context, m: re.Match) -> Rows:
    """USE SECONDARY ROLES ALL | NONE | r [, r ...]: each named role must be granted to the user, checked now."""
    words = [w.strip() for w in m["roles"].split(",")]
    if len(words) == 1 and words[0].upper() in ("ALL", "NONE"):
        ctx.session.secondary_roles = ("ALL",) if words[0].upper() == "ALL" else ()
        return success()
    roles = tuple(normalise(w) for w in words)
    granted = ctx.account.available_roles(ctx.session.user)
    for role in roles:
        if role not in granted:
            raise SnowflakeError(3013, f"SQL compilation error:\nRole '{role}' does not exist or not authorized.", "02000")
    ctx.session.secondary_roles = roles
    return success()


# -- warehouses ----------------------------------------------------------------


# CREATE WAREHOUSE's sizes and their synonyms, as SHOW WAREHOUSES writes each.
WAREHOUSE_SIZES = {
    **dict.fromkeys(("XSMALL", "X-SMALL"), "X-Small"),
    "SMALL": "Small",
    "MEDIUM": "Medium",
    "LARGE": "Large",
    **dict.fromkeys(("XLARGE", "X-LARGE"), "X-Large"),
    **dict.fromkeys(("XXLARGE", "X2LARGE", "2X-LARGE"), "2X-Large"),
    **dict.fromkeys(("XXXLARGE", "X3LARGE", "3X-LARGE"), "3X-Large"),
    **dict.fromkeys(("X4LARGE", "4X-LARGE"), "4X-Large"),
    **dict.fromkeys(("X5LARGE", "5X-LARGE"), "5X-Large"),
    **dict.fromkeys(("X6LARGE", "6X-LARGE"), "6X-Large"),
}


def warehouse_size(value: str) -> str:
    size = unquote_literal(value).upper()
    if size not in WAREHOUSE_SIZES:
        raise SnowflakeError(2029, f"SQL compilation error:\ninvalid value '{value}' for property 'WAREHOUSE_SIZE'")
    return WAREHOUSE_SIZES[size]


def create_warehouse(ctx: Context, m: re.Match) -> Rows:
    ctx.require_to_create("CREATE WAREHOUSE")
    account, name = ctx.account, normalise(m["name"])
    if name in account.warehouses and not m["replace"]:
        if m["ifnot"]:
            return status(f"{name} already exists, statement succeeded.")
        raise already_exists(name)
    props = parse_properties(m["rest"])
    warehouse = Warehouse(name, owner=ctx.session.role)
    warehouse.size = warehouse_size(props.get("WAREHOUSE_SIZE", "XSMALL"))
    warehouse.auto_suspend = int(props.get("AUTO_SUSPEND", "600")) if props.get("AUTO_SUSPEND", "600").isdigit() else 0
    warehouse.auto_resume = boolean(props.get("AUTO_RESUME", "TRUE"))
    warehouse.suspended = boolean(props.get("INITIALLY_SUSPENDED", "FALSE"))
    warehouse.comment = unquote_literal(props["COMMENT"]) if "COMMENT" in props else None
    account.warehouses[name] = warehouse
    account.privileges.created(Securable("WAREHOUSE", name), ctx.session.role)
    ctx.session.warehouse = name  # Snowflake makes a new warehouse the session's current one
    return status(f"Warehouse {name} successfully created.")


def existing_warehouse(ctx: Context, raw_name: str) -> Warehouse:
    name = normalise(raw_name)
    on = Securable("WAREHOUSE", name)
    if name not in ctx.account.warehouses or not (ctx.roles & ADMIN_ROLES or ctx.account.privileges.sees(ctx.roles, on)):
        raise does_not_exist(name)
    return ctx.account.warehouses[name]


def alter_warehouse(ctx: Context, m: re.Match) -> Rows:
    warehouse = existing_warehouse(ctx, m["name"])
    if not (ctx.roles & ADMIN_ROLES or ctx.account.privileges.has(ctx.roles, "MODIFY", Securable("WAREHOUSE", warehouse.name))):
        raise insufficient_privileges("warehouse", warehouse.name)
    action = m["action"].upper()
    if action in ("SUSPEND", "RESUME"):
        warehouse.suspended = action == "SUSPEND"
    return success()


def drop_warehouse(ctx: Context, m: re.Match) -> Rows:
    name = normalise(m["name"])
    if name not in ctx.account.warehouses and m["ifexists"]:
        return status(f"Drop statement executed successfully ({name} already dropped).")
    existing_warehouse(ctx, name)
    on = Securable("WAREHOUSE", name)
    if not (ctx.roles & ADMIN_ROLES or ctx.account.privileges.owner_of(on) in ctx.roles):
        raise insufficient_privileges("warehouse", name)
    del ctx.account.warehouses[name]
    ctx.account.privileges.forget(on)
    return status(f"{name} successfully dropped.")


def use_warehouse(ctx: Context, m: re.Match) -> Rows:
    name = normalise(m["name"])
    on = Securable("WAREHOUSE", name)
    usable = ctx.roles & ADMIN_ROLES or any(ctx.account.privileges.has(ctx.roles, p, on) for p in ("USAGE", "OPERATE"))
    if name not in ctx.account.warehouses or not usable:
        raise cannot_be_performed()
    warehouse = ctx.account.warehouses[name]
    ctx.session.warehouse = warehouse.name
    return success()


# The output's columns in the documentation's order, packed as the page lists them (hence fmt: skip).
SHOW_WAREHOUSES_COLUMNS = [
    "name", "state", "type", "size", "min_cluster_count", "max_cluster_count", "started_clusters", "running", "queued",
    "is_default", "is_current", "auto_suspend", "auto_resume", "available", "provisioning", "quiescing", "other",
    "created_on", "resumed_on", "updated_on", "owner", "comment", "enable_query_acceleration",
    "query_acceleration_max_scale_factor", "resource_monitor", "actives", "pendings", "failed", "suspended", "uuid",
    "scaling_policy", "budget", "owner_role_type", "resource_constraint",
]  # fmt: skip


def show_warehouses(ctx: Context, m: re.Match) -> Rows:
    pattern, rows = like(m["like"]), []
    for w in sorted(ctx.account.warehouses.values(), key=lambda w: w.name):
        visible = ctx.roles & ADMIN_ROLES or ctx.account.privileges.sees(ctx.roles, Securable("WAREHOUSE", w.name))
        if not visible or (pattern and not pattern.fullmatch(w.name)):
            continue
        values = {
            "name": w.name,
            "state": "SUSPENDED" if w.suspended else "STARTED",
            "type": "STANDARD",
            "size": w.size,
            "min_cluster_count": 1,
            "max_cluster_count": 1,
            "started_clusters": 0 if w.suspended else 1,
            "running": 0,
            "queued": 0,
            "is_default": "Y" if w.name == ctx.session.user.default_warehouse else "N",
            "is_current": "Y" if w.name == ctx.session.warehouse else "N",
            "auto_suspend": w.auto_suspend,
            "auto_resume": _text(w.auto_resume),
            "created_on": w.created_on,
            "resumed_on": w.created_on,
            "updated_on": w.created_on,
            "owner": w.owner,
            "comment": w.comment or "",
            "enable_query_acceleration": "false",
            "query_acceleration_max_scale_factor": 8,
            "scaling_policy": "STANDARD",
            "owner_role_type": "ROLE",
        }
        rows.append(tuple(values.get(c) for c in SHOW_WAREHOUSES_COLUMNS))
    return SHOW_WAREHOUSES_COLUMNS, rows


# -- privileges ----------------------------------------------------------------

_RELATION_WORDS = {"TABLE": "TABLE", "VIEW": "TABLE", "DYNAMIC TABLE": "TABLE", "MATERIALIZED VIEW": "TABLE", "EXTERNAL TABLE": "TABLE"}


def _privilege_names(text: str) -> list[str]:
    names = [" ".join(p.split()).upper() for p in text.split(",")]
    return ["ALL" if p in ("ALL", "ALL PRIVILEGES") else p for p in names]


def securable(ctx: Context, kind_text: str, name: str | None) -> Securable:
    """The object a GRANT names, resolved against the session and checked to exist."""
    kind = " ".join(kind_text.split()).upper()
    if kind == "ACCOUNT":
        return Securable("ACCOUNT", "")
    assert name is not None
    if kind == "WAREHOUSE":
        return Securable("WAREHOUSE", existing_warehouse(ctx, name).name)
    if kind == "DATABASE":
        on = Securable("DATABASE", qualified(name))
    elif kind == "SCHEMA":
        on = Securable("SCHEMA", qualified(name, ctx.database))
    elif kind in _RELATION_WORDS:
        on = Securable("TABLE", qualified(name, ctx.database, ctx.schema))
    elif kind in ("STAGE", "FILE FORMAT"):
        on = Securable(kind, qualified(name, ctx.database, ctx.schema))
    else:
        raise unsupported(f"GRANT ... ON {kind}")
    if on.name.count(".") != {"DATABASE": 0, "SCHEMA": 1, "TABLE": 2}[on.kind if on.kind not in ("STAGE", "FILE FORMAT") else "TABLE"]:
        raise SnowflakeError(
            90105,
            "Cannot perform GRANT. This session does not have a current database. Call 'USE DATABASE', or use a qualified name.",
            "22000",
        )
    if not ctx.account.catalog.exists(on):
        raise does_not_exist(on.name)
    return on


def _may_grant_on(ctx: Context, on: Securable) -> None:
    privileges = ctx.account.privileges
    if not (ctx.roles & ADMIN_ROLES or privileges.owner_of(on) in ctx.roles):
        raise insufficient_privileges(on.kind if on.kind != "ACCOUNT" else "account", on.short_name or ACCOUNT_NAME)


def _bulk_targets(ctx: Context, m: re.Match) -> list[Securable] | Securable:
    """ON ALL TABLES IN SCHEMA s -> each table now there; ON FUTURE ... -> the container (for later)."""
    container = securable(ctx, m["container"], m["container_name"])
    if m["scope"].upper() == "FUTURE":
        return container
    return [Securable("TABLE", name) for name in ctx.account.catalog.tables_in(container)]


def _privilege_targets(ctx: Context, m: re.Match) -> tuple[Securable | None, list[Securable]]:
    """(the container, []) for a FUTURE grant, else (None, the objects); each checked as grantable by the session."""
    if m["scope"]:
        targets = _bulk_targets(ctx, m)
        if isinstance(targets, Securable):
            _may_grant_on(ctx, targets)
            return targets, []
    else:
        targets = [securable(ctx, m["kind"], m["object"])]
    for on in targets:
        _may_grant_on(ctx, on)
    return None, targets


def grant_privileges(ctx: Context, m: re.Match) -> Rows:
    account, role = ctx.account, existing_role(ctx.account, m["role"])
    future, targets = _privilege_targets(ctx, m)
    for privilege in _privilege_names(m["privileges"]):
        if future is not None:
            account.privileges.grant_future(privilege, future, role)
            continue
        if privilege == "OWNERSHIP" and targets:
            raise SnowflakeError(3011, "SQL compilation error:\nGrant OWNERSHIP with GRANT OWNERSHIP ON ... TO ROLE ....")
        for on in targets:
            account.privileges.grant(privilege, on, role, grant_option=bool(m["option"]), granted_by=ctx.session.role)
    return success()


def revoke_privileges(ctx: Context, m: re.Match) -> Rows:
    account, role = ctx.account, existing_role(ctx.account, m["role"])
    future, targets = _privilege_targets(ctx, m)
    for privilege in _privilege_names(m["privileges"]):
        if future is not None:
            account.privileges.revoke_future(privilege, future, role)
        for on in targets:
            account.privileges.revoke(privilege, on, role)
    return success()


def grant_ownership(ctx: Context, m: re.Match) -> Rows:
    role = existing_role(ctx.account, m["role"])
    targets = _bulk_targets(ctx, m) if m["scope"] else [securable(ctx, m["kind"], m["object"])]
    if isinstance(targets, Securable):
        raise unsupported("GRANT OWNERSHIP ON FUTURE ...")
    current = m["current"].split()[0].upper() if m["current"] else None
    for on in targets:  # one by one: a dependent grant stops the move where it stands
        _may_grant_on(ctx, on)
        ctx.account.privileges.transfer_ownership(on, role, current_grants=current)
    return success()


GRANT_COLUMNS = ["created_on", "privilege", "granted_on", "name", "granted_to", "grantee_name", "grant_option", "granted_by"]


def _grant_rows(grants: list, role_rows: list[tuple]) -> list[tuple]:
    rows = [
        (g.created_on, g.privilege, g.on.kind, g.on.name or ACCOUNT_NAME, "ROLE", g.role, _text(g.grant_option), g.granted_by)
        for g in grants
    ]
    return [*role_rows, *rows]


def show_grants(ctx: Context, m: re.Match) -> Rows:
    account, privileges = ctx.account, ctx.account.privileges
    if m["to_role"]:
        role = existing_role(account, m["to_role"])
        inherited = [
            (account.roles[r].created_on, "USAGE", "ROLE", r, "ROLE", role, "false", "") for r in sorted(account.role_grants.get(role, ()))
        ]
        return GRANT_COLUMNS, _grant_rows(privileges.of_role(role), inherited)
    if m["to_user"] or m["of_role"]:
        columns = ["created_on", "role", "granted_to", "grantee_name", "granted_by"]
        if m["to_user"]:
            user = existing_user(account, m["to_user"])
            assert user is not None
            return columns, [
                (user.created_on, r, "USER", user.name, "") for r in sorted(account.user_roles.get(user.name, ())) if r != "PUBLIC"
            ]
        role = existing_role(account, m["of_role"])
        users = [(account.roles[role].created_on, role, "USER", u, "") for u, rs in sorted(account.user_roles.items()) if role in rs]
        roles = [(account.roles[role].created_on, role, "ROLE", r, "") for r, rs in sorted(account.role_grants.items()) if role in rs]
        return columns, [*roles, *users]
    on = securable(ctx, m["kind"], m["object"])
    return GRANT_COLUMNS, _grant_rows(privileges.on_object(on), [])


def show_future_grants(ctx: Context, m: re.Match) -> Rows:
    container = securable(ctx, m["container"], m["container_name"])
    columns = ["created_on", "privilege", "grant_on", "name", "grant_to", "grantee_name", "grant_option"]
    rows = [
        (None, f.privilege, "TABLE", f"{f.container.name}.<TABLE>", "ROLE", f.role, "false")
        for f in sorted(ctx.account.privileges.future, key=lambda f: (f.role, f.privilege))
        if f.container == container
    ]
    return columns, rows


# -- the statement table -------------------------------------------------------

_N = NAME.pattern
_IFNOT = r"(?:(?P<ifnot>IF\s+NOT\s+EXISTS)\s+)?"
_IFEXISTS = r"(?:(?P<ifexists>IF\s+EXISTS)\s+)?"
_REPLACE = r"(?:(?P<replace>OR\s+REPLACE)\s+)?"
_LIKE = r"(?:\s+LIKE\s+(?P<like>'(?:[^']|'')*'))?"
_KIND = r"(?P<kind>ACCOUNT|WAREHOUSE|DATABASE|SCHEMA|TABLE|STAGE|FILE\s+FORMAT|VIEW|DYNAMIC\s+TABLE|MATERIALIZED\s+VIEW|EXTERNAL\s+TABLE)"
_BULK = r"(?P<scope>ALL|FUTURE)\s+(?:TABLES|DYNAMIC\s+TABLES|VIEWS)\s+IN\s+(?P<container>SCHEMA|DATABASE)\s+(?P<container_name>" + _N + ")"
_TARGET = rf"(?:{_BULK}|{_KIND}(?:\s+(?P<object>{_N}))?)"

STATEMENTS: list[tuple[str, Handler]] = [
    (rf"CREATE\s+{_REPLACE}USER\s+{_IFNOT}(?P<name>{_N})(?P<rest>.*)", create_user),
    (
        rf"ALTER\s+USER\s+{_IFEXISTS}(?:(?P<name>{_N})\s+)?ADD\s+WORKLOAD\s+IDENTITY\s+(?P<identity>{_N})\s+(?P<rest>TYPE\s*=.*)",
        alter_user_add_workload_identity,
    ),
    (
        rf"ALTER\s+USER\s+{_IFEXISTS}(?:(?P<name>{_N})\s+)?REMOVE\s+WORKLOAD\s+IDENTITY\s+(?P<identity>{_N})",
        alter_user_remove_workload_identity,
    ),
    (rf"ALTER\s+USER\s+{_IFEXISTS}(?P<name>{_N})\s+(?P<action>SET|UNSET)\s+(?P<rest>.*)", alter_user_set),
    (rf"DROP\s+USER\s+{_IFEXISTS}(?P<name>{_N})", drop_user),
    (rf"(?:DESC|DESCRIBE)\s+USER\s+(?P<name>{_N})", describe_user),
    (
        rf"SHOW\s+(?P<terse>TERSE\s+)?USERS{_LIKE}(?:\s+STARTS\s+WITH\s+(?P<starts>'(?:[^']|'')*'))?(?:\s+LIMIT\s+(?P<limit>\d+))?",
        show_users,
    ),
    (rf"SHOW\s+USER\s+WORKLOAD\s+IDENTITY\s+AUTHENTICATION\s+METHODS(?:\s+FOR\s+USER\s+(?P<name>{_N}))?", show_workload_identity_methods),
    (rf"CREATE\s+{_REPLACE}ROLE\s+{_IFNOT}(?P<name>{_N})(?P<rest>.*)", create_role),
    (rf"DROP\s+ROLE\s+{_IFEXISTS}(?P<name>{_N})", drop_role),
    (rf"SHOW\s+ROLES{_LIKE}", show_roles),
    (rf"GRANT\s+ROLE\s+(?P<role>{_N})\s+TO\s+(?P<kind>USER|ROLE)\s+(?P<grantee>{_N})", grant_role),
    (rf"REVOKE\s+ROLE\s+(?P<role>{_N})\s+FROM\s+(?P<kind>USER|ROLE)\s+(?P<grantee>{_N})", revoke_role),
    (rf"USE\s+ROLE\s+(?P<name>{_N})", use_role),
    (rf"USE\s+SECONDARY\s+ROLES\s+(?P<roles>{_N}(?:\s*,\s*{_N})*)", use_secondary_roles),
    (rf"CREATE\s+{_REPLACE}WAREHOUSE\s+{_IFNOT}(?P<name>{_N})(?P<rest>.*)", create_warehouse),
    (rf"ALTER\s+WAREHOUSE\s+(?:IF\s+EXISTS\s+)?(?P<name>{_N})\s+(?P<action>SUSPEND|RESUME|SET|UNSET)\b.*", alter_warehouse),
    (rf"DROP\s+WAREHOUSE\s+{_IFEXISTS}(?P<name>{_N})", drop_warehouse),
    (rf"USE\s+WAREHOUSE\s+(?P<name>{_N})", use_warehouse),
    (rf"SHOW\s+WAREHOUSES{_LIKE}", show_warehouses),
    (
        rf"GRANT\s+OWNERSHIP\s+ON\s+{_TARGET}\s+TO\s+ROLE\s+(?P<role>{_N})(?:\s+(?P<current>(?:COPY|REVOKE)\s+CURRENT\s+GRANTS))?",
        grant_ownership,
    ),
    (
        rf"GRANT\s+(?P<privileges>[A-Z ,]+?)\s+ON\s+{_TARGET}\s+TO\s+ROLE\s+(?P<role>{_N})(?P<option>\s+WITH\s+GRANT\s+OPTION)?",
        grant_privileges,
    ),
    (
        rf"REVOKE\s+(?:GRANT\s+OPTION\s+FOR\s+)?(?P<privileges>[A-Z ,]+?)\s+ON\s+{_TARGET}\s+FROM\s+ROLE\s+(?P<role>{_N})(?:\s+(?:CASCADE|RESTRICT))?",
        revoke_privileges,
    ),
    (
        rf"SHOW\s+GRANTS\s+(?:TO\s+ROLE\s+(?P<to_role>{_N})|TO\s+USER\s+(?P<to_user>{_N})|OF\s+ROLE\s+(?P<of_role>{_N})|ON\s+{_KIND}(?:\s+(?P<object>{_N}))?)",
        show_grants,
    ),
    (rf"SHOW\s+FUTURE\s+GRANTS\s+IN\s+(?P<container>SCHEMA|DATABASE)\s+(?P<container_name>{_N})", show_future_grants),
]
COMPILED = [(re.compile(rf"^\s*{pattern}\s*;?\s*$", re.I | re.S), handler) for pattern, handler in STATEMENTS]
# What else looks like an account statement: it must fail by name, never reach the engine as a silent no-op.
ACCOUNT_STATEMENT = re.compile(
    r"^\s*(CREATE|ALTER|DROP|SHOW|DESC|DESCRIBE|USE|UNDROP)\s+(?:OR\s+REPLACE\s+)?(?:TERSE\s+)?(?:SECONDARY\s+)?(USERS?|ROLES?|GRANTS?|WAREHOUSES?|DATABASE\s+ROLES?|NETWORK\s+POLIC(?:Y|IES)|AUTHENTICATION\s+POLIC(?:Y|IES)|(?:SECURITY\s+|STORAGE\s+|API\s+)?INTEGRATIONS?)\b"
    r"|^\s*(GRANT|REVOKE)\b",
    re.I,
)


def execute_account_statement(
    account: Account, session: Session, sql: str, database: str | None = None, schema: str | None = None
) -> Rows | None:
    """Run sql if it is an account statement; None means it is for the SQL engine."""
    for pattern, handler in COMPILED:
        if m := pattern.match(sql):
            with account.lock:
                return handler(Context(account, session, database, schema), m)
    if ACCOUNT_STATEMENT.match(sql):
        raise unsupported(sql)
    return None
