"""The local stack: one background process hosting local AWS (moto), the
Snowflake gateway and the Lambda runner, described by `.local/stack.json`.

They share a process because the gateway verifies attestation signatures
with the secrets local STS issued, which only moto's own memory holds.

This module starts, stops and describes that process, and imports nothing
but the standard library, so the command can use it from the project's
environment. The process itself (`widf_local.serve`) runs from the local
stack's own environment, `local/.venv` (see `local/pyproject.toml`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1]
# The stack's own interpreter: `make install` creates it from local/uv.lock.
STACK_PYTHON = SRC.parent / "local" / ".venv" / "bin" / "python"
ADMIN_USER = "WIDF_LOCAL_ADMIN"
GATEWAY_HOST = "localhost"
STARTUP_TIMEOUT_SECONDS = 60


class StackError(Exception):
    """The local stack is not in the state the command needs."""


@dataclass(frozen=True)
class FunctionRuntime:
    """What the runner runs the function with, as Lambda has a runtime and a code package.

    The interpreter is the caller's (the project's, the one the loader is locked for), run
    without its site-packages; the code is the function's package, linked alone into a code
    directory (its source while developing: an edit shows in the next container), and the
    directory holding the package's locked dependencies as the artefact carries them.
    """

    python: str
    package: Path
    dependencies: Path


@dataclass(frozen=True)
class StackInfo:
    pid: int
    aws_endpoint: str
    region: str
    account_id: str
    snowflake_host: str
    snowflake_port: int
    snowflake_account: str
    admin_user: str
    admin_password: str  # generated per `local up`, kept under .local/ only


@dataclass(frozen=True)
class StackPaths:
    state_dir: Path

    @property
    def stack_json(self) -> Path:
        return self.state_dir / "stack.json"

    @property
    def function_spec(self) -> Path:
        return self.state_dir / "function.json"

    @property
    def deployment(self) -> Path:
        return self.state_dir / "deployment.json"  # the deployed stack's outputs, OutputKey -> OutputValue

    @property
    def log_file(self) -> Path:
        return self.state_dir / "stack.log"

    @property
    def function_code(self) -> Path:
        return self.state_dir / "function-code"


def read_stack(paths: StackPaths) -> StackInfo:
    try:
        info = StackInfo(**json.loads(paths.stack_json.read_text()))
    except FileNotFoundError:
        raise StackError("The local stack is not running: start it with `widf-loader local up`.") from None
    if not _alive(info.pid):
        raise StackError(f"The local stack (pid {info.pid}) has stopped: run `widf-loader local down`, then `widf-loader local up`.")
    return info


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A process that has exited but is not yet reaped: the stack's parent is gone (`local up` returned),
    so init reaps it, when it gets to it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc (macOS), or already reaped
    return stat.rpartition(")")[2].split()[0] == "Z"


def fault_plan(info: StackInfo, plan: dict | None = None) -> dict:
    """The stack's fault plan and what it has injected; with `plan`, apply that plan first."""
    import urllib.request

    url = f"http://{info.snowflake_host}:{info.snowflake_port}/local/faults"
    request = urllib.request.Request(url, data=json.dumps(plan).encode(), method="PUT") if plan is not None else url
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def start(paths: StackPaths, function: FunctionRuntime) -> StackInfo:
    """Start the stack in the background and wait until it answers; the runner runs `function`."""
    try:
        return read_stack(paths)
    except StackError:
        pass
    if not os.access(STACK_PYTHON, os.X_OK):
        raise StackError(f"The local stack's environment is missing ({STACK_PYTHON.parent.parent}): run `make install`.")
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    for stale in (paths.stack_json, paths.function_spec, paths.deployment):
        stale.unlink(missing_ok=True)
    function_path = function_code(paths, function)
    log = open(paths.log_file, "ab")  # not `with`: handed to the child, which outlives us
    process = subprocess.Popen(
        [str(STACK_PYTHON), "-m", "widf_local.serve", str(paths.state_dir), function.python, function_path],
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert process.stdout
    ready = _read_line_within(process.stdout, STARTUP_TIMEOUT_SECONDS)
    if ready.strip() != b"READY":
        process.kill()
        raise StackError(f"The local stack did not start; see {paths.log_file}.")
    return read_stack(paths)


def function_code(paths: StackPaths, function: FunctionRuntime) -> str:
    """The function's import path: a directory holding only a link to its package, then its dependencies.

    Never the package's parent: beside the loader in src/ are the local stack, the administrator's
    tools and the command, none of which a function has.
    """
    shutil.rmtree(paths.function_code, ignore_errors=True)
    paths.function_code.mkdir(parents=True)
    (paths.function_code / function.package.name).symlink_to(function.package.resolve(), target_is_directory=True)
    return os.pathsep.join([str(paths.function_code), str(function.dependencies)])


def _read_line_within(stream, seconds: float) -> bytes:
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    return result[0] if result else b""


def stop(paths: StackPaths) -> bool:
    """Stop the stack if it runs; True if there was one to stop."""
    try:
        info = StackInfo(**json.loads(paths.stack_json.read_text()))
    except FileNotFoundError:
        return False
    if _alive(info.pid):
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting for another process to exit: no handle to join on
        if _alive(info.pid):
            os.kill(info.pid, signal.SIGKILL)
    for path in (paths.stack_json, paths.function_spec, paths.deployment):
        path.unlink(missing_ok=True)
    return True
