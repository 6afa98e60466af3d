"""Upload → queue → runner → handler → gateway → RAW_DATA, all real local components."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from test_observability import function_launch, function_processes, log_streams

from widf_cli.demo_story import rows_for
from widf_cli.local_stack import admin_connection, deployed
from widf_local import aws, samples
from widf_ops.queues import queue_depth
from widf_ops.stack_outputs import wait_for

UNKNOWN_CALLER = "Unable to find an associated Snowflake user for the verified AWS Caller Identity with ARN 'arn:aws:sts::"


def piped(stack, *args: str) -> subprocess.CompletedProcess:
    """The command with its output going into a pipe, and no COLUMNS: as `make demo | grep`, a log file or CI sees it."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run(
        [sys.executable, "-m", "widf_cli", "--state-dir", str(stack.state_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=180,
        env={**env, "WIDF_TARGET": "local"},
    )
    assert result.returncode == 0, result.stdout
    return result


@pytest.fixture(scope="module")
def acts(stack):
    """Both acts of the demo, run once, as `make demo` runs them, into a pipe."""
    return piped(stack, "demo", "fail"), piped(stack, "demo", "success")


def test_the_demos_failure_line_survives_a_pipe_to_grep(acts):
    act_one, _ = acts
    found = subprocess.run(["grep", "-F", UNKNOWN_CALLER], input=act_one.stdout, capture_output=True, text=True)
    assert found.returncode == 0, act_one.stdout
    assert found.stdout.count("\n") == 1 and found.stdout.rstrip().endswith("/widf-loader'")


def test_tables_keep_their_layout_without_a_terminal(acts):
    _, act_two = acts
    header = next(line for line in act_two.stdout.splitlines() if "LOAD_DATE" in line)
    assert all(column in header for column in ("ACTION", "FILES_LOADED", "TOTAL_EVENTS", "UNIQUE_USERS", "TOTAL_AMOUNT")), header
    assert max(map(len, act_two.stdout.splitlines())) > 80  # laid out wider than rich's default for a pipe


def test_act_one_fails_because_no_user_trusts_the_role(acts):
    act_one, _ = acts
    assert (
        "Unable to find an associated Snowflake user for the verified AWS Caller Identity with ARN "
        f"'arn:aws:sts::{aws.ACCOUNT_ID}:assumed-role/widf-loader-function-role/widf-loader'"
    ) in act_one.stdout


def test_the_failure_is_logged_as_json_naming_its_file_and_counted_in_the_metrics(stack, acts):
    act_one, _ = acts
    uri = re.search(r"Uploaded (s3://\S+?);", act_one.stdout).group(1)
    group = deployed(stack.paths).resources.log_group

    def lines() -> list[dict]:
        return [json.loads(m) for ms in log_streams(stack, group).values() for m in ms if m.startswith("{")]

    emf = wait_for(lambda: [r for r in lines() if r.get("FilesFailed")] or None, seconds=30)
    assert emf, "no metrics record counted the failed file"
    failed = [r for r in lines() if r.get("message", "").startswith(f"FAILED {uri}: ")]
    assert failed and {(r["level"], r["status"]) for r in failed} == {("ERROR", "FAILED")}
    assert {r["file_id"].split("#")[0] for r in failed} == {uri.removeprefix("s3://")}
    assert "Unable to find an associated Snowflake user" in failed[0]["message"]


def test_the_failed_file_waits_in_the_queue_for_redelivery(stack, acts):
    queue_url = deployed(stack.paths).resources.queue_url
    assert queue_depth(aws.client("sqs", stack.info.aws_endpoint), queue_url).in_flight >= 1


def test_act_two_loads_as_the_service_user_and_summarises(acts):
    _, act_two = acts
    assert "Loaded 20 events as LAMBDA_LOADER_BOT" in act_two.stdout
    assert "DAILY_SUMMARY matches RAW_DATA, action by action." in act_two.stdout


def test_gzipped_ndjson_with_an_awkward_key_lands_with_its_event_context(stack, acts, names):
    resources = deployed(stack.paths).resources
    key = "incoming/team a/dt=2026-11-27/événements+1.ndjson.gz"
    events = samples.sample_events(7, seed=11)
    body = gzip.compress(b"\n".join(orjson.dumps(e) for e in events))
    aws.client("s3", stack.info.aws_endpoint).put_object(Bucket=resources.bucket, Key=key, Body=body)
    uri = f"s3://{resources.bucket}/{key}"
    with admin_connection(stack.info) as connection:
        rows = wait_for(lambda: r if len(r := rows_for(connection, names, uri)) >= len(events) else None, seconds=60)
        assert rows is not None, f"{uri} did not load"
        cursor = connection.cursor().execute(
            f"SELECT RECORD_INDEX, SOURCE_BUCKET, SOURCE_KEY, SOURCE_SIZE, SOURCE_VERSION_ID, LOADED_BY "
            f"FROM {names.database}.{names.schema}.RAW_DATA WHERE SOURCE_FILE = %s ORDER BY RECORD_INDEX",
            (uri,),
        )
        context = cursor.fetchall()
    assert [orjson.loads(payload) for payload, _ in rows] == events
    assert [c[0] for c in context] == list(range(len(events)))
    assert {c[1:4] for c in context} == {(resources.bucket, key, len(body))}
    assert all(c[4] for c in context), "versioned bucket: every row names the object version"
    assert {c[5] for c in context} == {names.user}


def test_the_stack_runs_from_its_own_environment(stack):
    from widf_local.stack import STACK_PYTHON

    command = (Path("/proc") / str(stack.info.pid) / "cmdline").read_bytes().split(b"\0")
    assert command[:3] == [str(STACK_PYTHON).encode(), b"-m", b"widf_local.serve"]


def test_starting_and_stopping_the_stack_needs_neither_fakesnow_nor_moto():
    script = "import sys, widf_cli.local, widf_local.stack; print(' '.join({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert {"fakesnow", "moto", "duckdb", "sqlglot", "uvicorn", "werkzeug"} & set(loaded) == set()


def test_local_up_without_the_stacks_environment_says_to_run_make_install(tmp_path, monkeypatch):
    from widf_local import stack

    monkeypatch.setattr(stack, "STACK_PYTHON", tmp_path / "local" / ".venv" / "bin" / "python")
    with pytest.raises(stack.StackError, match=r"environment is missing .*: run `make install`\.$"):
        stack.start(stack.StackPaths(tmp_path / "state"), stack.FunctionRuntime(sys.executable, tmp_path / "widf_loader", tmp_path))


# Run as the function runs (its interpreter, flags, user, directory and environment): what could it import?
IMPORT_PROBE = """
import importlib, json, sys
def importable(name):
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True
print(json.dumps({"executable": sys.executable, "version": sys.version_info[:2], "importable": {name: importable(name) for name in sys.argv[1:]}}))
"""


def as_the_function(launch, arguments: list[str], environ: dict[str, str]) -> dict:
    """A Python probe run by the runner's own launch, with a warm container's environment; what it printed, as JSON."""
    probe = launch.popen(arguments, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = probe.communicate(timeout=60)
    assert probe.returncode == 0, err
    return json.loads(out)


def test_the_function_runs_from_its_own_code_with_a_python_of_the_projects_version(stack, acts):
    from widf_local.stack import STACK_PYTHON

    launch = function_launch(stack)
    containers = function_processes(stack)
    assert containers, "no warm container after the demo"
    _, command, environ = containers[0]
    assert command[: command.index(launch.bootstrap)] == [launch.python, "-S", "-P"]
    if launch.user is None:  # as the stack's own user: the project's interpreter (the tests run from it)
        assert launch.python == sys.executable
    names = ["widf_loader.handler", "widf_ops", "widf_local", "widf_cli", "fakesnow", "moto"]
    found = as_the_function(launch, ["-c", IMPORT_PROBE, *names], environ)
    assert found["executable"] == launch.python != str(STACK_PYTHON)
    assert found["version"] == list(sys.version_info[:2])  # the project's Python version, whichever interpreter runs it
    assert found["importable"] == {name: name == "widf_loader.handler" for name in names}


# Run as the function runs: which of these files (and the files under these folders) can it open?
READ_PROBE = """
import json, os, sys
opened, refused = [], {}
def attempt(path):
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        refused[path] = type(e).__name__
    else:
        opened.append(path)
for path in sys.argv[1:]:
    if os.path.isdir(path):
        for folder, _, names in os.walk(path):
            for name in names:
                attempt(os.path.join(folder, name))
    else:
        attempt(path)
print(json.dumps({"opened": opened, "refused": refused}))
"""


def test_the_function_cannot_read_the_stacks_admin_password(stack, acts):
    if os.geteuid() != 0:
        pytest.skip(
            "the stack is not root, so it cannot run the function as another user: the function can read whatever "
            "the stack's user can, stack.json among them (docs/local-stack.md, 'The function's user')"
        )
    launch = function_launch(stack)
    containers = function_processes(stack)
    assert containers, "no warm container after the demo"
    pid, _, environ = containers[0]
    status = dict(line.partition(":")[::2] for line in (Path("/proc") / str(pid) / "status").read_text().splitlines())
    assert (status["Uid"].split(), status["Gid"].split()) == ([str(launch.user)] * 4, [str(launch.group)] * 4)
    assert launch.user != 0 and status["Groups"].split() == []  # none of the stack's groups either
    stack_process = Path("/proc") / str(stack.info.pid)
    refused = [stack.paths.stack_json, stack_process / "environ", stack_process / "mem"]
    walked = [stack_process / "cmdline", stack.state_dir, Path(launch.task_root).parent]  # the function's own root, HOME too
    found = as_the_function(launch, ["-c", READ_PROBE, *map(str, refused + walked)], environ)
    assert {path: found["refused"].get(path) for path in map(str, refused)} == dict.fromkeys(map(str, refused), "PermissionError")
    assert found["opened"], "the function could open nothing: the probe proves nothing"
    password = stack.info.admin_password.encode()
    assert [path for path in found["opened"] if password in Path(path).read_bytes()] == []
    assert stack.info.admin_password not in "\n".join(environ.values())
