"""Dynamic tables refresh on their own within their TARGET_LAG, on demand, and not while suspended."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from snowflake.connector.errors import ProgrammingError

from widf_cli.demo_story import rows_for
from widf_cli.local_stack import admin_connection, deployed
from widf_local import aws, samples
from widf_local.pytest_plugin import gateway_stats, started_stack
from widf_ops.stack_outputs import wait_for

# The local stack's knob (widf_local.gateway.dynamic_tables), set in the environment it starts with.
REFRESH_CAP_VARIABLE = "WIDF_LOCAL_DYNAMIC_TABLE_REFRESH_SECONDS"
REFRESH_CAP_SECONDS = 1
TEST_DB = "DT_TEST_DB"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A stack whose refresher runs at least every second, so tests need not wait a whole one-minute lag."""
    stacks = started_stack(tmp_path_factory.mktemp("stack"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv(REFRESH_CAP_VARIABLE, str(REFRESH_CAP_SECONDS))
        started = next(stacks)
    yield started
    next(stacks, None)


@pytest.fixture(scope="module")
def admin(stack):
    with admin_connection(stack.info) as connection:
        yield connection


def show(admin, name: str) -> dict:
    cursor = admin.cursor().execute(f"SHOW DYNAMIC TABLES LIKE '{name}' IN ACCOUNT")
    columns = [c[0] for c in cursor.description]
    rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.fixture(scope="module")
def counts(admin):
    """A dynamic table over a plain table, with a five-second lag."""
    for statement in (
        "CREATE WAREHOUSE IF NOT EXISTS COMPUTE_WH",
        f"CREATE DATABASE IF NOT EXISTS {TEST_DB}",
        f"CREATE OR REPLACE TABLE {TEST_DB}.PUBLIC.EVENTS (N INT)",
        f"CREATE OR REPLACE DYNAMIC TABLE {TEST_DB}.PUBLIC.EVENT_TOTALS TARGET_LAG = '5 seconds' WAREHOUSE = COMPUTE_WH "
        "AS SELECT COUNT(*) AS EVENTS, COALESCE(SUM(N), 0) AS TOTAL FROM EVENTS",
    ):
        admin.cursor().execute(statement)
    return f"{TEST_DB}.PUBLIC.EVENT_TOTALS"


def totals(admin, table: str) -> tuple:
    return admin.cursor().execute(f"SELECT EVENTS, TOTAL FROM {table}").fetchone()


def test_daily_summary_catches_up_with_a_load_within_its_target_lag_unread(stack, loader, admin, names):
    summary = show(admin, "DAILY_SUMMARY")
    assert summary["target_lag"] == "1 minute" and summary["scheduling_state"] == "RUNNING"
    resources = deployed(stack.paths).resources
    key, events = "incoming/dt/summary.json", samples.sample_events(9, seed=21)
    aws.client("s3", stack.info.aws_endpoint).put_object(Bucket=resources.bucket, Key=key, Body=orjson.dumps(events))
    uri = f"s3://{resources.bucket}/{key}"
    assert wait_for(lambda: r if len(r := rows_for(admin, names, uri)) >= len(events) else None, seconds=60), f"{uri} did not load"
    landed = datetime.now(UTC)

    # Only SHOW is asked (it computes nothing): the refresh must come from the refresher, within the lag.
    refreshed = wait_for(lambda: s if (s := show(admin, "DAILY_SUMMARY"))["data_timestamp"] >= landed else None, seconds=60)
    assert refreshed is not None, "DAILY_SUMMARY was not refreshed within its one-minute target lag"

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
    assert refreshed["rows"] == len(actual)


def test_a_suspended_dynamic_table_keeps_its_snapshot_until_refreshed(stack, admin, counts):
    admin.cursor().execute(f"ALTER DYNAMIC TABLE {counts} SUSPEND")
    before = show(admin, "EVENT_TOTALS")
    admin.cursor().execute(f"INSERT INTO {TEST_DB}.PUBLIC.EVENTS VALUES (1), (2)")
    passes = gateway_stats(stack)["refresher_passes"]
    # Several refresher passes go by (an observable, not a sleep): none may touch a suspended table.
    assert wait_for(lambda: True if gateway_stats(stack)["refresher_passes"] >= passes + 3 else None, seconds=30)
    assert totals(admin, counts) == (0, 0)
    suspended = show(admin, "EVENT_TOTALS")
    assert suspended["scheduling_state"] == "SUSPENDED" and suspended["data_timestamp"] == before["data_timestamp"]

    admin.cursor().execute(f"ALTER DYNAMIC TABLE {counts} REFRESH")
    assert totals(admin, counts) == (2, 3)
    assert show(admin, "EVENT_TOTALS")["data_timestamp"] > before["data_timestamp"]


def test_a_resumed_dynamic_table_refreshes_on_its_own(admin, counts):
    admin.cursor().execute(f"ALTER DYNAMIC TABLE {counts} RESUME")
    admin.cursor().execute(f"INSERT INTO {TEST_DB}.PUBLIC.EVENTS VALUES (10)")
    started = time.monotonic()
    caught_up = wait_for(lambda: t if (t := totals(admin, counts))[1] >= 13 else None, seconds=5 + 5)
    assert caught_up is not None, "the table did not refresh within its five-second target lag"
    assert time.monotonic() - started <= 5 + 1
    state = show(admin, "EVENT_TOTALS")
    assert (state["scheduling_state"], state["target_lag"], state["rows"]) == ("RUNNING", "5 seconds", 1)


def test_a_dynamic_table_changes_only_by_its_refreshes(admin, counts):
    with pytest.raises(ProgrammingError, match="cannot be changed by DML"):
        admin.cursor().execute(f"INSERT INTO {counts} VALUES (1, 1)")


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
