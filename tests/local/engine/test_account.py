"""A fresh account as Snowflake makes one, and who authorizes what: the primary role a CREATE, any active role
(primary or secondary) everything else. In-process, with the gateway's account layer and a catalog of its own."""

from __future__ import annotations

import pytest

from widf_local.gateway.accounts import Account, Session, User, execute_account_statement
from widf_local.gateway.errors import SnowflakeError
from widf_local.gateway.grants import Securable, authorize, needs, parse
from widf_local.gateway.show import execute_show_statement
from widf_local.gateway.statements import with_session_context
from widf_local.gateway.variables import assignments, checked_value

D, PUBLIC, LANDING = Securable("DATABASE", "D"), Securable("SCHEMA", "D.PUBLIC"), Securable("SCHEMA", "D.LANDING")


class Catalog:
    """What the engine would hold: database D with PUBLIC and LANDING, a table in each."""

    tables_by_schema = {"D.PUBLIC": ["D.PUBLIC.SECRET"], "D.LANDING": ["D.LANDING.RAW_DATA"]}

    def exists(self, on: Securable) -> bool:
        return on.kind in ("ACCOUNT", "WAREHOUSE") or on.name in ("D", *self.tables_by_schema, *sum(self.tables_by_schema.values(), []))

    def tables_in(self, container: Securable) -> list[str]:
        return [t for t in self.tables() if container.contains(Securable("TABLE", t))]

    def databases(self) -> list[str]:
        return ["D"]

    def schemas(self, database: str) -> list[str]:
        return ["LANDING", "PUBLIC"] if database == "D" else []

    def tables(self, database: str | None = None, schema: str | None = None) -> list[str]:
        found = sorted(sum(self.tables_by_schema.values(), []))
        return [t for t in found if (database is None or t.split(".")[0] == database) and (schema is None or t.split(".")[1] == schema)]

    def count_rows(self, table: str) -> int:
        return 0


@pytest.fixture
def account() -> Account:
    """ACCOUNTADMIN made D (and its PUBLIC), handed D to OWNER_ROLE, which made LANDING and RAW_DATA; the user
    ANALYST holds OWNER_ROLE and READER, and works as READER."""
    account = Account(catalog=Catalog())
    for role in ("OWNER_ROLE", "READER"):
        execute_account_statement(account, admin(account), f"CREATE ROLE {role}")
    account.privileges.created(D, "ACCOUNTADMIN")
    account.privileges.created(PUBLIC, "ACCOUNTADMIN")
    account.privileges.created(Securable("TABLE", "D.PUBLIC.SECRET"), "ACCOUNTADMIN")
    execute_account_statement(account, admin(account), "GRANT OWNERSHIP ON DATABASE D TO ROLE OWNER_ROLE")
    account.privileges.created(LANDING, "OWNER_ROLE")
    account.privileges.created(Securable("TABLE", "D.LANDING.RAW_DATA"), "OWNER_ROLE")
    account.users["ANALYST"] = User("ANALYST")
    account.user_roles["ANALYST"] = {"PUBLIC", "OWNER_ROLE", "READER"}
    return account


def admin(account: Account) -> Session:
    account.users.setdefault("ADMIN", User("ADMIN"))
    account.user_roles["ADMIN"] = {"ACCOUNTADMIN", "PUBLIC"}
    return Session(account.users["ADMIN"], "ACCOUNTADMIN")


def analyst(account: Account, role: str = "READER") -> Session:
    return Session(account.users["ANALYST"], role, secondary_roles=account.users["ANALYST"].default_secondary_roles)


def run(account: Account, session: Session, sql: str, database: str | None = "D", schema: str | None = None) -> None:
    """A statement the engine would run, checked as the gateway checks it."""
    authorize(account.privileges, account.access(session), needs(parse(sql), database, schema))


def show(account: Account, session: Session, sql: str, database: str | None = "D") -> list[dict]:
    found = execute_show_statement(account, session, sql, database, None)
    assert found is not None
    columns, rows = found
    return [dict(zip(columns, row, strict=True)) for row in rows]


def test_a_fresh_account_has_a_trial_warehouse_that_create_if_not_exists_leaves_alone(account):
    session = admin(account)
    assert execute_account_statement(account, session, "CREATE WAREHOUSE IF NOT EXISTS COMPUTE_WH WAREHOUSE_SIZE = LARGE") == (
        ["status"],
        [("COMPUTE_WH already exists, statement succeeded.",)],
    )
    rows = execute_account_statement(account, session, "SHOW WAREHOUSES LIKE 'COMPUTE_WH'")
    assert rows is not None
    [warehouse] = [dict(zip(rows[0], row, strict=True)) for row in rows[1]]
    assert (warehouse["size"], warehouse["state"], warehouse["auto_suspend"], warehouse["auto_resume"], warehouse["owner"]) == (
        "X-Small",
        "SUSPENDED",
        600,
        "true",
        "SYSADMIN",
    )
    execute_account_statement(account, session, "GRANT USAGE ON WAREHOUSE COMPUTE_WH TO ROLE READER")
    execute_account_statement(account, analyst(account), "USE WAREHOUSE COMPUTE_WH")


def test_a_warehouse_size_is_shown_as_snowflake_writes_it(account):
    session = admin(account)
    execute_account_statement(account, session, "CREATE WAREHOUSE BIG WAREHOUSE_SIZE = 'X-LARGE'")
    execute_account_statement(account, session, "CREATE WAREHOUSE BIGGER WAREHOUSE_SIZE = XXLARGE")
    rows = execute_account_statement(account, session, "SHOW WAREHOUSES LIKE 'BIG%'")
    assert rows is not None
    assert [(row[0], row[rows[0].index("size")]) for row in rows[1]] == [("BIG", "X-Large"), ("BIGGER", "2X-Large")]
    with pytest.raises(SnowflakeError, match="invalid value 'HUGE' for property 'WAREHOUSE_SIZE'"):
        execute_account_statement(account, session, "CREATE WAREHOUSE HUGE_WH WAREHOUSE_SIZE = HUGE")


def test_a_database_handed_over_keeps_its_public_schema_with_the_role_that_made_it(account):
    assert account.privileges.owner_of(D) == "OWNER_ROLE"
    assert account.privileges.owner_of(PUBLIC) == "ACCOUNTADMIN"


def test_secondary_roles_authorize_use_and_select_but_never_create(account):
    session = analyst(account)  # READER, with ('ALL') secondary roles: OWNER_ROLE among them
    run(account, session, "USE SCHEMA LANDING")
    run(account, session, "SELECT * FROM D.LANDING.RAW_DATA")
    with pytest.raises(SnowflakeError) as refused:
        run(account, session, "CREATE TABLE D.LANDING.MORE (A INT)")
    assert refused.value.message == (
        "SQL access control error:\nInsufficient privileges to operate on schema 'LANDING'. "
        "Your primary role READER must have CREATE TABLE granted on SCHEMA D.LANDING."
    )
    run(account, analyst(account, "OWNER_ROLE"), "CREATE TABLE D.LANDING.MORE (A INT)")  # the primary role owns it


def test_without_secondary_roles_only_the_primary_role_counts(account):
    session = analyst(account)
    execute_account_statement(account, session, "USE SECONDARY ROLES NONE")
    with pytest.raises(SnowflakeError, match="Object does not exist, or operation cannot be performed."):
        run(account, session, "USE SCHEMA LANDING")
    assert account.current_secondary_roles(session) == '{"roles":"","value":""}'
    execute_account_statement(account, session, "USE SECONDARY ROLES OWNER_ROLE")
    run(account, session, "USE SCHEMA LANDING")
    assert account.current_secondary_roles(session) == '{"roles":"OWNER_ROLE","value":"OWNER_ROLE"}'
    execute_account_statement(account, session, "USE SECONDARY ROLES ALL")
    assert account.current_secondary_roles(session) == '{"roles":"OWNER_ROLE","value":"ALL"}', "granted directly, the primary aside"
    with pytest.raises(SnowflakeError, match="Role 'ACCOUNTADMIN' does not exist or not authorized."):
        execute_account_statement(account, session, "USE SECONDARY ROLES ACCOUNTADMIN")


def test_the_public_schema_case_fails_at_create_table_not_before(account):
    """The trial script's sequence: OWNER_ROLE owns D, ACCOUNTADMIN (an active secondary role of its user) owns
    PUBLIC. Using PUBLIC passes; creating a table in it is the primary role's to authorize, and it may not."""
    account.user_roles["ADMIN"] = {"ACCOUNTADMIN", "OWNER_ROLE", "PUBLIC"}
    session = Session(account.users["ADMIN"], "OWNER_ROLE")
    run(account, session, "CREATE SCHEMA IF NOT EXISTS PUBLIC")
    run(account, session, "USE SCHEMA PUBLIC")
    with pytest.raises(SnowflakeError, match="Your primary role OWNER_ROLE must have CREATE TABLE granted on SCHEMA D.PUBLIC."):
        run(account, session, "CREATE TABLE IF NOT EXISTS RAW_DATA (A INT)", schema="PUBLIC")
    run(account, session, "CREATE SCHEMA IF NOT EXISTS EVENTS")  # a new schema: OWNER_ROLE owns the database


def test_an_account_privilege_has_no_administrative_bypass(account):
    session = admin(account)
    execute_account_statement(account, session, "USE ROLE SECURITYADMIN")
    with pytest.raises(SnowflakeError) as refused:
        run(account, session, "CREATE DATABASE ELSEWHERE")
    assert refused.value.message.endswith(
        "Insufficient privileges to operate on account 'LOCAL'. Your primary role SECURITYADMIN must have CREATE DATABASE granted on ACCOUNT."
    )
    execute_account_statement(account, session, "CREATE ROLE MADE_BY_SECURITYADMIN")  # it inherits USERADMIN's CREATE ROLE


def test_grant_ownership_moves_one_object_and_is_blocked_by_its_grants(account):
    session = admin(account)
    execute_account_statement(account, session, "GRANT USAGE ON DATABASE D TO ROLE READER")
    with pytest.raises(SnowflakeError) as refused:
        execute_account_statement(account, session, "GRANT OWNERSHIP ON DATABASE D TO ROLE READER")
    assert refused.value.code == 3036 and refused.value.message.startswith(
        "SQL execution error: Dependent grant of privilege 'USAGE' on securable 'D' to role 'READER' exists.  It must be revoked first."
    )
    execute_account_statement(account, session, "GRANT OWNERSHIP ON DATABASE D TO ROLE OWNER_ROLE")  # its owner already
    execute_account_statement(account, session, "GRANT OWNERSHIP ON DATABASE D TO ROLE READER COPY CURRENT GRANTS")
    [usage] = [g for g in account.privileges.on_object(D) if g.privilege == "USAGE"]
    assert (usage.role, usage.granted_by) == ("READER", "READER"), "the new owner grants the copied privileges"
    assert account.privileges.owner_of(LANDING) == "OWNER_ROLE", "what the database holds keeps its owner"


def test_show_lists_what_an_active_role_may_see(account):
    session = analyst(account)
    assert [(s["name"], s["owner"]) for s in show(account, session, "SHOW SCHEMAS IN DATABASE D")] == [
        ("INFORMATION_SCHEMA", ""),
        ("LANDING", "OWNER_ROLE"),
    ]
    assert [t["name"] for t in show(account, session, "SHOW TABLES IN ACCOUNT")] == ["RAW_DATA"]
    assert [t["name"] for t in show(account, admin(account), "SHOW TABLES")] == ["RAW_DATA", "SECRET"]
    with pytest.raises(SnowflakeError, match="Schema 'D.PUBLIC' does not exist or not authorized."):
        show(account, session, "SHOW TABLES IN SCHEMA D.PUBLIC")
    execute_account_statement(account, session, "USE SECONDARY ROLES NONE")
    assert show(account, session, "SHOW DATABASES") == []


def test_users_get_all_their_roles_as_secondary_roles_unless_set_otherwise(account):
    session = admin(account)
    execute_account_statement(account, session, "CREATE USER SOLO DEFAULT_SECONDARY_ROLES = ()")
    execute_account_statement(account, session, "CREATE USER DEFAULTED")
    rows = execute_account_statement(account, session, "SHOW USERS")
    assert rows is not None
    index = rows[0].index("default_secondary_roles")
    secondary = {row[0]: row[index] for row in rows[1]}
    assert (secondary["SOLO"], secondary["DEFAULTED"]) == ("[]", '["ALL"]')
    execute_account_statement(account, session, "ALTER USER SOLO UNSET DEFAULT_SECONDARY_ROLES")
    assert account.users["SOLO"].default_secondary_roles == ("ALL",)
    with pytest.raises(SnowflakeError, match="invalid value"):
        execute_account_statement(account, session, "ALTER USER SOLO SET DEFAULT_SECONDARY_ROLES = ('READER')")


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("SET current_user = (SELECT CURRENT_USER())", [("CURRENT_USER", "(SELECT CURRENT_USER())")]),
        (
            "SET (current_user, current_warehouse) = ((SELECT 1), 'x, y');",
            [("CURRENT_USER", "(SELECT 1)"), ("CURRENT_WAREHOUSE", "'x, y'")],
        ),
        ("set current_role = 'R' -- a comment", [("CURRENT_ROLE", "'R'")]),
        ("ALTER SESSION SET QUERY_TAG = 'x'", None),
    ],
)
def test_a_variable_may_have_any_legal_name(sql, expected):
    assert assignments(sql) == expected


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SET (a, b) = (1)", "the numbers must match"),
        ("SET public = 1", "reserved"),
        ("SET (a, b) = 1, 2", "parenthesised list"),
    ],
)
def test_a_set_snowflake_refuses_is_refused(sql, message):
    with pytest.raises(SnowflakeError, match=message):
        assignments(sql)


def test_a_variable_holds_at_most_16_kb():
    assert checked_value("V", "x" * 16384) == "x" * 16384
    with pytest.raises(
        SnowflakeError, match="Assignment to 'V' not done because value exceeds size limit for variables. Its size is 16385"
    ):
        checked_value("V", "x" * 16385)


def test_a_statement_kept_by_its_text_answers_each_session_with_its_own_user_and_role():
    """The gateway keeps a statement's session-context rewrite by its text and the session's values: a second
    user, or the same user after USE ROLE, must not get the first one's answer."""
    statement = "INSERT INTO T (LOADED_BY, ROLE) SELECT ?, ? WHERE CURRENT_USER() <> CURRENT_ROLE()"
    loader = Session(user=User(name="LOADER_BOT"), role="LOADER_ROLE")
    analyst = Session(user=User(name="ANALYST"), role="ANALYST_ROLE")
    assert with_session_context(statement, loader).endswith("WHERE 'LOADER_BOT' <> 'LOADER_ROLE'")
    assert with_session_context(statement, analyst).endswith("WHERE 'ANALYST' <> 'ANALYST_ROLE'")
    loader.role = "PUBLIC"
    assert with_session_context(statement, loader).endswith("WHERE 'LOADER_BOT' <> 'PUBLIC'")
