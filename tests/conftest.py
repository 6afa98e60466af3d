"""Fixtures that start the real local stack, as a user would, through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from widf_ops.admin import SnowflakeNames
from widf_local.stack import StackInfo, StackPaths, read_stack


REPOSITORY = Path(__file__).resolve().parents[1]
# The local stack's own tests import its modules, which need its environment (fakesnow, connector 4.x):
# `make test` runs them there (tests/widf_local/pytest.ini), not in this one.
collect_ignore = ["widf_local"]


def client_environment(name: str, requirement: str) -> Path:
    """A client none of us wrote, from PyPI, in a virtual environment of its own under .local/ (made once,
    then reused), never in the project's: each pins its own Snowflake connector. Returns its bin/."""
    venv = REPOSITORY / ".local" / name
    marker = venv / ".installed"
    if marker.exists() and marker.read_text() == requirement and (venv / "bin" / "python").exists():
        return venv / "bin"
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():  # `make` puts uv in the project's venv: much faster than pip
        subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
        subprocess.run([str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), requirement], check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement], check=True)
    marker.write_text(requirement)
    return venv / "bin"


def admin_connections_toml(home: Path, info: StackInfo, name: str = "admin") -> Path:
    """A connections.toml in `home` (SNOWFLAKE_HOME) naming the local administrator, as a user writes one:
    readable by its owner only, which connector 5.x checks. (5.x reads no SNOWFLAKE_CONNECTIONS text.)"""
    path = home / "connections.toml"
    path.write_text(
        f'[{name}]\naccount = "{info.snowflake_account}"\nuser = "{info.admin_user}"\npassword = "{info.admin_password}"\n'
        f'host = "{info.snowflake_host}"\nport = {info.snowflake_port}\nprotocol = "http"\nrole = "ACCOUNTADMIN"\n'
    )
    path.chmod(0o600)
    return path


def cli(state_dir: Path, *args: str, check: bool = True, timeout: float = 180, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "widf_cli", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", "WIDF_TARGET": "local", **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"widf-loader {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


class Stack:
    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.paths = StackPaths(state_dir)

    @property
    def info(self) -> StackInfo:
        return read_stack(self.paths)

    def cli(self, *args: str, check: bool = True, timeout: float = 180, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return cli(self.state_dir, *args, check=check, timeout=timeout, env=env)


def started_stack(state_dir: Path) -> Iterator[Stack]:
    stack = Stack(state_dir)
    stack.cli("local", "up")
    try:
        yield stack
    finally:
        stack.cli("local", "down", check=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A fresh local stack per test module (its data is in memory)."""
    yield from started_stack(tmp_path_factory.mktemp("stack"))


@pytest.fixture
def names() -> SnowflakeNames:
    return SnowflakeNames()


@pytest.fixture(scope="module")
def loader(stack: Stack):
    """The function deployed and trusted: Snowflake objects, AWS resources, service user."""
    from widf_cli.local_stack import deployed

    stack.cli("snow", "setup")
    stack.cli("aws", "deploy")
    stack.cli("snow", "lambda-wid")
    return deployed(stack.paths)


def function_env(stack: Stack, loader) -> dict[str, str]:
    """The function's environment and its role's credentials, as the runner gives them (and the bench uses)."""
    from widf_cli.local_stack import function_env as deployed_function_env

    return deployed_function_env(stack.info, loader)


@pytest.fixture
def as_function(stack: Stack, loader, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process runs with the function's environment and its role's credentials."""
    env = function_env(stack, loader)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@cache
def shipped_pipeline():
    """The shipped configuration's pipeline, built once, for the tests that load a file in this process."""
    from widf_loader.pipeline import Pipeline
    from widf_loader.pipeline_config import load_pipeline_config

    return Pipeline(load_pipeline_config())


def notification(ref) -> str:
    """The S3 notification S3 would send for this object version (what a redelivery repeats), written by
    the tools' own builder; tests/test_events.py writes the format out by hand, to check the reading of it."""
    from dataclasses import replace

    from widf_ops.queues import s3_notification

    sent = {"event_name": "ObjectCreated:Put", "event_time": "2026-11-27T10:00:00.000Z", "sequencer": "00"}
    return s3_notification(replace(ref, **{name: getattr(ref, name) or value for name, value in sent.items()}))


def sqs_batch(*messages: tuple[str, str]) -> dict:
    """The Lambda SQS event for (message id, body) pairs, built by the runner's own code."""
    from widf_local.runner import sqs_event

    return sqs_event([{"MessageId": m, "ReceiptHandle": f"r-{m}", "Body": b} for m, b in messages], "arn:aws:sqs:us-east-1:123456789012:q")


def gateway_stats(stack: Stack) -> dict[str, int]:
    import json
    import urllib.request

    info = stack.info
    with urllib.request.urlopen(f"http://{info.snowflake_host}:{info.snowflake_port}/local/stats", timeout=10) as response:
        return json.loads(response.read())
