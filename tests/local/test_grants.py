"""The loader's role may do what it was granted and nothing else, as in Snowflake."""

from __future__ import annotations

import orjson
import pytest
from snowflake.connector.errors import DatabaseError, ProgrammingError

from widf_cli.demo_story import rows_for
from widf_cli.local_stack import admin_connection, deployed
from widf_loader.config import LoaderSettings
from widf_loader.warehouse import connect
from widf_local import aws, samples
from widf_ops.stack_outputs import wait_for


@pytest.fixture
def function_connection(as_function):
    """A session exactly like the function's: its workload identity, its role, its database."""
    with connect(LoaderSettings.from_env()) as connection:
        yield connection


def refused(connection, sql: str) -> str:
    with pytest.raises(ProgrammingError) as error:
        connection.cursor().execute(sql)
    return error.value.raw_msg  # Snowflake's message, without the connector's "003001 (42501): " prefix


def upload_and_wait(stack, names, key: str, count: int = 5) -> list[tuple]:
    resources = deployed(stack.paths).resources
    aws.client("s3", stack.info.aws_endpoint).put_object(
        Bucket=resources.bucket, Key=key, Body=orjson.dumps(samples.sample_events(count, seed=len(key)))
    )
    uri = f"s3://{resources.bucket}/{key}"
    with admin_connection(stack.info) as connection:
        rows = wait_for(lambda: r if len(r := rows_for(connection, names, uri)) >= count else None, seconds=60)
    assert rows is not None, f"{uri} did not load"
    return rows


def test_loader_role_is_refused_create_table(function_connection, names):
    message = refused(function_connection, "CREATE TABLE STOLEN_SPACE (A INT)")
    assert message == (
        f"SQL access control error:\nInsufficient privileges to operate on schema '{names.schema}'. "
        f"Your primary role {names.role} must have CREATE TABLE granted on SCHEMA {names.database}.{names.schema}."
    )


def test_loader_role_is_refused_drop_table(function_connection):
    message = refused(function_connection, "DROP TABLE RAW_DATA")
    assert message == "SQL access control error:\nInsufficient privileges to operate on table 'RAW_DATA'."


def test_loader_role_cannot_touch_what_it_was_not_granted(function_connection, names):
    summary = f"{names.database}.{names.schema}.DAILY_SUMMARY"
    assert (
        refused(function_connection, f"SELECT * FROM {summary}")
        == f"SQL compilation error:\nObject '{summary}' does not exist or not authorized."
    )
    assert "Insufficient privileges to operate on table 'RAW_DATA'" in refused(function_connection, "DELETE FROM RAW_DATA")
    assert "Insufficient privileges to operate on schema 'PUBLIC'" in refused(function_connection, "CREATE VIEW PEEK AS SELECT 1 AS A")
    assert "Insufficient privileges to operate on account" in refused(function_connection, "CREATE DATABASE ELSEWHERE")
    assert "Role 'ACCOUNTADMIN' does not exist or not authorized." in refused(function_connection, "USE ROLE ACCOUNTADMIN")


def test_loader_role_reads_and_writes_its_own_tables(function_connection):
    cursor = function_connection.cursor()
    assert cursor.execute("SELECT CURRENT_ROLE()").fetchone() == ("WIDF_DEMO_ROLE",)
    cursor.execute("SELECT COUNT(*) FROM LOAD_HISTORY").fetchone()
    cursor.execute(
        "INSERT INTO RAW_DATA (SOURCE_FILE, PAYLOAD, LOADED_BY) SELECT ?, PARSE_JSON(?), CURRENT_USER()", ("s3://b/grants-test", '{"a": 1}')
    )
    function_connection.rollback()


def test_loader_role_has_least_privilege(stack, loader, names):
    with admin_connection(stack.info) as connection:
        rows = connection.cursor().execute(f"SHOW GRANTS TO ROLE {names.role}").fetchall()
    granted = {(privilege, kind, name) for _, privilege, kind, name, *_ in rows}
    scope = f"{names.database}.{names.schema}"
    tables = {"RAW_DATA", "LOAD_HISTORY", "REJECTED_RECORDS"}
    assert granted == {
        ("USAGE", "WAREHOUSE", names.warehouse),
        ("USAGE", "DATABASE", names.database),
        ("USAGE", "SCHEMA", scope),
        *{(p, "TABLE", f"{scope}.{t}") for p in ("SELECT", "INSERT") for t in tables},
    }


def test_cleanup_then_setup_and_lambda_wid_return_to_a_working_state(stack, loader, names):
    upload_and_wait(stack, names, "incoming/grants/before-cleanup.json")
    stack.cli("snow", "cleanup")  # running each script twice is tests/local/test_snowcli.py's business
    with admin_connection(stack.info) as connection, pytest.raises(DatabaseError, match="does not exist or not authorized"):
        connection.cursor().execute(f"SELECT COUNT(*) FROM {names.database}.{names.schema}.RAW_DATA")
    stack.cli("snow", "setup")
    stack.cli("snow", "lambda-wid")
    rows = upload_and_wait(stack, names, "incoming/grants/after-setup.json")
    assert {loaded_by for _, loaded_by in rows} == {names.user}
    with admin_connection(stack.info) as connection:
        users = connection.cursor().execute(f"SHOW USERS LIKE '{names.user}'").fetchall()
        total = connection.cursor().execute(f"SELECT COUNT(*) FROM {names.database}.{names.schema}.RAW_DATA").fetchone()[0]
    assert len(users) == 1
    assert total == len(rows), "cleanup dropped the old rows; only the new file's are there"
