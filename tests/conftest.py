"""The project's fixtures that need the tools or the command (widf_ops, widf_cli). The stack itself, `stack`,
comes from the local stack's plugin (widf_local.pytest_plugin); helpers that are not fixtures are in
tests/helpers.py."""

from __future__ import annotations

import pytest

from helpers import function_env
from widf_local.pytest_plugin import Stack
from widf_ops.admin import SnowflakeNames

# The local stack's own tests import its modules, which need its environment (fakesnow, connector 4.x):
# `make test` runs them there (tests/local/engine/pytest.ini), not in this one.
collect_ignore = ["local/engine"]


@pytest.fixture
def names() -> SnowflakeNames:
    return SnowflakeNames()


def in_process(stack: Stack, *args: str) -> None:
    """`widf-loader ARGS` against the stack, run in this process by typer's runner: a module's setup need not
    pay for starting the command three times (the commands' own tests run them as a user does)."""
    from typer.testing import CliRunner

    from widf_cli import app

    result = CliRunner().invoke(app, ["--state-dir", str(stack.state_dir), *args], env={"WIDF_TARGET": "local", "COLUMNS": "200"})
    assert result.exit_code == 0, f"widf-loader {' '.join(args)} exited {result.exit_code}:\n{result.output}\n{result.exception!r}"


@pytest.fixture(scope="module")
def loader(stack: Stack):
    """The function deployed and trusted: Snowflake objects, AWS resources, service user."""
    from widf_cli.local_stack import deployed

    in_process(stack, "snow", "setup")
    in_process(stack, "aws", "deploy")
    in_process(stack, "snow", "lambda-wid")
    return deployed(stack.paths)


@pytest.fixture
def as_function(stack: Stack, loader, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process runs with the function's environment and its role's credentials."""
    env = function_env(stack, loader)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
