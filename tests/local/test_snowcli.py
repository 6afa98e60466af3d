"""Admin scripts written the way Snowflake's documentation writes them run unmodified through the real
Snowflake CLI against the gateway, and answer with Snowflake's column names; scripts written for a fresh
trial account (its COMPUTE_WH, `SET current_user = ...`) pass where Snowflake passes them and fail where it
fails them, in its words."""

from __future__ import annotations

import json
import re

import pytest

from helpers import SCRIPTS, trial_flags
from widf_cli.local_stack import admin_connection

ROLE_ARN = "arn:aws:iam::123456789012:role/pipeline-loader"
NEXT_ROLE_ARN = "arn:aws:iam::123456789012:role/pipeline-loader-v2"

ROLES_COLUMNS = [
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
GRANTS_COLUMNS = ["created_on", "privilege", "granted_on", "name", "granted_to", "grantee_name", "grant_option", "granted_by"]
FUTURE_GRANTS_COLUMNS = ["created_on", "privilege", "grant_on", "name", "grant_to", "grantee_name", "grant_option"]
USER_GRANTS_COLUMNS = ["created_on", "role", "granted_to", "grantee_name", "granted_by"]
METHODS_COLUMNS = ["name", "type", "comment", "last_used", "created_on", "additional_info"]


@pytest.fixture(scope="module")
def setup_results(snow):
    return snow("-f", str(SCRIPTS / "setup_pipeline.sql"))


@pytest.fixture(scope="module")
def provisioning_results(snow, setup_results):
    return snow("-f", str(SCRIPTS / "provision_service_user.sql"), "-D", f"role_arn={ROLE_ARN}", "-D", f"next_role_arn={NEXT_ROLE_ARN}")


def columns(result: list[dict]) -> list[str]:
    assert result, "an empty result set shows no columns"
    return list(result[0])


def test_setup_script_runs_unmodified_and_shows_what_it_made(setup_results):
    *statements, roles, warehouses, tables, dynamic_tables, grants, future_grants = setup_results
    assert all(len(r) == 1 and "status" in r[0] for r in statements)
    assert columns(roles) == ROLES_COLUMNS
    assert {r["name"] for r in roles} == {"PIPELINE_ROLE", "PIPELINE_WRITER", "PIPELINE_READER"}
    assert [w["name"] for w in warehouses] == ["PIPELINE_WH"] and "auto_suspend" in columns(warehouses)
    assert {t["name"] for t in tables} >= {"CLICKS"} and {"database_name", "schema_name", "rows"} <= set(columns(tables))
    assert [(d["name"], d["target_lag"], d["warehouse"], d["scheduling_state"]) for d in dynamic_tables] == [
        ("CLICKS_PER_PAGE", "1 minute", "PIPELINE_WH", "RUNNING")
    ]
    assert columns(grants) == GRANTS_COLUMNS
    assert {(g["privilege"], g["granted_on"], g["name"]) for g in grants} == {
        ("USAGE", "DATABASE", "PIPELINE_DB"),
        ("USAGE", "SCHEMA", "PIPELINE_DB.EVENTS"),
        ("SELECT", "TABLE", "PIPELINE_DB.EVENTS.CLICKS"),
        ("INSERT", "TABLE", "PIPELINE_DB.EVENTS.CLICKS"),
        ("CREATE TABLE", "SCHEMA", "PIPELINE_DB.EVENTS"),
    }
    assert columns(future_grants) == FUTURE_GRANTS_COLUMNS
    assert {(f["privilege"], f["grantee_name"]) for f in future_grants} == {("SELECT", "PIPELINE_WRITER"), ("INSERT", "PIPELINE_WRITER")}


def test_the_setup_made_roles_own_and_may_do_what_the_script_says(stack, setup_results):
    with admin_connection(stack.info) as connection:
        cursor = connection.cursor()
        cursor.execute("USE ROLE PIPELINE_ROLE")  # granted to the admin by the script, through IDENTIFIER($my_user)
        cursor.execute("CREATE TABLE PIPELINE_DB.EVENTS.PURCHASES (ID INT)")  # it owns the schema
        cursor.execute("USE ROLE ACCOUNTADMIN")
        grants = cursor.execute("SHOW GRANTS TO ROLE PIPELINE_WRITER").fetchall()
    assert ("INSERT", "PIPELINE_DB.EVENTS.PURCHASES") in {(g[1], g[3]) for g in grants}, "the future grant covers a new table"


def test_provisioning_script_runs_unmodified_and_describes_the_user(provisioning_results):
    *statements, description, users, methods, user_grants = provisioning_results
    assert all(len(r) == 1 and "status" in r[0] for r in statements)
    assert columns(description) == ["property", "value", "default", "description"]
    assert {d["property"]: d["value"] for d in description}["TYPE"] == "SERVICE"
    assert "has_workload_identity" in columns(users) and columns(users)[:3] == ["name", "created_on", "login_name"]
    assert [(u["name"], u["type"], u["default_role"], u["has_workload_identity"]) for u in users] == [
        ("PIPELINE_LOADER", "SERVICE", "PIPELINE_WRITER", "true")
    ]
    assert columns(methods) == METHODS_COLUMNS
    trusted = {m["name"]: json.loads(m["additional_info"]) for m in methods}
    assert {name: (info["awsAccount"], info["iamRole"]) for name, info in trusted.items()} == {
        "DEFAULT": ("123456789012", "pipeline-loader"),
        "NEXT_ROLE": ("123456789012", "pipeline-loader-v2"),
    }
    assert columns(user_grants) == USER_GRANTS_COLUMNS
    assert [g["role"] for g in user_grants] == ["PIPELINE_WRITER"]


def test_the_shipped_scripts_run_with_snowflake_cli_templating_and_run_again(snow, names):
    variables = {**names.variables(), "role_arn": "arn:aws:iam::123456789012:role/widf-loader-function-role"}
    flags = [arg for name, value in variables.items() for arg in ("-D", f"{name}={value}")]
    scripts = ["setup", "setup", "lambda_wid", "cleanup", "cleanup"]  # each of them idempotent
    results = snow(*[arg for script in scripts for arg in ("-f", f"sql/{script}.sql")], *flags)
    assert all(len(r) == 1 and "status" in r[0] for r in results)
    statuses = [r[0]["status"] for r in results]
    assert statuses.count("Dynamic table DAILY_SUMMARY successfully created.") == 1
    assert "DAILY_SUMMARY already exists, statement succeeded." in statuses, "the second setup changes nothing"
    assert f"{names.user} successfully dropped." in statuses
    assert f"Drop statement executed successfully ({names.user} already dropped)." in statuses, "the second cleanup"


# A fresh trial account, set up the way its users do: the scripts' variables, as `snow sql -D` gives them.
def by_name(rows: list[dict]) -> dict[str, dict]:
    return {r["name"]: r for r in rows}


def test_a_trial_setup_into_the_public_schema_stops_at_create_table_as_snowflake_does(stack, snow_process):
    """GRANT OWNERSHIP ON DATABASE leaves PUBLIC with ACCOUNTADMIN; the user's secondary roles let the new role
    use it, but CREATE TABLE is the primary role's to authorize, and it may not."""
    result = snow_process("-f", str(SCRIPTS / "trial_setup.sql"), *trial_flags("PUBLIC"))
    assert result.returncode != 0
    # The CLI printed the result of each statement before CREATE TABLE (its JSON list left open), then the error.
    statuses = re.findall(r'"status"\s*:\s*"([^"]*)"', result.stdout)
    assert len(statuses) == 12
    assert statuses[4:6] == ["Database INGEST_DB successfully created.", "Statement executed successfully."]
    assert statuses[10] == "PUBLIC already exists, statement succeeded.", "CREATE SCHEMA IF NOT EXISTS PUBLIC"
    error = " ".join(re.sub("[│╭╮╰╯─]", " ", result.stderr).split())  # the CLI's error box, unwrapped
    assert (
        "003001 (42501): None: SQL access control error: Insufficient privileges to operate on schema 'PUBLIC'. "
        "Your primary role INGEST_ROLE must have CREATE TABLE granted on SCHEMA INGEST_DB.PUBLIC." in error
    )
    with admin_connection(stack.info) as connection:  # everything before CREATE TABLE ran, $current_user included
        cursor = connection.cursor()
        schemas = {r[1]: r[5] for r in cursor.execute("SHOW SCHEMAS IN DATABASE INGEST_DB").fetchall()}
        database = cursor.execute("SHOW DATABASES LIKE 'INGEST_DB'").fetchall()
        user_roles = {r[1] for r in cursor.execute(f"SHOW GRANTS TO USER {stack.info.admin_user}").fetchall()}
        tables = cursor.execute("SHOW TABLES IN DATABASE INGEST_DB").fetchall()
    assert schemas == {"INFORMATION_SCHEMA": "", "PUBLIC": "ACCOUNTADMIN"}
    assert [(d[1], d[5]) for d in database] == [("INGEST_DB", "INGEST_ROLE")]
    assert "INGEST_ROLE" in user_roles
    assert tables == []


def test_a_trial_setup_into_a_new_schema_then_a_service_user_then_cleanup_twice(snow):
    scripts = ["trial_setup", "trial_service_user", "trial_cleanup", "trial_cleanup"]
    results = snow(*[arg for script in scripts for arg in ("-f", str(SCRIPTS / f"{script}.sql"))], *trial_flags("LANDING"))
    setup, results = results[:18], results[18:]
    *statements, warehouses, databases, schemas, tables = setup
    assert all(len(r) == 1 and "status" in r[0] for r in statements)
    assert [s[0]["status"] for s in statements[-3:]] == [
        "Statement executed successfully.",
        "Table RAW_DATA successfully created.",
        "Dynamic table DAILY_SUMMARY successfully created.",
    ]
    [warehouse] = warehouses  # the trial's own: X-Small, CREATE WAREHOUSE's suspend and resume, SYSADMIN's
    assert (warehouse["size"], warehouse["auto_suspend"], warehouse["auto_resume"], warehouse["owner"]) == (
        "X-Small",
        600,
        "true",
        "SYSADMIN",
    )
    assert [(d["name"], d["owner"], d["comment"]) for d in databases] == [("INGEST_DB", "INGEST_ROLE", "Raw events as they land")]
    assert columns(schemas)[:6] == ["created_on", "name", "is_default", "is_current", "database_name", "owner"]
    assert {name: s["owner"] for name, s in by_name(schemas).items()} == {
        "INFORMATION_SCHEMA": "",
        "LANDING": "INGEST_ROLE",
        "PUBLIC": "ACCOUNTADMIN",
    }
    assert [(t["name"], t["owner"], t["rows"], t["comment"]) for t in tables] == [
        ("DAILY_SUMMARY", "INGEST_ROLE", 0, ""),
        ("RAW_DATA", "INGEST_ROLE", 0, "One row per JSON record"),
    ]
    *statements, description, users, loader_grants = results[:12]
    assert all(len(r) == 1 and "status" in r[0] for r in statements)
    assert {d["property"]: d["value"] for d in description}["DEFAULT_SECONDARY_ROLES"] == '["ALL"]'
    assert [(u["name"], u["type"], u["default_secondary_roles"]) for u in users] == [("INGEST_BOT", "SERVICE", '["ALL"]')]
    assert {(g["privilege"], g["name"]) for g in loader_grants} == {
        ("USAGE", "COMPUTE_WH"),
        ("USAGE", "INGEST_DB"),
        ("USAGE", "INGEST_DB.LANDING"),
        ("SELECT", "INGEST_DB.LANDING.RAW_DATA"),
        ("INSERT", "INGEST_DB.LANDING.RAW_DATA"),
        ("CREATE TABLE", "INGEST_DB.LANDING"),
        ("CREATE STAGE", "INGEST_DB.LANDING"),
        ("CREATE FILE FORMAT", "INGEST_DB.LANDING"),
    }
    first_cleanup, second_cleanup = results[12:18], results[18:]
    assert [r[0]["status"] for r in first_cleanup[1:5]] == [
        "INGEST_BOT successfully dropped.",
        "INGEST_DB successfully dropped.",
        "INGEST_LOADER successfully dropped.",
        "INGEST_ROLE successfully dropped.",
    ]
    assert second_cleanup[2][0]["status"] == "Drop statement executed successfully (INGEST_DB already dropped)."
    assert [w["name"] for w in second_cleanup[-1]] == ["COMPUTE_WH"], "the trial's warehouse stays"
