"""Both connector generations, each from its own environment, get the same answers from the gateway:
4.x (what fakesnow, the Snowflake CLI and Snowpark pin) and 5.x (a Rust core, which needs a master token,
renews sessions, posts telemetry and sends every session parameter as a string)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from snowflake.connector.errors import ProgrammingError

from helpers import TESTS, function_env
from widf_cli.local_stack import admin_connection
from widf_loader.config import LoaderSettings
from widf_local import aws

CONNECTOR_4 = "snowflake-connector-python==4.8.1"  # the Lambda artefact's, the Snowflake CLI's and Snowpark's generation
SESSION_SCRIPT = TESTS / "clients" / "connector_session.py"


@pytest.fixture(scope="session")
def connector_4(client_environment) -> Path:
    return client_environment("connector4-venv", CONNECTOR_4) / "python"


@pytest.fixture(scope="session")
def connector_5() -> str:
    return sys.executable  # the project's environment: the tools' connector, 5.x


def session(python: Path | str, request: dict, env: dict[str, str] | None = None) -> dict:
    """One session of that interpreter's connector, as the client script reports it."""
    result = subprocess.run(
        [str(python), str(SESSION_SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in (env or os.environ).items() if k != "PYTHONPATH"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def admin_arguments(stack) -> dict:
    info = stack.info
    return {
        "user": info.admin_user,
        "password": info.admin_password,
        "account": info.snowflake_account,
        "host": info.snowflake_host,
        "port": info.snowflake_port,
        "protocol": "http",
        "role": "ACCOUNTADMIN",
        "paramstyle": "qmark",
    }


def test_both_generations_log_in_with_a_password_and_get_the_same_answers(stack, connector_4, connector_5):
    with admin_connection(stack.info) as connection:
        connection.cursor().execute("CREATE DATABASE IF NOT EXISTS WIDF_CLIENT_CHECK")
    request = {"connect": {**admin_arguments(stack), "autocommit": False}, "other": admin_arguments(stack)}
    newer, older = session(connector_5, request), session(connector_4, request)
    assert newer.pop("version").startswith("5.") and older.pop("version").startswith("4.")
    assert newer == older
    assert newer["who"] == [stack.info.admin_user, "ACCOUNTADMIN"]
    assert newer["bound"] == [42, "forty-two"]
    assert newer["executemany_rowcount"] == 3
    # autocommit=False at connect holds for 5.x too, which sends it as the string "false"
    assert (newer["seen_by_another_session_before_commit"], newer["after_rollback"]) == (0, 0)
    assert newer["merge_rowcounts"] == [1, 0]
    assert newer["rows"] == [[1, "a"], [2, "b"], [3, "c"]]
    assert (newer["error"]["type"], newer["error"]["errno"]) == ("ProgrammingError", 2003)
    assert "Object 'NO_SUCH_TABLE' does not exist or not authorized." in newer["error"]["msg"]


def function_connection(stack, loader, role_arn: str | None = None) -> tuple[dict, dict[str, str]]:
    """The loader's own connect() arguments, and the environment of a process holding the role's credentials."""
    env = function_env(stack, loader)
    if role_arn:
        credentials = aws.client("sts", stack.info.aws_endpoint).assume_role(RoleArn=role_arn, RoleSessionName="c5")["Credentials"]
        env |= {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }
    connect = LoaderSettings.from_env(env).connect_args()
    return connect, {**os.environ, **{k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL"}}


def test_connector_5_logs_in_with_workload_identity_as_the_trusted_role(stack, loader, connector_5):
    connect, env = function_connection(stack, loader)
    report = session(connector_5, {"connect": connect}, env)
    assert report.get("login_error") is None, report
    assert report["who"] == ["LAMBDA_LOADER_BOT", "WIDF_DEMO_ROLE"]


def test_connector_5_is_refused_for_a_role_nobody_trusts_in_snowflakes_words(stack, loader, connector_5):
    iam = aws.client("iam", stack.info.aws_endpoint)
    role_arn = iam.create_role(RoleName="c5-untrusted", AssumeRolePolicyDocument=json.dumps(aws.LAMBDA_TRUST_POLICY))["Role"]["Arn"]
    connect, env = function_connection(stack, loader, role_arn)
    error = session(connector_5, {"connect": connect}, env)["login_error"]
    assert error["errno"] == 390144 and error["sqlstate"] == "28000"
    assert (
        "Unable to find an associated Snowflake user for the verified AWS Caller Identity with ARN "
        f"'arn:aws:sts::{aws.ACCOUNT_ID}:assumed-role/c5-untrusted/c5'"
    ) in error["msg"]


def gateway_post(stack, path: str, body: dict, token: str | None = None) -> dict:
    """One request of Snowflake's wire protocol, as a client sends it, and the gateway's answer."""
    import urllib.request

    info = stack.info
    request = urllib.request.Request(
        f"http://{info.snowflake_host}:{info.snowflake_port}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f'Snowflake Token="{token}"', "Content-Type": "application/json", "Accept": "application/snowflake"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_session_is_renewed_with_its_master_token_and_only_with_it(stack):
    info = stack.info
    login = gateway_post(
        stack,
        "/session/v1/login-request?roleName=ACCOUNTADMIN",
        {
            "data": {
                "ACCOUNT_NAME": info.snowflake_account,
                "LOGIN_NAME": info.admin_user,
                "PASSWORD": info.admin_password,
            }
        },
    )["data"]
    token, master = login["token"], login["masterToken"]

    def renew(with_token: str) -> dict:
        return gateway_post(stack, "/session/token-request?requestId=r1", {"oldSessionToken": token, "requestType": "RENEW"}, with_token)

    renewed = renew(master)
    assert renewed["success"] and renewed["data"]["sessionToken"] == token and renewed["data"]["masterToken"] == master
    assert renewed["data"]["sessionId"] == login["sessionId"]
    # A session token is not a master token; 5.x reads any `data` object as tokens, so a refusal has none.
    refused = renew(token)
    assert (refused["success"], refused["code"], refused["data"]) == (False, "390114", None)
    assert gateway_post(stack, "/session?delete=true", {}, token)["success"]
    assert renew(master)["code"] == "390114"


# -- internal stages: PUT (connector 4.x copies the files itself, LOCAL_FS), LIST, REMOVE, COPY from staged JSON --


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> dict[str, Path]:
    """A JSON array file (three records), an NDJSON.gz (two), and an NDJSON file whose second line is not JSON."""
    folder = tmp_path_factory.mktemp("staged")
    files = {"array": folder / "events.json", "ndjson": folder / "more.ndjson.gz", "bad": folder / "bad.ndjson"}
    files["array"].write_text(json.dumps([{"id": 1, "kind": "a"}, {"id": 2, "kind": "b"}, {"id": 3, "kind": "c"}]))
    files["ndjson"].write_bytes(gzip.compress(b'{"id": 4, "kind": "d"}\n{"id": 5, "kind": "e"}\n'))
    files["bad"].write_text('{"id": 6}\n{"id": 7,,}\n{"id": 8}\n')
    return files


def statements(python: Path | str, stack, *sql: str) -> list[dict]:
    """Each statement's {columns, rows} or {error}, run in one session of that interpreter's connector."""
    report = session(python, {"connect": admin_arguments(stack), "statements": list(sql)})
    assert "login_error" not in report, report
    return report["results"]


@pytest.fixture(scope="module")
def landing(stack, connector_4, staged) -> list[dict]:
    """A named stage with a JSON file format and the three files PUT into it by connector 4.x."""
    with admin_connection(stack.info) as connection:
        for sql in (
            "CREATE DATABASE IF NOT EXISTS WIDF_STAGES",
            "CREATE OR REPLACE STAGE WIDF_STAGES.PUBLIC.LANDING FILE_FORMAT = (TYPE = JSON STRIP_OUTER_ARRAY = TRUE)",
            "CREATE OR REPLACE TABLE WIDF_STAGES.PUBLIC.TARGET (V VARIANT)",
        ):
            connection.cursor().execute(sql)
    return statements(
        connector_4,
        stack,
        "USE SCHEMA WIDF_STAGES.PUBLIC",
        f"PUT file://{staged['array']} @LANDING/in",
        f"PUT 'file://{staged['ndjson']}' @LANDING/in AUTO_COMPRESS = TRUE",
        f"PUT file://{staged['bad']} @LANDING/bad AUTO_COMPRESS = FALSE",
        f"PUT file://{staged['bad']} @LANDING/trash/a",
        f"PUT file://{staged['bad']} @LANDING/trash/b",
        f"PUT file://{staged['array']} @~/mine OVERWRITE = TRUE",
        f"PUT file://{staged['ndjson']} @%TARGET",
        "LIST @~/mine",
        "LIST @%TARGET",
        f"PUT file://{staged['array']} @LANDING/in",
    )


PUT_COLUMNS = ["source", "target", "source_size", "target_size", "source_compression", "target_compression", "status", "message"]


def test_connector_4_puts_files_into_a_stage_compressing_them_as_asked(landing, staged):
    assert all("error" not in r for r in landing), landing
    uploads = landing[1:4]
    assert all(r["columns"] == PUT_COLUMNS for r in uploads)
    assert [[tuple(row[i] for i in (0, 1, 4, 5, 6)) for row in r["rows"]] for r in uploads] == [
        [("events.json", "events.json.gz", "NONE", "GZIP", "UPLOADED")],
        [("more.ndjson.gz", "more.ndjson.gz", "GZIP", "GZIP", "UPLOADED")],  # already gzip: kept as it is
        [("bad.ndjson", "bad.ndjson", "NONE", "NONE", "UPLOADED")],
    ]
    assert uploads[2]["rows"][0][3] == staged["bad"].stat().st_size  # stored as it is, uncompressed
    # The user stage and a table stage list their files without a stage name.
    assert [[row[0] for row in r["rows"]] for r in landing[8:10]] == [["mine/events.json.gz"], ["more.ndjson.gz"]]
    # OVERWRITE = FALSE (the default): a file whose target exists is skipped, and the staged one kept.
    again = landing[10]
    assert again["columns"] == PUT_COLUMNS
    assert [tuple(row[i] for i in (0, 1, 3, 6)) for row in again["rows"]] == [("events.json", "events.json.gz", 0, "SKIPPED")]


def test_list_shows_staged_files_with_size_md5_and_time_and_filters_by_pattern(stack, landing, staged):
    with admin_connection(stack.info) as connection:
        cursor = connection.cursor().execute("LIST @WIDF_STAGES.PUBLIC.LANDING/bad")
        assert [c[0] for c in cursor.description] == ["name", "size", "md5", "last_modified"]
        rows = cursor.fetchall()
        assert [r[0] for r in rows] == ["landing/bad/bad.ndjson"]
        listed = connection.cursor().execute("LIST @WIDF_STAGES.PUBLIC.LANDING/in").fetchall()
        assert [r[0] for r in listed] == ["landing/in/events.json.gz", "landing/in/more.ndjson.gz"]
        assert rows[0][1:3] == (staged["bad"].stat().st_size, hashlib.md5(staged["bad"].read_bytes()).hexdigest())
        assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT", rows[0][3])
        listed = connection.cursor().execute("LS @WIDF_STAGES.PUBLIC.LANDING/in PATTERN = '.*more.*'").fetchall()
        assert [r[0] for r in listed] == ["landing/in/more.ndjson.gz"]
        assert [r[1] for r in connection.cursor().execute("SHOW STAGES LIKE 'LAND%' IN WIDF_STAGES.PUBLIC").fetchall()] == ["LANDING"]


def test_connector_5_puts_through_the_stages_s3_location_and_its_files_list_and_load_as_any(stack, landing, staged):
    """5.x's core uploads to S3 itself (it has no local stage transfer): the gateway names a bucket on the stack's
    moto, the core compresses and uploads there, and the stage's next reader finds the file in the stage."""
    with admin_connection(stack.info) as connection:
        cursor = connection.cursor()
        cursor.execute("CREATE OR REPLACE STAGE WIDF_STAGES.PUBLIC.FROM_FIVE")
        put = cursor.execute(f"PUT file://{staged['ndjson']} @WIDF_STAGES.PUBLIC.FROM_FIVE/in").fetchall()
        assert [(r[0], r[1], r[6]) for r in put] == [("more.ndjson.gz", "more.ndjson.gz", "UPLOADED")]
        [(name, size, md5, _)] = cursor.execute("LIST @WIDF_STAGES.PUBLIC.FROM_FIVE").fetchall()
        assert name == "from_five/in/more.ndjson.gz" and size > 0 and len(md5) == 32
        cursor.execute("CREATE OR REPLACE TABLE WIDF_STAGES.PUBLIC.FIVE (V VARIANT)")
        copied = cursor.execute(
            "COPY INTO WIDF_STAGES.PUBLIC.FIVE FROM @WIDF_STAGES.PUBLIC.FROM_FIVE FILE_FORMAT = (TYPE = JSON)"
        ).fetchall()
        assert [r[:4] for r in copied] == [("from_five/in/more.ndjson.gz", "LOADED", 2, 2)]
        rows = cursor.execute("SELECT V FROM WIDF_STAGES.PUBLIC.FIVE ORDER BY 1").fetchall()
        assert [json.loads(v) for (v,) in rows] == [
            json.loads(line) for line in gzip.decompress(staged["ndjson"].read_bytes()).splitlines()
        ]
        skipped = cursor.execute(f"PUT file://{staged['ndjson']} @WIDF_STAGES.PUBLIC.FROM_FIVE/in").fetchall()
        assert [r[6] for r in skipped] == ["SKIPPED"]  # OVERWRITE = FALSE: the file is there already


def test_copy_loads_each_record_of_each_file_once_unless_forced(stack, landing):
    with admin_connection(stack.info) as connection:
        cursor = connection.cursor()
        cursor.execute("CREATE OR REPLACE TABLE WIDF_STAGES.PUBLIC.RAW (V VARIANT)")
        cursor.execute("COPY INTO WIDF_STAGES.PUBLIC.RAW FROM @WIDF_STAGES.PUBLIC.LANDING/in")
        assert [c[0] for c in cursor.description][:6] == ["file", "status", "rows_parsed", "rows_loaded", "error_limit", "errors_seen"]
        assert sorted(r[:4] for r in cursor.fetchall()) == [
            ("landing/in/events.json.gz", "LOADED", 3, 3),
            ("landing/in/more.ndjson.gz", "LOADED", 2, 2),
        ]
        assert cursor.execute("SELECT V:id::int, V:kind::string FROM WIDF_STAGES.PUBLIC.RAW ORDER BY 1").fetchall() == [
            (1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e"),
        ]  # fmt: skip
        # Load metadata: a file already loaded into this table (same path, same md5) is not loaded again.
        cursor.execute("COPY INTO WIDF_STAGES.PUBLIC.RAW FROM @WIDF_STAGES.PUBLIC.LANDING/in")
        assert cursor.fetchall() == [("Copy executed with 0 files processed.",)]
        cursor.execute("COPY INTO WIDF_STAGES.PUBLIC.RAW FROM @WIDF_STAGES.PUBLIC.LANDING FILES = ('in/more.ndjson.gz') FORCE = TRUE")
        assert [(r[0], r[3]) for r in cursor.fetchall()] == [("landing/in/more.ndjson.gz", 2)]
        assert cursor.execute("SELECT COUNT(*) FROM WIDF_STAGES.PUBLIC.RAW").fetchone() == (7,)
        # Without STRIP_OUTER_ARRAY, the array is one record.
        cursor.execute("CREATE OR REPLACE TABLE WIDF_STAGES.PUBLIC.WHOLE (V VARIANT)")
        cursor.execute(
            "COPY INTO WIDF_STAGES.PUBLIC.WHOLE FROM @WIDF_STAGES.PUBLIC.LANDING FILES = ('in/events.json.gz') "
            "FILE_FORMAT = (TYPE = JSON STRIP_OUTER_ARRAY = FALSE)"
        )
        assert cursor.fetchone()[:4] == ("landing/in/events.json.gz", "LOADED", 1, 1)
        assert cursor.execute("SELECT ARRAY_SIZE(V) FROM WIDF_STAGES.PUBLIC.WHOLE").fetchall() == [(3,)]


def test_on_error_aborts_skips_the_file_or_continues_past_a_bad_record(stack, landing):
    with admin_connection(stack.info) as connection:
        cursor = connection.cursor()
        cursor.execute("CREATE OR REPLACE TABLE WIDF_STAGES.PUBLIC.PICKY (V VARIANT)")
        copy = "COPY INTO WIDF_STAGES.PUBLIC.PICKY FROM @WIDF_STAGES.PUBLIC.LANDING/bad"
        with pytest.raises(ProgrammingError) as error:
            cursor.execute(copy)  # ON_ERROR = ABORT_STATEMENT, the default for bulk loading
        assert error.value.errno == 100069
        assert "Error parsing JSON" in error.value.raw_msg and "File 'landing/bad/bad.ndjson', line 2" in error.value.raw_msg
        assert cursor.execute("SELECT COUNT(*) FROM WIDF_STAGES.PUBLIC.PICKY").fetchone() == (0,)
        cursor.execute(copy + " ON_ERROR = SKIP_FILE")
        assert cursor.fetchall()[0][:6] == ("landing/bad/bad.ndjson", "LOAD_FAILED", 3, 0, 1, 1)
        assert cursor.execute("SELECT COUNT(*) FROM WIDF_STAGES.PUBLIC.PICKY").fetchone() == (0,)
        # A file that failed is not in the load metadata: the next COPY reads it again.
        cursor.execute(copy + " ON_ERROR = 'continue'")
        rows = cursor.fetchall()
        assert rows[0][:6] == ("landing/bad/bad.ndjson", "PARTIALLY_LOADED", 3, 2, 3, 1)
        assert rows[0][7] == 2  # first_error_line
        assert cursor.execute("SELECT V:id::int FROM WIDF_STAGES.PUBLIC.PICKY ORDER BY 1").fetchall() == [(6,), (8,)]


def test_copy_transforms_through_a_select_of_the_staged_columns_and_their_metadata(stack, landing):
    with admin_connection(stack.info) as connection:
        cursor = connection.cursor()
        cursor.execute("CREATE OR REPLACE TABLE WIDF_STAGES.PUBLIC.EVENTS (ID INT, KIND VARCHAR, SOURCE VARCHAR, LINE INT)")
        cursor.execute(
            "COPY INTO WIDF_STAGES.PUBLIC.EVENTS (ID, KIND, SOURCE, LINE) FROM (SELECT $1:id::int, UPPER($1:kind::string), "
            "METADATA$FILENAME, METADATA$FILE_ROW_NUMBER FROM @WIDF_STAGES.PUBLIC.LANDING/in s) PATTERN = '.*[.]ndjson[.]gz'"
        )
        assert [r[:4] for r in cursor.fetchall()] == [("landing/in/more.ndjson.gz", "LOADED", 2, 2)]
        assert cursor.execute("SELECT * FROM WIDF_STAGES.PUBLIC.EVENTS ORDER BY ID").fetchall() == [
            (4, "D", "in/more.ndjson.gz", 1),
            (5, "E", "in/more.ndjson.gz", 2),
        ]


def test_remove_deletes_what_the_pattern_matches_and_purge_what_was_loaded(stack, landing):
    with admin_connection(stack.info) as connection:
        cursor = connection.cursor()
        cursor.execute("REMOVE @WIDF_STAGES.PUBLIC.LANDING/trash PATTERN = '.*/a/.*'")
        assert [c[0] for c in cursor.description] == ["name", "result"]
        assert cursor.fetchall() == [("landing/trash/a/bad.ndjson.gz", "removed")]
        cursor.execute("CREATE OR REPLACE TABLE WIDF_STAGES.PUBLIC.PURGED (V VARIANT)")
        cursor.execute("COPY INTO WIDF_STAGES.PUBLIC.PURGED FROM @WIDF_STAGES.PUBLIC.LANDING/trash ON_ERROR = CONTINUE PURGE = TRUE")
        assert [r[:4] for r in cursor.fetchall()] == [("landing/trash/b/bad.ndjson.gz", "PARTIALLY_LOADED", 3, 2)]
        assert cursor.execute("LIST @WIDF_STAGES.PUBLIC.LANDING/trash").fetchall() == []


def test_a_stage_is_read_with_read_and_written_with_write(stack, landing):
    with admin_connection(stack.info) as connection:
        cursor = connection.cursor()
        for sql in (
            "CREATE ROLE IF NOT EXISTS STAGE_READER",
            "GRANT USAGE ON DATABASE WIDF_STAGES TO ROLE STAGE_READER",
            "GRANT USAGE ON SCHEMA WIDF_STAGES.PUBLIC TO ROLE STAGE_READER",
            f"GRANT ROLE STAGE_READER TO USER {stack.info.admin_user}",
            "USE ROLE STAGE_READER",
            "USE SECONDARY ROLES NONE",
        ):
            cursor.execute(sql)
        with pytest.raises(ProgrammingError) as error:
            cursor.execute("LIST @WIDF_STAGES.PUBLIC.LANDING")
        assert "Stage 'WIDF_STAGES.PUBLIC.LANDING' does not exist or not authorized." in error.value.raw_msg
        connection.cursor().execute("USE ROLE ACCOUNTADMIN")
        connection.cursor().execute("GRANT READ ON STAGE WIDF_STAGES.PUBLIC.LANDING TO ROLE STAGE_READER")
        connection.cursor().execute("USE ROLE STAGE_READER")
        assert [r[0] for r in cursor.execute("LIST @WIDF_STAGES.PUBLIC.LANDING/in").fetchall()] == [
            "landing/in/events.json.gz",
            "landing/in/more.ndjson.gz",
        ]
        with pytest.raises(ProgrammingError) as error:
            cursor.execute("REMOVE @WIDF_STAGES.PUBLIC.LANDING/in")
        assert "Insufficient privileges to operate on stage 'LANDING'." in error.value.raw_msg
        with pytest.raises(ProgrammingError) as error:
            cursor.execute("CREATE STAGE WIDF_STAGES.PUBLIC.MINE")
        assert "must have CREATE STAGE granted on SCHEMA WIDF_STAGES.PUBLIC" in error.value.raw_msg


def test_a_rolled_back_copy_takes_its_load_metadata_with_it(stack, landing):
    with admin_connection(stack.info) as connection:
        cursor = connection.cursor()
        cursor.execute("CREATE OR REPLACE TABLE WIDF_STAGES.PUBLIC.UNDONE (V VARIANT)")
        copy = "COPY INTO WIDF_STAGES.PUBLIC.UNDONE FROM @WIDF_STAGES.PUBLIC.LANDING/in FILES = ('more.ndjson.gz')"
        cursor.execute("BEGIN")
        assert [r[3] for r in cursor.execute(copy).fetchall()] == [2]
        assert cursor.execute(copy).fetchall() == [("Copy executed with 0 files processed.",)]  # loaded, in this transaction
        cursor.execute("ROLLBACK")
        assert cursor.execute("SELECT COUNT(*) FROM WIDF_STAGES.PUBLIC.UNDONE").fetchone() == (0,)
        cursor.execute("BEGIN")
        assert [r[3] for r in cursor.execute(copy).fetchall()] == [2]
        cursor.execute("COMMIT")
        assert cursor.execute(copy).fetchall() == [("Copy executed with 0 files processed.",)]
        assert cursor.execute("SELECT COUNT(*) FROM WIDF_STAGES.PUBLIC.UNDONE").fetchone() == (2,)


def test_copy_reads_a_named_file_format_its_role_may_use(stack, landing):
    with admin_connection(stack.info) as connection:
        cursor = connection.cursor()
        cursor.execute("CREATE OR REPLACE FILE FORMAT WIDF_STAGES.PUBLIC.ARRAYS TYPE = JSON STRIP_OUTER_ARRAY = TRUE")
        assert cursor.fetchone() == ("File format ARRAYS successfully created.",)
        cursor.execute("CREATE OR REPLACE TABLE WIDF_STAGES.PUBLIC.FORMATTED (V VARIANT)")
        cursor.execute(
            "COPY INTO WIDF_STAGES.PUBLIC.FORMATTED FROM @WIDF_STAGES.PUBLIC.LANDING/in FILES = ('events.json.gz') "
            "FILE_FORMAT = (FORMAT_NAME = 'WIDF_STAGES.PUBLIC.ARRAYS')"
        )
        assert cursor.fetchone()[:4] == ("landing/in/events.json.gz", "LOADED", 3, 3)
        with pytest.raises(ProgrammingError) as error:
            cursor.execute("COPY INTO WIDF_STAGES.PUBLIC.FORMATTED FROM @WIDF_STAGES.PUBLIC.LANDING FILE_FORMAT = WIDF_STAGES.PUBLIC.NOPE")
        assert "File format 'WIDF_STAGES.PUBLIC.NOPE' does not exist or not authorized." in error.value.raw_msg


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("CREATE STAGE WIDF_STAGES.PUBLIC.OUTSIDE URL = 's3://bucket/path/'", "CREATE STAGE WIDF_STAGES.PUBLIC.OUTSIDE URL"),
        ("GET @~/x.json file:///tmp/", "GET @~/x.json"),
        ("COPY INTO @~/unload/ FROM (SELECT 1)", "COPY INTO @~/unload/"),
        (
            "COPY INTO WIDF_STAGES.PUBLIC.TARGET FROM @WIDF_STAGES.PUBLIC.LANDING FILE_FORMAT = (TYPE = AVRO)",
            "COPY INTO ... FILE_FORMAT = (TYPE = AVRO)",
        ),
        (
            "COPY INTO WIDF_STAGES.PUBLIC.TARGET FROM @WIDF_STAGES.PUBLIC.LANDING VALIDATION_MODE = RETURN_ERRORS",
            "COPY INTO ... VALIDATION_MODE",
        ),
        ("COPY INTO WIDF_STAGES.PUBLIC.TARGET FROM 's3://bucket/path/'", "COPY INTO WIDF_STAGES.PUBLIC.TARGET FROM 's3://"),
    ],
)
def test_what_stages_do_beyond_the_gateway_is_refused_by_name(stack, landing, statement, named):
    with admin_connection(stack.info) as connection, pytest.raises(ProgrammingError) as error:
        connection.cursor().execute(statement)
    assert f"Unsupported statement in the local gateway: {named}" in error.value.raw_msg
