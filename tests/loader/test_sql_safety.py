"""Hostile names, keys and payloads reach Snowflake only as bound values: nothing but the intended rows change.

Identifiers from configuration are refused before any SQL is built (see
test_config.py and test_pipeline_config.py); here the file itself is the attack.
"""

from __future__ import annotations

import orjson
import pytest

from widf_cli.local_stack import admin_connection
from widf_loader.config import ConfigError, LoaderSettings
from widf_loader.warehouse import copy_rows_statement
from widf_local import aws
from widf_ops.stack_outputs import wait_for

SCHEMA = "WIDF_DEMO_DB.PUBLIC"
INJECTIONS = [
    "'; DROP TABLE RAW_DATA; --",
    "x'); DELETE FROM LOAD_HISTORY; --",
    "\\'; TRUNCATE TABLE REJECTED_RECORDS; --",
    "$$; DROP DATABASE WIDF_DEMO_DB; $$",
    "?, ?); DROP TABLE RAW_DATA; --",
]


def state(stack) -> dict[str, int]:
    """Every table in the schema with its row count: what an injection would change."""
    with admin_connection(stack.info) as connection:
        cursor = connection.cursor()
        tables = [row[1] for row in cursor.execute(f"SHOW TABLES IN SCHEMA {SCHEMA}").fetchall()]
        return {t: cursor.execute(f"SELECT COUNT(*) FROM {SCHEMA}.{t}").fetchone()[0] for t in tables}


def test_a_hostile_key_and_payload_load_verbatim_and_change_nothing_else(stack, loader):
    before = state(stack)
    assert {"RAW_DATA", "LOAD_HISTORY", "REJECTED_RECORDS"} <= set(before)
    key = 'incoming/\'; DROP TABLE RAW_DATA; -- "quoted" %27.json'
    records = [
        {"event_id": f"sql-{i}", "user_id": text, "action": "click", "timestamp": "2026-11-27T10:00:00Z", text: text}
        for i, text in enumerate(INJECTIONS)
    ]
    aws.client("s3", stack.info.aws_endpoint).put_object(Bucket=loader.resources.bucket, Key=key, Body=orjson.dumps(records))

    def loaded():
        with admin_connection(stack.info) as connection:
            row = (
                connection.cursor()
                .execute(f"SELECT STATUS, ROWS_LOADED FROM {SCHEMA}.LOAD_HISTORY WHERE SOURCE_KEY = %s AND STATUS <> 'FAILED'", (key,))
                .fetchone()
            )
        return row

    assert wait_for(loaded, seconds=120) == ("LOADED", len(INJECTIONS))
    after = state(stack)
    expected = {**before, "RAW_DATA": before["RAW_DATA"] + len(INJECTIONS), "LOAD_HISTORY": before["LOAD_HISTORY"] + 1}
    assert after == expected  # every table still there, and only the intended rows added
    with admin_connection(stack.info) as connection:
        stored = (
            connection.cursor()
            .execute(f"SELECT PAYLOAD:user_id::STRING FROM {SCHEMA}.RAW_DATA WHERE SOURCE_KEY = %s ORDER BY RECORD_INDEX", (key,))
            .fetchall()
        )
    assert [row[0] for row in stored] == INJECTIONS  # stored verbatim, as data


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SNOWFLAKE_DATABASE", "WIDF_DEMO_DB; DROP TABLE X"),
        ("SNOWFLAKE_SCHEMA", 'PUBLIC"; --'),
        ("WIDF_LEDGER_TABLE", "LOAD_HISTORY WHERE 1=1"),
        ("SNOWFLAKE_ROLE", "R' OR '1'='1"),
    ],
)
def test_hostile_identifiers_in_the_configuration_are_refused_before_any_sql(variable, value):
    with pytest.raises(ConfigError, match=variable):
        LoaderSettings.from_env({"SNOWFLAKE_ACCOUNT": "myorg-myaccount", variable: value})


def test_a_staged_part_name_that_is_no_plain_file_name_never_reaches_sql():
    with pytest.raises(ValueError, match="plain file name"):
        copy_rows_statement("RAW_DATA", "@~/widf-loader/x/t0/", "t0.gz') FILES = ('other.gz")
    assert "FILES = ('t0-part-00001.ndjson.gz')" in copy_rows_statement("RAW_DATA", "@~/widf-loader/x/t0/", "t0-part-00001.ndjson.gz")
