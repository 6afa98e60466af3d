"""Dynamic tables refresh on their own within their TARGET_LAG, on demand, and not while suspended.

Within the lag is read as Snowflake defines it, by the stack's own record (not by how fast this test polls):
the first refresh whose DATA_TIMESTAMP is after the rows were committed (all data that arrived before it is
in the table) ends no later than the target lag after the statement that committed them began, both from the
gateway's clock (DYNAMIC_TABLE_REFRESH_HISTORY and QUERY_HISTORY). Each test writes and checks its own table.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest
from snowflake.connector.errors import ProgrammingError

from widf_cli.demo_story import rows_for
from widf_cli.local_stack import admin_connection, deployed
from widf_loader.events import FileRef, file_id
from widf_local import aws, samples
from widf_local.pytest_plugin import gateway_stats, started_stack
from widf_ops.stack_outputs import wait_for

# The local stack's knob (widf_local.gateway.dynamic_tables), set in the environment it starts with.
REFRESH_CAP_VARIABLE = "WIDF_LOCAL_DYNAMIC_TABLE_REFRESH_SECONDS"
REFRESH_CAP_SECONDS = 1
TEST_DB = "DT_TEST_DB"
QUERY_HISTORY = f"TABLE({TEST_DB}.INFORMATION_SCHEMA.QUERY_HISTORY(RESULT_LIMIT => 10000))"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A stack whose refresher runs at least every second, so tests need not wait a whole one-minute lag."""
    yield from started_stack(tmp_path_factory.mktemp("stack"), {REFRESH_CAP_VARIABLE: str(REFRESH_CAP_SECONDS)})


@pytest.fixture(scope="module")
def admin(stack):
    with admin_connection(stack.info) as connection:
        for statement in ("CREATE WAREHOUSE IF NOT EXISTS COMPUTE_WH", f"CREATE DATABASE IF NOT EXISTS {TEST_DB}"):
            connection.cursor().execute(statement)
        yield connection


def show(admin, name: str) -> dict:
    cursor = admin.cursor().execute(f"SHOW DYNAMIC TABLES LIKE '{name}' IN ACCOUNT")
    columns = [c[0] for c in cursor.description]
    rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.fixture
def counts(admin, request):
    """A dynamic table of this test's own over a plain table of its own, with a five-second lag:
    (dynamic table, base table)."""
    name = request.node.name.split("test_", 1)[1].upper()[:40]
    base, table = f"{TEST_DB}.PUBLIC.{name}_EVENTS", f"{TEST_DB}.PUBLIC.{name}_TOTALS"
    admin.cursor().execute(f"CREATE OR REPLACE TABLE {base} (N INT)")
    admin.cursor().execute(
        f"CREATE OR REPLACE DYNAMIC TABLE {table} TARGET_LAG = '5 seconds' WAREHOUSE = COMPUTE_WH "
        f"AS SELECT COUNT(*) AS EVENTS, COALESCE(SUM(N), 0) AS TOTAL FROM {base}"
    )
    return table, base


def totals(admin, table: str) -> tuple:
    return admin.cursor().execute(f"SELECT EVENTS, TOTAL FROM {table}").fetchone()


def refreshes(admin, table: str) -> list[dict]:
    """The table's refreshes, oldest first, as DYNAMIC_TABLE_REFRESH_HISTORY reports them."""
    cursor = admin.cursor().execute(
        "SELECT REFRESH_TRIGGER, STATE, DATA_TIMESTAMP, REFRESH_END_TIME FROM "
        f"TABLE({TEST_DB}.INFORMATION_SCHEMA.DYNAMIC_TABLE_REFRESH_HISTORY(NAME => '{table}', RESULT_LIMIT => 10000)) "
        "ORDER BY DATA_TIMESTAMP"
    )
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def first_refresh_after(admin, table: str, committed) -> dict | None:
    """The first refresh certain to hold what was committed by `committed` (its data timestamp is later)."""
    return next((r for r in refreshes(admin, table) if r["DATA_TIMESTAMP"] >= committed), None)


def statement_times(admin, query_id: str) -> tuple:
    """When the statement began and ended, by the gateway's QUERY_HISTORY: its commit lies between."""
    [(started, ended)] = (
        admin.cursor().execute(f"SELECT START_TIME, END_TIME FROM {QUERY_HISTORY} WHERE QUERY_ID = %s", (query_id,)).fetchall()
    )
    return started, ended


def test_daily_summary_catches_up_with_a_load_within_its_target_lag_unread(stack, loader, admin, names):
    summary = show(admin, "DAILY_SUMMARY")
    assert summary["target_lag"] == "1 minute" and summary["scheduling_state"] == "RUNNING"
    resources = deployed(stack.paths).resources
    key, events = "incoming/dt/summary.json", samples.sample_events(9, seed=21)
    put = aws.client("s3", stack.info.aws_endpoint).put_object(Bucket=resources.bucket, Key=key, Body=orjson.dumps(events))
    uri, loaded = f"s3://{resources.bucket}/{key}", file_id(FileRef(resources.bucket, key, version_id=put["VersionId"]))
    assert wait_for(lambda: r if len(r := rows_for(admin, names, uri)) >= len(events) else None, seconds=60), f"{uri} did not load"
    # The load's commit, by its own QUERY_TAG (the loader tags every statement of an attempt with the file's id).
    tagged = admin.cursor().execute(
        f"SELECT QUERY_TEXT, QUERY_TAG, START_TIME, END_TIME FROM TABLE({names.database}.INFORMATION_SCHEMA.QUERY_HISTORY("
        "RESULT_LIMIT => 10000)) WHERE USER_NAME = 'LAMBDA_LOADER_BOT' AND QUERY_TEXT = 'COMMIT'"
    )
    [(started, committed)] = [
        (start, end) for text, tag, start, end in tagged.fetchall() if text == "COMMIT" and json.loads(tag)["file_id"] == loaded
    ]

    # Only the history is asked (it computes nothing): the refresh must come from the refresher, within the lag.
    summary_table = f"{names.database}.{names.schema}.DAILY_SUMMARY"
    first = wait_for(lambda: first_refresh_after(admin, summary_table, committed), seconds=120)
    assert first is not None, "DAILY_SUMMARY was never refreshed after the load"
    assert (first["REFRESH_TRIGGER"], first["STATE"]) == ("SCHEDULED", "SUCCEEDED")
    assert first["REFRESH_END_TIME"] - started <= timedelta(minutes=1), f"not within its one-minute target lag: {first}"

    raw = admin.cursor().execute(f"SELECT TO_DATE(LOADED_AT), PAYLOAD, SOURCE_FILE FROM {names.database}.{names.schema}.RAW_DATA")
    expected = samples.summarise([(day, orjson.loads(payload), source) for day, payload, source in raw.fetchall()])
    cursor = admin.cursor().execute(
        "SELECT LOAD_DATE, ACTION, FILES_LOADED, TOTAL_EVENTS, UNIQUE_USERS, TOTAL_AMOUNT "
        f"FROM {names.database}.{names.schema}.DAILY_SUMMARY"
    )
    actual = {
        (day, action): {
            "FILES_LOADED": files,
            "TOTAL_EVENTS": total,
            "UNIQUE_USERS": users,
            "TOTAL_AMOUNT": Decimal(str(amount)).quantize(Decimal("0.01")),
        }
        for day, action, files, total, users, amount in cursor.fetchall()
    }
    assert actual == expected
    assert show(admin, "DAILY_SUMMARY")["rows"] == len(actual)


def test_a_suspended_dynamic_table_keeps_its_snapshot_until_refreshed(stack, admin, counts):
    table, base = counts
    admin.cursor().execute(f"ALTER DYNAMIC TABLE {table} SUSPEND")
    before = show(admin, table.rsplit(".", 1)[1])
    admin.cursor().execute(f"INSERT INTO {base} VALUES (1), (2)")
    passes = gateway_stats(stack)["refresher_passes"]
    # Several refresher passes go by (an observable, not a sleep): none may touch a suspended table.
    assert wait_for(lambda: True if gateway_stats(stack)["refresher_passes"] >= passes + 3 else None, seconds=30)
    assert totals(admin, table) == (0, 0)
    suspended = show(admin, table.rsplit(".", 1)[1])
    assert suspended["scheduling_state"] == "SUSPENDED" and suspended["data_timestamp"] == before["data_timestamp"]
    assert [r["REFRESH_TRIGGER"] for r in refreshes(admin, table)] == ["CREATION"]

    admin.cursor().execute(f"ALTER DYNAMIC TABLE {table} REFRESH")
    assert totals(admin, table) == (2, 3)
    assert show(admin, table.rsplit(".", 1)[1])["data_timestamp"] > before["data_timestamp"]
    assert [r["REFRESH_TRIGGER"] for r in refreshes(admin, table)] == ["CREATION", "MANUAL"]


def test_a_resumed_dynamic_table_refreshes_on_its_own_within_its_lag(admin, counts):
    table, base = counts
    admin.cursor().execute(f"ALTER DYNAMIC TABLE {table} SUSPEND")
    admin.cursor().execute(f"ALTER DYNAMIC TABLE {table} RESUME")
    started, committed = statement_times(admin, admin.cursor().execute(f"INSERT INTO {base} VALUES (10)").sfqid)
    first = wait_for(lambda: first_refresh_after(admin, table, committed), seconds=60)
    assert first is not None, "the resumed table was never refreshed after the insert"
    assert (first["REFRESH_TRIGGER"], first["STATE"]) == ("SCHEDULED", "SUCCEEDED"), first
    assert first["REFRESH_END_TIME"] - started <= timedelta(seconds=5), f"not within its five-second target lag: {first}"
    assert "MANUAL" not in [r["REFRESH_TRIGGER"] for r in refreshes(admin, table)]
    assert totals(admin, table) == (1, 10)
    state = show(admin, table.rsplit(".", 1)[1])
    assert (state["scheduling_state"], state["target_lag"], state["rows"]) == ("RUNNING", "5 seconds", 1)


def test_a_dynamic_table_changes_only_by_its_refreshes(admin, counts):
    table, _ = counts
    with pytest.raises(ProgrammingError, match="cannot be changed by DML"):
        admin.cursor().execute(f"INSERT INTO {table} VALUES (1, 1)")


def test_show_dynamic_tables_has_snowflakes_columns(admin, counts):
    cursor = admin.cursor().execute(f"SHOW DYNAMIC TABLES IN DATABASE {TEST_DB}")
    assert [c[0] for c in cursor.description] == [
        "created_on",
        "name",
        "reserved",
        "database_name",
        "schema_name",
        "cluster_by",
        "rows",
        "bytes",
        "owner",
        "target_lag",
        "refresh_mode",
        "refresh_mode_reason",
        "warehouse",
        "comment",
        "text",
        "automatic_clustering",
        "scheduling_state",
        "last_suspended_on",
        "is_clone",
        "is_replica",
        "is_iceberg",
        "data_timestamp",
        "owner_role_type",
    ]
