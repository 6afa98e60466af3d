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


@pytest.fixture(scope="module")
def loader(stack: Stack):
    """The function deployed and trusted: Snowflake objects, AWS resources, service user."""
    from widf_cli.local_stack import deployed

    stack.cli("snow", "setup")
    stack.cli("aws", "deploy")
    stack.cli("snow", "lambda-wid")
    return deployed(stack.paths)


@pytest.fixture
def as_function(stack: Stack, loader, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process runs with the function's environment and its role's credentials."""
    env = function_env(stack, loader)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
