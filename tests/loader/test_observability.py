"""What a load tells its operators: JSON logs with the file's correlation id, EMF metrics that match the load,
and a QUERY_TAG on every Snowflake statement - all read back from the local stack as an operator would."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from helpers import ndjson, put, query
from widf_loader.events import file_id
from widf_local import aws, samples
from widf_local.stack import FunctionLaunch
from widf_ops.stack_outputs import wait_for

LAMBDA_LINES = ("START RequestId:", "END RequestId:", "REPORT RequestId:")
BAD_RECORD = {"event_id": "e-bad", "action": "view"}  # no user_id, no timestamp: breaks the event contract


def outcome(stack, ref) -> tuple | None:
    rows = query(
        stack,
        "SELECT STATUS, ROWS_LOADED, ROWS_REJECTED, LOAD_ID FROM WIDF_DEMO_DB.PUBLIC.LOAD_HISTORY WHERE FILE_ID = %s",
        (file_id(ref),),
    )
    return rows[0] if rows else None


def log_streams(stack, group: str) -> dict[str, list[str]]:
    """Every line in the function's log group, per stream, in the order the runner wrote them."""
    logs = aws.client("logs", stack.info.aws_endpoint)
    streams: dict[str, list[str]] = {}
    kwargs = {"logGroupName": group}
    while True:
        page = logs.filter_log_events(**kwargs)
        for event in page["events"]:
            streams.setdefault(event["logStreamName"], []).append(event["message"])
        if not (token := page.get("nextToken")):
            return streams
        kwargs["nextToken"] = token


def invocation_about(stack, group: str, uri: str) -> list[str] | None:
    """The lines of the (finished) invocation that loaded `uri`, from START to END."""
    for lines in log_streams(stack, group).values():
        start = None
        for index, line in enumerate(lines):
            if line.startswith("START RequestId:"):
                start = index
            elif line.startswith("END RequestId:") and start is not None:
                block = lines[start : index + 1]
                if any(uri in line for line in block):
                    return block
    return None


def loaded(stack, loader, key: str, body: bytes) -> dict:
    ref = put(stack, loader, key, body)
    settled = wait_for(lambda: outcome(stack, ref), seconds=90)
    assert settled is not None, f"{ref.uri} was never loaded"
    uri = f"s3://{ref.bucket}/{ref.key}"
    block = wait_for(
        lambda: b if (b := invocation_about(stack, loader.resources.log_group, uri)) and any('"_aws"' in line for line in b) else None,
        seconds=30,
    )
    assert block is not None, (
        f"the invocation that loaded {uri} never logged its end and metrics: {log_streams(stack, loader.resources.log_group)}"
    )
    return {"ref": ref, "uri": uri, "outcome": settled, "lines": block}


@pytest.fixture(scope="module")
def loads(stack, loader):
    """A clean file, then (once the first is in) a file with one record that breaks its contract."""
    good = loaded(stack, loader, "incoming/obs/clean.json", orjson.dumps(samples.sample_events(6, seed=3)))
    mixed = loaded(stack, loader, "incoming/obs/mixed.ndjson", ndjson([*samples.sample_events(10, seed=4), BAD_RECORD]))
    return good, mixed


def records(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines if not line.startswith(LAMBDA_LINES)]


def metrics_record(lines: list[str]) -> dict:
    (emf,) = [r for r in records(lines) if "_aws" in r]
    return emf


def test_every_line_the_function_writes_about_a_file_is_json_with_its_correlation_id(loads):
    for load in loads:
        status, rows, rejected, load_id = load["outcome"]
        logs = [r for r in records(load["lines"]) if "_aws" not in r]  # a line that is not JSON fails here
        assert logs, "the invocation logged nothing about its file"
        assert {(r["file_id"], r["load_id"]) for r in logs} == {(file_id(load["ref"]), load_id)}
        assert all(r["level"] and r["service"] == "widf-loader" and r["function_request_id"] for r in logs)
        (settled,) = [r for r in logs if r.get("status")]
        assert settled["message"] == f"{status} {load['uri']}"
        assert (settled["level"], settled["rows_loaded"], settled["rows_rejected"]) == ("INFO", rows, rejected)


def test_each_invocation_reports_emf_metrics_that_match_its_load(loads):
    for load in loads:
        status, rows, rejected, _ = load["outcome"]
        emf = metrics_record(load["lines"])
        (directive,) = emf["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "WidfLoader" and directive["Dimensions"] == [["service"]]
        assert {m["Name"] for m in directive["Metrics"]} == {"FilesLoaded", "RowsLoaded", "RowsRejected", "BytesRead", "LoadLatency"}
        assert status == "LOADED"
        assert (emf["FilesLoaded"], emf["RowsLoaded"], emf["RowsRejected"]) == ([1.0], [float(rows)], [float(rejected)])
        assert emf["BytesRead"] == [float(load["ref"].size)]
        (latency,) = emf["LoadLatency"]
        assert 0 < latency < 90_000, "from the object's arrival to the commit, in ms"
    assert [load["outcome"][1:3] for load in loads] == [(6, 0), (10, 1)]


def test_every_statement_of_a_load_carries_a_query_tag_naming_the_file_and_load(stack, loads):
    history = query(
        stack,
        "SELECT QUERY_TEXT, QUERY_TAG, EXECUTION_STATUS FROM TABLE(WIDF_DEMO_DB.INFORMATION_SCHEMA.QUERY_HISTORY(RESULT_LIMIT => 10000)) "
        "WHERE USER_NAME = 'LAMBDA_LOADER_BOT' ORDER BY START_TIME",
    )
    assert history and all(tag for _, tag, _ in history), "a statement of the loader ran untagged"
    for load in loads:
        load_id = load["outcome"][3]
        tags = [json.loads(tag) for _, tag, _ in history]
        statements = [text.split()[0].upper() for (text, _, status), tag in zip(history, tags, strict=True) if tag["load_id"] == load_id]
        assert {tag["file_id"] for tag in tags if tag["load_id"] == load_id} == {file_id(load["ref"])}
        if load["outcome"][2] == 0:  # a clean small file: the ledger check, one insert, the claim, the commit
            assert statements == ["SELECT", "INSERT", "MERGE", "COMMIT"]
        else:  # the rejected record goes to REJECTED_RECORDS in the same transaction
            assert statements == ["SELECT", "INSERT", "INSERT", "MERGE", "COMMIT"]
    assert {status for *_, status in history} == {"SUCCESS"}


def test_the_functions_credentials_never_reach_its_logs(stack, loader, loads):
    secrets = worker_secrets(stack)
    assert secrets, "no running function container found for this stack"
    everything = "\n".join(line for lines in log_streams(stack, loader.resources.log_group).values() for line in lines)
    assert loads[0]["uri"] in everything
    assert not [s for s in secrets if s in everything]


def worker_secrets(stack) -> set[str]:
    """The secret key and session token each warm container of this stack holds (read from its environment)."""
    return {environ[name] for _, _, environ in function_processes(stack) for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}


def function_launch(stack) -> FunctionLaunch:
    """How this stack's runner starts the function's containers: the FUNCTION argument of its command line."""
    command = (Path("/proc") / str(stack.info.pid) / "cmdline").read_bytes().decode().split("\0")
    return FunctionLaunch.from_json(command[command.index("widf_local.serve") + 2])


def function_processes(stack) -> list[tuple[int, list[str], dict[str, str]]]:
    """(pid, command line, environment) of each warm container of this stack (its own bootstrap), read from /proc."""
    bootstrap = function_launch(stack).bootstrap
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().decode().split("\0")[:-1]
            if bootstrap not in command:
                continue
            environ = dict(v.split("=", 1) for v in (proc / "environ").read_bytes().decode().split("\0") if "=" in v)
        except (OSError, ValueError):
            continue  # not ours, or gone
        found.append((int(proc.name), command, environ))
    return found


def test_aws_logs_prints_level_message_and_file_and_raw_json_on_request(stack, loads):
    good = loads[0]
    readable = stack.cli("aws", "logs", "--since", "30m").stdout
    assert f"INFO    LOADED {good['uri']}" in readable
    assert f"file_id={file_id(good['ref'])}" in readable
    assert "metrics WidfLoader  FilesLoaded=1 RowsLoaded=6 RowsRejected=0" in readable
    raw = stack.cli("aws", "logs", "--since", "30m", "--raw").stdout.splitlines()
    parsed = [json.loads(line) for line in raw if line.startswith("{")]
    assert any(r.get("file_id") == file_id(good["ref"]) and r.get("status") == "LOADED" for r in parsed)
    assert all(line.startswith(("{", *LAMBDA_LINES)) for line in raw), "every line arrives whole"


def test_query_history_keeps_session_tags_and_shows_each_user_only_their_own(stack, loads, as_function):
    from widf_cli.local_stack import admin_connection
    from widf_loader.config import LoaderSettings
    from widf_loader.warehouse import connect

    history = "SELECT USER_NAME, QUERY_TAG, QUERY_TEXT FROM TABLE(WIDF_DEMO_DB.INFORMATION_SCHEMA.QUERY_HISTORY()) WHERE QUERY_TEXT LIKE 'SELECT %-- probe'"
    with admin_connection(stack.info, session_parameters={"QUERY_TAG": "at-login"}) as admin:
        admin.cursor().execute("SELECT 1 -- probe")
        admin.cursor().execute("ALTER SESSION SET QUERY_TAG = 'it''s altered'")
        admin.cursor().execute("SELECT 2 -- probe")
        seen_by_admin = admin.cursor().execute(history).fetchall()
    with connect(LoaderSettings.from_env()) as loader:  # the function's own keyless session
        seen_by_loader = loader.cursor().execute(history).fetchall()
        loaders_own = (
            loader.cursor()
            .execute("SELECT DISTINCT USER_NAME FROM TABLE(WIDF_DEMO_DB.INFORMATION_SCHEMA.QUERY_HISTORY(RESULT_LIMIT => 10000))")
            .fetchall()
        )
    assert [(tag, text) for _, tag, text in seen_by_admin] == [("it's altered", "SELECT 2 -- probe"), ("at-login", "SELECT 1 -- probe")]
    assert seen_by_loader == [] and loaders_own == [("LAMBDA_LOADER_BOT",)]
