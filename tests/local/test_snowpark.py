"""Code written with Snowpark for a real Snowflake account runs unmodified against the local stack, from
Snowpark's own environment: a Lambda handler in the public demo's style (write_pandas to a staging table,
then INSERT ... PARSE_JSON) signs in with workload identity as its IAM role and loads every record; the
trial scripts' DAILY_SUMMARY catches up with those rows within its target lag; and write_pandas's other
forms, and a COPY written by hand, land what they should."""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from helpers import SCRIPTS, TESTS, TRIAL, trial_flags
from widf_cli.local_stack import admin_connection
from widf_local import aws
from widf_local.pytest_plugin import started_stack
from widf_ops.stack_outputs import wait_for

# Snowpark pins its own connector (4.x), so it lives in an environment of its own, with pandas.
SNOWPARK = "snowflake-snowpark-python[pandas]==1.56.0"
HANDLER, WRITES = TESTS / "clients" / "snowpark_handler.py", TESTS / "clients" / "snowpark_writes.py"
DEMO_EVENTS = TESTS / "fixtures" / "original_demo_events.json"
BUCKET, KEY = "snowpark-uploads", "incoming/demo-events.json"
SCHEMA = "LANDING"
# The local stack's knob (widf_local.gateway.dynamic_tables): its refresher runs at least this often.
REFRESH_CAP_VARIABLE = "WIDF_LOCAL_DYNAMIC_TABLE_REFRESH_SECONDS"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from started_stack(tmp_path_factory.mktemp("stack"), {REFRESH_CAP_VARIABLE: "1"})


@pytest.fixture(scope="session")
def snowpark(client_environment) -> Path:
    return client_environment("snowpark-venv", SNOWPARK) / "python"


@pytest.fixture(scope="module")
def trial(snow):
    """The trial account's pipeline, made by its scripts through the Snowflake CLI: RAW_DATA, DAILY_SUMMARY, and
    a service user trusting TRIAL's role."""
    snow(*[arg for script in ("trial_setup", "trial_service_user") for arg in ("-f", str(SCRIPTS / f"{script}.sql"))], *trial_flags(SCHEMA))


@pytest.fixture(scope="module")
def upload(stack) -> str:
    s3 = aws.client("s3", stack.info.aws_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=DEMO_EVENTS.read_bytes())
    return f"s3://{BUCKET}/{KEY}"


def run_handler(snowpark: Path, stack, role_arn: str, home: Path) -> subprocess.CompletedProcess:
    """The handler in a fresh interpreter with what a function has: its role's credentials and its settings, and
    the local runtime's additions (AWS_ENDPOINT_URL: the attestation is signed for local STS, found through it)."""
    info = stack.info
    credentials = aws.client("sts", info.aws_endpoint).assume_role(RoleArn=role_arn, RoleSessionName="snowpark-handler")["Credentials"]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "AWS_REGION": aws.REGION,
        "AWS_ENDPOINT_URL": info.aws_endpoint,
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
        "SNOWFLAKE_ACCOUNT": info.snowflake_account,
        "SNOWFLAKE_HOST": info.snowflake_host,
        "SNOWFLAKE_PORT": str(info.snowflake_port),
        "SNOWFLAKE_PROTOCOL": "http",
        "SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES": info.snowflake_host,
        "SNOWFLAKE_DATABASE": TRIAL["database"],
        "SNOWFLAKE_SCHEMA": SCHEMA,
        "SNOWFLAKE_WAREHOUSE": "COMPUTE_WH",
        "SNOWFLAKE_ROLE": TRIAL["loader_role"],
    }
    event = {"Records": [{"s3": {"bucket": {"name": BUCKET}, "object": {"key": KEY}}}]}
    return subprocess.run([str(snowpark), str(HANDLER)], input=json.dumps(event), capture_output=True, text=True, env=env, timeout=180)


@pytest.fixture(scope="module")
def handled(snowpark, stack, trial, upload, tmp_path_factory) -> dict:
    result = run_handler(snowpark, stack, TRIAL["role_arn"], tmp_path_factory.mktemp("function-home"))
    assert result.returncode == 0, result.stderr
    return json.loads(json.loads(result.stdout)["body"])


def history(admin, session_id: int) -> list[tuple]:
    cursor = admin.cursor().execute(
        "SELECT QUERY_TEXT, EXECUTION_STATUS, USER_NAME, START_TIME, END_TIME, WAREHOUSE_NAME, EXECUTION_TIME, TOTAL_ELAPSED_TIME FROM "
        f"TABLE({TRIAL['database']}.INFORMATION_SCHEMA.QUERY_HISTORY(RESULT_LIMIT => 10000)) WHERE SESSION_ID = %s ORDER BY START_TIME",
        (session_id,),
    )
    return cursor.fetchall()


def test_a_role_nobody_trusts_is_refused_at_sign_in_in_snowflakes_words(snowpark, stack, trial, upload, tmp_path):
    stranger = "arn:aws:iam::123456789012:role/someone-else"
    result = run_handler(snowpark, stack, stranger, tmp_path)
    assert result.returncode != 0
    assert (
        "Unable to find an associated Snowflake user for the verified AWS Caller Identity with ARN "
        "'arn:aws:sts::123456789012:assumed-role/someone-else/snowpark-handler'" in result.stderr
    )


def test_the_handler_signs_in_as_its_role_and_lands_every_record_through_write_pandas(stack, handled, upload):
    events = orjson.loads(DEMO_EVENTS.read_bytes())
    assert handled["loaded"] == [{"file": upload, "records": len(events)}]
    with admin_connection(stack.info) as admin:
        cursor = admin.cursor()
        raw = cursor.execute(f"SELECT SOURCE_FILE, PAYLOAD FROM {TRIAL['database']}.{SCHEMA}.RAW_DATA ORDER BY ID").fetchall()
        staging = cursor.execute(f"SHOW TABLES LIKE 'RAW_DATA_STAGING' IN SCHEMA {TRIAL['database']}.{SCHEMA}").fetchall()
        stages = cursor.execute(f"SHOW STAGES IN SCHEMA {TRIAL['database']}.{SCHEMA}").fetchall()
        statements = history(admin, handled["session_id"])
    assert [(source, orjson.loads(payload)) for source, payload in raw] == [(upload, e) for e in events]
    assert staging == [] and stages == [], "the staging table is dropped, the temporary stage went with the session"
    # What Snowpark and write_pandas sent, each answered as Snowflake answers it, by the service user.
    assert {(user, status) for _, status, user, *_ in statements} == {(TRIAL["service_user"], "SUCCESS")}
    texts = [" ".join(text.split()) for text, *_ in statements]
    # The warehouse runs the loading and the reading, for the time QUERY_HISTORY records; the rest runs without it.
    on_warehouse = {t.split()[0].upper() for t, (*_, warehouse, _, _) in zip(texts, statements, strict=True) if warehouse}
    assert on_warehouse == {"COPY", "INSERT", "SELECT"}
    for text, (*_, warehouse, executed, total) in zip(texts, statements, strict=True):
        if warehouse:
            assert warehouse == "COMPUTE_WH" and 0 < executed <= total, text
        else:
            assert executed == 0, text
    for sent in (
        "CREATE TEMP STAGE",
        "PUT 'file://",
        "CREATE TEMP FILE FORMAT",
        "SELECT COLUMN_NAME, TYPE FROM table(infer_schema(",
        "CREATE TABLE IF NOT EXISTS identifier(?)",
        "COPY INTO identifier(?)",
        "DROP TABLE IF EXISTS identifier(?)",
        "ALTER TABLE identifier(?) RENAME TO identifier(?)",
        "INSERT INTO RAW_DATA (SOURCE_FILE, PAYLOAD) SELECT SOURCE_FILE, PARSE_JSON(PAYLOAD) FROM RAW_DATA_STAGING",
        f"select system$cancel_all_queries({handled['session_id']})",
    ):
        assert any(t.startswith(sent) for t in texts), f"no statement began {sent!r}: {texts}"


def test_daily_summary_catches_up_with_the_written_rows_within_its_target_lag(stack, handled):
    table = f"{TRIAL['database']}.{SCHEMA}.DAILY_SUMMARY"
    with admin_connection(stack.info) as admin:
        [(started, inserted)] = [
            (start, end) for text, _, _, start, end, *_ in history(admin, handled["session_id"]) if text.startswith("INSERT INTO RAW_DATA")
        ]

        def first_refresh_after_the_insert() -> tuple | None:
            cursor = admin.cursor().execute(
                "SELECT REFRESH_TRIGGER, STATE, DATA_TIMESTAMP, REFRESH_END_TIME FROM TABLE("
                f"{TRIAL['database']}.INFORMATION_SCHEMA.DYNAMIC_TABLE_REFRESH_HISTORY(NAME => '{table}')) ORDER BY DATA_TIMESTAMP"
            )
            return next((r for r in cursor.fetchall() if r[2] >= inserted), None)

        # Only the history is read (it computes nothing): the refresh must come from the refresher.
        refresh = wait_for(first_refresh_after_the_insert, seconds=90)
        summary = admin.cursor().execute(f"SELECT ACTION, TOTAL_EVENTS, UNIQUE_USERS, TOTAL_AMOUNT FROM {table}").fetchall()
    assert refresh is not None, "DAILY_SUMMARY was never refreshed after the insert"
    trigger, state, _, ended = refresh
    assert (trigger, state) == ("SCHEDULED", "SUCCEEDED")
    assert ended - started <= timedelta(minutes=1), f"not within its one-minute target lag: {refresh}"
    expected: dict[str, list] = defaultdict(lambda: [0, set(), None])
    for event in orjson.loads(DEMO_EVENTS.read_bytes()):
        figures = expected[event["action"]]
        figures[0] += 1
        figures[1].add(event["user_id"])
        if "amount" in event:
            figures[2] = (figures[2] or Decimal(0)) + Decimal(str(event["amount"]))
    assert {a: (n, users, None if amount is None else Decimal(str(amount))) for a, n, users, amount in summary} == {
        a: (n, len(users), amount) for a, (n, users, amount) in expected.items()
    }


def test_write_pandas_in_its_other_forms_and_a_hand_written_copy_land_what_they_should(snowpark, stack, trial, tmp_path):
    info = stack.info
    connect = {
        "account": info.snowflake_account,
        "user": info.admin_user,
        "password": info.admin_password,
        "host": info.snowflake_host,
        "port": info.snowflake_port,
        "protocol": "http",
        "role": TRIAL["sa_role"],
        "warehouse": "COMPUTE_WH",
        "database": TRIAL["database"],
        "schema": SCHEMA,
    }
    request = {"connect": connect, "parquet": str(tmp_path / "frames.parquet")}
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    result = subprocess.run([str(snowpark), str(WRITES)], input=json.dumps(request), capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["connector"] == {"success": True, "chunks": 1, "rows": 2, "table": [["a", 1], ["b", 2]]}
    assert report["snowpark_append"] == [["a", 1], ["b", 2], ["c", 3]]
    assert report["overwrite"] == [["d", 4]]
    assert report["inferred_columns"] == [
        ["NAME", "VARCHAR(16777216)"],
        ["N", "NUMBER(38,0)"],
        ["SCORE", "FLOAT"],
        ["OK", "BOOLEAN"],
        ["AT", "TIMESTAMP_NTZ(9)"],
    ]
    assert report["inferred_rows"] == [["e", "5", "0.5", "True", "2026-12-01 09:30:00"]]
    # Fields matched by name whatever their case; the field no column is named after is left out. The connector
    # recognises a Parquet file and uploads it as it is (no .gz).
    assert report["matched_copy"] == {"status": [["frames_in/frames.parquet", "LOADED", 2]], "table": [["d", 4], ["f", 6], ["g", 7]]}
    assert report["listed"] == ["frames_in/frames.parquet"]
