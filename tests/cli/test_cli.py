"""The command line as scripts and people meet it: examples in every help,
JSON for scripts, no colour codes in a pipe or under NO_COLOR, and exit codes
that mean one thing each (0 ok, 1 failure, 2 usage)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from widf_cli import app
from widf_cli.local_stack import admin_connection
from widf_local.pytest_plugin import Stack

ANSI = "\x1b["


def command_paths(command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under the top-level one, as the words a user types."""
    paths = [path]
    if subcommands := getattr(command, "commands", None):  # a group (typer ships its own click)
        for name, sub in sorted(subcommands.items()):
            paths += command_paths(sub, (*path, name))
    return paths


ALL_COMMANDS = command_paths(typer.main.get_command(app))


def invoke(stack: Stack, *args: str):
    return CliRunner().invoke(app, ["--state-dir", str(stack.state_dir), *args], env={"WIDF_TARGET": "local"}, catch_exceptions=False)


def run(state_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """The command in its own process, its output in pipes (not a terminal)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS")}
    return subprocess.run(
        [sys.executable, "-m", "widf_cli", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment | {"TERM": "xterm-256color", "WIDF_TARGET": "local"} | env,
    )


def run_in_terminal(state_dir: Path, *args: str, **env: str) -> str:
    """The command with a pseudo-terminal as its stdout: what a person at a terminal sees, byte for byte."""
    controller, terminal = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
    process = subprocess.Popen(
        [sys.executable, "-m", "widf_cli", "--state-dir", str(state_dir), *args],
        stdout=terminal,
        stderr=terminal,
        stdin=subprocess.DEVNULL,
        env=environment | {"TERM": "xterm-256color", "WIDF_TARGET": "local"} | env,
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the command exited and closed its end
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=120) == 0, output
    return output.decode()


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "widf-loader")
def test_every_command_help_shows_an_example(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    example = [line.strip() for line in result.output.splitlines() if line.strip().startswith("Example: widf-loader")]
    assert example, f"`widf-loader {' '.join(path)} --help` shows no example:\n{result.output}"
    assert not path or any(path[-1] in line for line in example), f"the example does not use `{path[-1]}`: {example}"


@pytest.fixture(scope="module")
def one_row(stack):
    """RAW_DATA with one row, inserted by the administrator."""
    stack.cli("snow", "setup")
    with admin_connection(stack.info) as connection:
        connection.cursor().execute(
            "INSERT INTO WIDF_DEMO_DB.PUBLIC.RAW_DATA (SOURCE_FILE, PAYLOAD, LOADED_BY, RECORD_INDEX) "
            """SELECT 's3://bucket/incoming/one.json', PARSE_JSON('{"action": "purchase", "user_id": "u-1", "amount": 12.5}'), 'pytest', 0"""
        )


def test_snow_query_json_is_one_object_per_row(stack, one_row):
    result = invoke(stack, "snow", "query", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert (row["SOURCE_FILE"], row["ACTION"], row["USER_ID"], row["AMOUNT"], row["RECORD_INDEX"]) == (
        "s3://bucket/incoming/one.json",
        "purchase",
        "u-1",
        12.5,
        0,
    )
    datetime.fromisoformat(row["LOADED_AT"])  # times are ISO 8601 text


def test_a_snowflake_error_ends_the_command_with_its_one_line_in_snowflakes_words(stack, one_row):
    result = CliRunner().invoke(
        app, ["--state-dir", str(stack.state_dir), "snow", "query"], env={"WIDF_TARGET": "local", "SNOWFLAKE_DATABASE": "NO_SUCH_DB"}
    )
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()  # connector 5.x adds the request's id at the end
    assert line.startswith(
        "error: Snowflake: 002003 (42S02): SQL compilation error: Object 'NO_SUCH_DB.PUBLIC.RAW_DATA' does not exist or not authorized."
    )


def test_snow_query_summary_json_counts_the_row(stack, one_row):
    result = invoke(stack, "snow", "query-summary", "--refresh", "--json")
    assert result.exit_code == 0, result.output
    (day,) = json.loads(result.stdout)
    assert (day["ACTION"], day["FILES_LOADED"], day["TOTAL_EVENTS"], day["TOTAL_AMOUNT"]) == ("purchase", 1, 1, 12.5)


def test_local_status_json_names_the_running_stack(stack):
    result = invoke(stack, "local", "status", "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    info = stack.info
    assert (status["pid"], status["aws endpoint"], status["admin user"]) == (info.pid, info.aws_endpoint, info.admin_user)


def test_config_and_aws_check_json(stack):
    config = json.loads(invoke(stack, "config", "--json").stdout)
    assert (config["target"], config["snowflake user"]) == ("local", "LAMBDA_LOADER_BOT")
    check = json.loads(invoke(stack, "aws", "check", "--json").stdout)
    assert (check["account"], check["stack"]) == ("123456789012", "widf-loader: not deployed")


def test_no_colour_codes_reach_a_pipe(stack):
    shown = run(stack.state_dir, "local", "status")
    assert shown.returncode == 0, shown.stderr
    assert "aws endpoint" in shown.stdout and ANSI not in shown.stdout
    refused = run(stack.state_dir / "nowhere", "local", "status")  # a failure the user can fix: exit 1, one line
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: ") and len(refused.stderr.strip().splitlines()) == 1
    assert ANSI not in refused.stderr


def test_a_terminal_gets_colour_unless_no_color_is_set(stack):
    assert ANSI in run_in_terminal(stack.state_dir, "local", "status")  # the check below could fail
    plain = run_in_terminal(stack.state_dir, "local", "status", NO_COLOR="1")
    assert "aws endpoint" in plain and ANSI not in plain
    help_text = run_in_terminal(stack.state_dir, "local", "--help", NO_COLOR="1")  # typer's own console too
    assert "Example: widf-loader local up" in help_text and ANSI not in help_text


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("snow", "query", "--limit", "0"), 2),  # a value out of range: usage
        (("snow", "no-such-command"), 2),  # an unknown command: usage
        (("--target", "cloud", "demo", "fail"), 2),  # a command the target does not have: usage
        (("load", "missing.json"), 2),  # a file argument that does not exist: usage
    ],
    ids=["bad-option", "unknown-command", "not-for-this-target", "missing-file"],
)
def test_usage_errors_exit_2(tmp_path, args, code):
    result = CliRunner().invoke(app, ["--state-dir", str(tmp_path), *args])
    assert result.exit_code == code, result.output


def test_local_down_without_a_stack_says_so(tmp_path):
    """The stacks of the suite are stopped by `widf_local.stack.stop`, the code of `local down`; this is the
    command itself (the demo stops its stack with it too)."""
    result = CliRunner().invoke(app, ["--state-dir", str(tmp_path), "local", "down"])
    assert result.exit_code == 0, result.output
    assert "The local stack was not running." in result.output
