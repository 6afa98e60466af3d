"""The local stack for pytest: a real stack per test module, started as a user starts one, and the clients
none of us wrote in environments of their own.

Registered with `-p widf_local.pytest_plugin` (the project's pytest options). Like the rest of the local
stack it borrows none of our code: it imports only the standard library, pytest and widf_local, and starts
stacks by running the command (`python -m widf_cli ...`) in a process of its own.

Every test that uses the `stack` fixture, directly or through another fixture, is marked `stack`, so
`-m "not stack"` leaves out all that needs one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from widf_local.stack import StackInfo, StackPaths, read_stack, stop

MARKER = "stack"
MARKER_HELP = f"{MARKER}: starts a local stack (or is as slow as one); `make test-fast` leaves these out"


def cli(
    state_dir: Path, *args: str, check: bool = True, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`widf-loader --state-dir STATE_DIR ARGS...`, run as a command from this interpreter's environment."""
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


def started_stack(state_dir: Path, env: dict[str, str] | None = None) -> Iterator[Stack]:
    """A stack started with `widf-loader local up`, as a user starts one (with `env` added to its environment);
    stopped as `local down` stops it, but in this process (`widf_local.stack.stop`, the command's own code),
    which spares every module a start of the command."""
    stack = Stack(state_dir)
    stack.cli("local", "up", env=env)
    try:
        yield stack
    finally:
        stop(stack.paths)


def gateway_stats(stack: Stack) -> dict[str, Any]:
    """The gateway's counters (statements, logins, refresher passes ...), its resent requests (query id -> times) and
    the runner's oldest open receive, from its /local/stats page."""
    info = stack.info
    with urllib.request.urlopen(f"http://{info.snowflake_host}:{info.snowflake_port}/local/stats", timeout=10) as response:
        return json.loads(response.read())


def client_venv(venv: Path, requirement: str) -> Path:
    """A client none of us wrote, from PyPI, in a virtual environment of its own at `venv` (made once, then
    reused), never in the project's: each pins its own Snowflake connector. Returns its bin/."""
    marker = venv / ".installed"
    if marker.exists() and marker.read_text() == requirement and (venv / "bin" / "python").exists():
        return venv / "bin"
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():  # `make` puts uv in the project's venv: much faster than pip
        subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
        # compiled at install, as pip does by default: each run of the client would compile its imports otherwise
        install = [str(uv), "pip", "install", "--quiet", "--compile-bytecode", "--python", str(venv / "bin" / "python"), requirement]
        subprocess.run(install, check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement], check=True)
    marker.write_text(requirement)
    return venv / "bin"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A fresh local stack per test module (its data is in memory)."""
    yield from started_stack(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="session")
def client_environment(pytestconfig: pytest.Config) -> Callable[[str, str], Path]:
    """`client_environment(name, requirement)`: the bin/ of a client's own venv, under .local/ in the rootdir."""
    return lambda name, requirement: client_venv(pytestconfig.rootpath / ".local" / name, requirement)


def pytest_configure(config: pytest.Config) -> None:
    if not any(line.split(":")[0].strip() == MARKER for line in config.getini("markers")):
        config.addinivalue_line("markers", MARKER_HELP)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MARKER in getattr(item, "fixturenames", ()):
            item.add_marker(MARKER)
