"""Ordinary admin statements run against the gateway as they run in Snowflake, through the real connector."""

from __future__ import annotations

import json

import pytest
from snowflake.connector.errors import ProgrammingError

from helpers import become_role, connect_with_workload_identity
from widf_cli.local_stack import admin_connection
from widf_loader.warehouse import packed_records
from widf_local import aws

# The output's columns in the documentation's order, packed as the page lists them (hence fmt: skip).
SHOW_USERS_COLUMNS = [  # https://docs.snowflake.com/en/sql-reference/sql/show-users, Output
    "name", "created_on", "login_name", "display_name", "first_name", "last_name", "email", "mins_to_unlock",
    "days_to_expiry", "comment", "disabled", "must_change_password", "snowflake_lock", "default_warehouse",
    "default_namespace", "default_role", "default_secondary_roles", "ext_authn_duo", "ext_authn_uid",
    "mins_to_bypass_mfa", "owner", "last_success_login", "expires_at_time", "locked_until_time", "has_password",
    "has_rsa_public_key", "type", "has_mfa", "has_pat", "has_workload_identity", "is_from_organization_user",
]  # fmt: skip
METHODS_COLUMNS = ["name", "type", "comment", "last_used", "created_on", "additional_info"]
GRANTS_COLUMNS = ["created_on", "privilege", "granted_on", "name", "granted_to", "grantee_name", "grant_option", "granted_by"]


@pytest.fixture(scope="module")
def admin(stack):
    with admin_connection(stack.info) as connection:
        yield connection


def run(connection, sql: str) -> tuple[list[str], list[tuple]]:
    cursor = connection.cursor().execute(sql)
    return [c[0] for c in cursor.description], cursor.fetchall()


def refused(connection, sql: str) -> str:
    with pytest.raises(ProgrammingError) as error:
        connection.cursor().execute(sql)
    return error.value.raw_msg


def records(connection, sql: str) -> list[dict]:
    columns, rows = run(connection, sql)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def test_session_variables_name_objects_through_identifier(admin):
    for statement in (
        "USE ROLE ACCOUNTADMIN",
        "SET analyst_role = 'ANALYST_ROLE'",
        "SET me = (SELECT CURRENT_USER())",
        "CREATE ROLE IF NOT EXISTS IDENTIFIER($analyst_role) COMMENT = 'reads reports'",
        "GRANT ROLE IDENTIFIER($analyst_role) TO USER IDENTIFIER($me)",
        "USE ROLE IDENTIFIER($analyst_role)",
    ):
        admin.cursor().execute(statement)
    assert run(admin, "SELECT CURRENT_ROLE(), $me") == (["CURRENT_ROLE()", "'WIDF_LOCAL_ADMIN'"], [("ANALYST_ROLE", "WIDF_LOCAL_ADMIN")])
    admin.cursor().execute("USE ROLE ACCOUNTADMIN")
    admin.cursor().execute("UNSET me")
    assert refused(admin, "SELECT $me") == "SQL compilation error:\nSession variable '$ME' does not exist"


def test_variables_take_any_legal_name_and_are_set_together(admin):
    """The Variables page's own example names its variables after functions; SET evaluates every expression
    before it sets any (SET's example: $max from the old $min)."""
    admin.cursor().execute("SET (current_user, min, max) = ((SELECT CURRENT_USER()), 40, 70)")
    admin.cursor().execute("SET (min, max) = (50, 2 * $min)")
    assert run(admin, "SELECT $current_user, $min, $max")[1] == [("WIDF_LOCAL_ADMIN", 50, 80)]
    assert [(v["name"], v["value"], v["type"]) for v in records(admin, "SHOW VARIABLES LIKE 'M%'")] == [
        ("MAX", "80", "fixed"),
        ("MIN", "50", "fixed"),
    ]
    admin.cursor().execute("UNSET (min, max)")
    assert refused(admin, "SELECT $max") == "SQL compilation error:\nSession variable '$MAX' does not exist"
    assert "the numbers must match" in refused(admin, "SET (a, b) = (1)")


def test_use_role_needs_the_role_granted(admin):
    admin.cursor().execute("CREATE ROLE IF NOT EXISTS UNGRANTED_ROLE")
    assert refused(admin, "USE ROLE UNGRANTED_ROLE") == "SQL compilation error:\nRole 'UNGRANTED_ROLE' does not exist or not authorized."
    admin.cursor().execute("GRANT ROLE UNGRANTED_ROLE TO ROLE SYSADMIN")  # ACCOUNTADMIN inherits SYSADMIN, which now inherits it
    admin.cursor().execute("USE ROLE UNGRANTED_ROLE")
    admin.cursor().execute("USE ROLE ACCOUNTADMIN")


def test_users_are_shown_and_described_with_snowflakes_columns(admin):
    admin.cursor().execute(
        "CREATE USER IF NOT EXISTS REPORT_BOT TYPE = SERVICE DEFAULT_ROLE = PUBLIC "
        "WORKLOAD_IDENTITY = (TYPE = AWS ARN = 'arn:aws:iam::123456789012:role/reports') COMMENT = 'builds reports'"
    )
    columns, rows = run(admin, "SHOW USERS LIKE 'report%'")
    assert columns == SHOW_USERS_COLUMNS
    user = dict(zip(columns, rows[0], strict=True))
    assert (user["name"], user["type"], user["has_workload_identity"], user["has_password"], user["comment"]) == (
        "REPORT_BOT",
        "SERVICE",
        "true",
        "false",
        "builds reports",
    )
    columns, rows = run(admin, "DESCRIBE USER REPORT_BOT")
    assert columns == ["property", "value", "default", "description"]
    assert {p: v for p, v, *_ in rows}["TYPE"] == "SERVICE"


def test_a_password_cannot_be_given_to_a_user(admin):
    assert "keeps no passwords or keys" in refused(admin, "CREATE USER SNEAKY PASSWORD = 'hunter2'")  # pragma: allowlist secret


def test_workload_identities_are_added_listed_and_removed(admin):
    admin.cursor().execute(
        "CREATE OR REPLACE USER MOVING_BOT TYPE = SERVICE WORKLOAD_IDENTITY = (TYPE = AWS ARN = 'arn:aws:iam::123456789012:role/old-home')"
    )
    admin.cursor().execute(
        "ALTER USER MOVING_BOT ADD WORKLOAD IDENTITY NEW_HOME TYPE = AWS ARN = 'arn:aws:iam::210987654321:role/path/new-home'"
    )
    methods = records(admin, "SHOW USER WORKLOAD IDENTITY AUTHENTICATION METHODS FOR USER MOVING_BOT")
    assert list(methods[0]) == METHODS_COLUMNS
    assert {m["name"]: json.loads(m["additional_info"]) for m in methods} == {
        "DEFAULT": {"awsPartition": "aws", "awsAccount": "123456789012", "type": "IAM_ROLE", "iamRole": "old-home"},
        "NEW_HOME": {"awsPartition": "aws", "awsAccount": "210987654321", "type": "IAM_ROLE", "iamRole": "new-home"},
    }
    assert "UNSET WORKLOAD_IDENTITY" in refused(admin, "ALTER USER MOVING_BOT REMOVE WORKLOAD IDENTITY DEFAULT")
    admin.cursor().execute("ALTER USER MOVING_BOT REMOVE WORKLOAD IDENTITY NEW_HOME")
    admin.cursor().execute("ALTER USER MOVING_BOT UNSET WORKLOAD_IDENTITY")
    assert records(admin, "SHOW USER WORKLOAD IDENTITY AUTHENTICATION METHODS FOR USER MOVING_BOT") == []


def test_an_added_workload_identity_is_trusted_at_login(stack, admin, monkeypatch):
    iam = aws.client("iam", stack.info.aws_endpoint)
    arn = iam.create_role(RoleName="second-home", AssumeRolePolicyDocument=json.dumps(aws.LAMBDA_TRUST_POLICY))["Role"]["Arn"]
    admin.cursor().execute(
        "CREATE OR REPLACE USER TWO_HOMES_BOT TYPE = SERVICE WORKLOAD_IDENTITY = (TYPE = AWS ARN = 'arn:aws:iam::123456789012:role/first-home')"
    )
    admin.cursor().execute(f"ALTER USER TWO_HOMES_BOT ADD WORKLOAD IDENTITY SECOND TYPE = AWS ARN = '{arn}'")
    become_role(monkeypatch, stack, arn)
    with connect_with_workload_identity(stack.info) as connection:
        assert connection.cursor().execute("SELECT CURRENT_USER()").fetchone() == ("TWO_HOMES_BOT",)
    last_used = {
        m["name"]: m["last_used"] for m in records(admin, "SHOW USER WORKLOAD IDENTITY AUTHENTICATION METHODS FOR USER TWO_HOMES_BOT")
    }
    assert last_used["SECOND"] is not None and last_used["DEFAULT"] is None


def test_grants_on_all_and_future_tables(admin):
    for statement in (
        "CREATE DATABASE IF NOT EXISTS GRANTS_DB",
        "CREATE SCHEMA IF NOT EXISTS GRANTS_DB.SALES",
        "CREATE OR REPLACE TABLE GRANTS_DB.SALES.ORDERS (ID INT)",
        "CREATE ROLE IF NOT EXISTS SALES_WRITER",
        "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA GRANTS_DB.SALES TO ROLE SALES_WRITER",
        "GRANT SELECT, INSERT ON FUTURE TABLES IN SCHEMA GRANTS_DB.SALES TO ROLE SALES_WRITER",
        "GRANT CREATE TABLE ON SCHEMA GRANTS_DB.SALES TO ROLE SALES_WRITER",
        "CREATE OR REPLACE TABLE GRANTS_DB.SALES.REFUNDS (ID INT)",  # after the grants: the future grant covers it
    ):
        admin.cursor().execute(statement)
    grants = records(admin, "SHOW GRANTS TO ROLE SALES_WRITER")
    assert list(grants[0]) == GRANTS_COLUMNS
    assert {(g["privilege"], g["granted_on"], g["name"]) for g in grants} == {
        ("SELECT", "TABLE", "GRANTS_DB.SALES.ORDERS"),
        ("INSERT", "TABLE", "GRANTS_DB.SALES.ORDERS"),
        ("SELECT", "TABLE", "GRANTS_DB.SALES.REFUNDS"),
        ("INSERT", "TABLE", "GRANTS_DB.SALES.REFUNDS"),
        ("CREATE TABLE", "SCHEMA", "GRANTS_DB.SALES"),
    }
    admin.cursor().execute("REVOKE INSERT ON TABLE GRANTS_DB.SALES.REFUNDS FROM ROLE SALES_WRITER")
    assert ("INSERT", "GRANTS_DB.SALES.REFUNDS") not in {
        (g["privilege"], g["name"]) for g in records(admin, "SHOW GRANTS TO ROLE SALES_WRITER")
    }


def test_a_grant_on_a_missing_object_is_refused(admin):
    admin.cursor().execute("CREATE ROLE IF NOT EXISTS HOPEFUL_ROLE")
    assert (
        refused(admin, "GRANT USAGE ON DATABASE NO_SUCH_DB TO ROLE HOPEFUL_ROLE")
        == "SQL compilation error:\nObject 'NO_SUCH_DB' does not exist or not authorized."
    )


def test_a_dropped_database_takes_its_grants_with_it(admin):
    admin.cursor().execute("CREATE DATABASE SHORT_LIVED_DB COMMENT = 'gone soon'")
    assert ("PUBLIC",) in [(r[1],) for r in run(admin, "SHOW SCHEMAS IN DATABASE SHORT_LIVED_DB")[1]], "Snowflake creates PUBLIC"
    assert refused(admin, "CREATE DATABASE SHORT_LIVED_DB") == "SQL compilation error:\nObject 'SHORT_LIVED_DB' already exists."
    admin.cursor().execute("CREATE ROLE IF NOT EXISTS VISITOR_ROLE")
    admin.cursor().execute("GRANT USAGE ON DATABASE SHORT_LIVED_DB TO ROLE VISITOR_ROLE")
    admin.cursor().execute("DROP DATABASE SHORT_LIVED_DB")
    admin.cursor().execute("DROP DATABASE IF EXISTS SHORT_LIVED_DB")
    assert (
        refused(admin, "DROP DATABASE SHORT_LIVED_DB")
        == "SQL compilation error:\nObject 'SHORT_LIVED_DB' does not exist or not authorized."
    )
    admin.cursor().execute("CREATE DATABASE SHORT_LIVED_DB")
    assert records(admin, "SHOW GRANTS TO ROLE VISITOR_ROLE") == []
    admin.cursor().execute("DROP DATABASE SHORT_LIVED_DB")


@pytest.mark.parametrize(
    "statement, named",
    [
        ("CREATE NETWORK POLICY OFFICE ALLOWED_IP_LIST = ('192.0.2.0/24')", "CREATE NETWORK POLICY OFFICE"),
        ("GRANT USAGE ON DATABASE GRANTS_DB TO SHARE PARTNERS", "GRANT USAGE ON DATABASE GRANTS_DB TO SHARE"),
        ("ALTER DYNAMIC TABLE SOMETHING SET REFRESH_MODE = INCREMENTAL", "ALTER DYNAMIC TABLE SOMETHING SET REFRESH_MODE"),
    ],
)
def test_an_unsupported_statement_fails_by_name(admin, statement, named):
    message = refused(admin, statement)
    assert message.startswith("SQL compilation error:\nUnsupported statement in the local gateway: ") and named in message


def test_flatten_over_a_bound_array_answers_as_the_generic_flatten_does(stack):
    """The gateway runs the loader's FLATTEN over a bound array as DuckDB's UNNEST: same rows, same casts,
    same errors as the generic FLATTEN, which still answers the shapes the shortcut leaves alone."""
    elements = [[0, {"a": 1, "nested": [1, {"b": None}]}, "12.5"], [1, "text", "not a number"], [2, None, None], [3, [], "-0.25"]]
    with admin_connection(stack.info, paramstyle="qmark") as connection:
        cursor = connection.cursor()
        cursor.execute("CREATE DATABASE IF NOT EXISTS FLAT_CHECK_DB")
        cursor.execute("CREATE OR REPLACE TABLE FLAT_CHECK_DB.PUBLIC.FLAT (HOW VARCHAR, I NUMBER, V VARIANT, AMOUNT NUMBER(12,2))")
        insert = (
            "INSERT INTO FLAT_CHECK_DB.PUBLIC.FLAT (HOW, I, V, AMOUNT) SELECT ?, r.value[0], r.value[1],"
            " TRY_CAST(r.value[2]::VARCHAR AS NUMBER(12,2)){index} FROM TABLE(FLATTEN(INPUT => PARSE_JSON(?))) r"
        )
        cursor.execute(insert.format(index=""), ("unnest", json.dumps(elements)))
        cursor.execute(insert.format(index=" + 0 * r.index"), ("generic", json.dumps(elements)))  # INDEX: the generic FLATTEN
        packed = insert.format(index="").replace("PARSE_JSON(?)", "PARSE_JSON(DECOMPRESS_STRING(BASE64_DECODE_BINARY(?), 'SNAPPY'))")
        cursor.executemany(packed, [("packed", packed_records(json.dumps(elements).encode()))])  # as the loader binds its records
        last_value = insert.format(index="").replace("PARSE_JSON(?)", "PARSE_JSON(?, 'd')")  # its elements read by orjson
        cursor.execute(last_value, ("last-value", json.dumps(elements)))
        cursor.execute(last_value, ("twice", '[[0, {"a": 1, "b": 0, "a": 2}, "1"]]'))
        rows = cursor.execute("SELECT HOW, I, V, AMOUNT FROM FLAT_CHECK_DB.PUBLIC.FLAT ORDER BY HOW, I").fetchall()
        by_how = {how: [row[1:] for row in rows if row[0] == how] for how in ("unnest", "generic", "packed", "last-value", "twice")}
        assert len(by_how["unnest"]) == len(elements)
        assert by_how["unnest"] == by_how["generic"] == by_how["packed"] == by_how["last-value"]
        # "a single instance of that key with the last value specified for that key"
        twice = cursor.execute("SELECT V:a::NUMBER, V::VARCHAR FROM FLAT_CHECK_DB.PUBLIC.FLAT WHERE HOW = 'twice'").fetchall()
        assert [(a, json.loads(v), v.count('"a"')) for a, v in twice] == [(2, {"a": 2, "b": 0}, 1)]
        assert [json.loads(v) if v is not None else None for _, v, _ in by_how["unnest"]] == [e[1] for e in elements]
        assert [a for _, _, a in by_how["unnest"]] == [12.5, None, None, -0.25]
        broken = [refused_with(cursor, insert.format(index=index), ("x", "[[0, 1], [1,")) for index in ("", " + 0 * r.index")]
        assert broken[0] == broken[1]  # text that is not JSON: the shortcut steps aside
        assert cursor.execute("SELECT COUNT(*) FROM FLAT_CHECK_DB.PUBLIC.FLAT WHERE HOW = 'x'").fetchone() == (0,)


def refused_with(cursor, sql: str, params: tuple) -> str:
    with pytest.raises(ProgrammingError) as error:
        cursor.execute(sql, params)
    return error.value.raw_msg
