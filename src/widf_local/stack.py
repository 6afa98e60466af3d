"""The local stack: one background process hosting local AWS (moto), the
Snowflake gateway and the Lambda runner, described by `.local/stack.json`.

They share a process because the gateway verifies attestation signatures
with the secrets local STS issued, which only moto's own memory holds.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import uvicorn

from widf_local import aws
from widf_local.faults import FaultInjector
from widf_local.gateway.accounts import Account
from widf_local.gateway.dynamic_tables import refresh_cap_from_env
from widf_local.gateway.server import Gateway
from widf_local.runner import LambdaRunner

ADMIN_USER = "WIDF_LOCAL_ADMIN"
GATEWAY_HOST = "localhost"
STARTUP_TIMEOUT_SECONDS = 60


class StackError(Exception):
    """The local stack is not in the state the command needs."""


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
        return self.state_dir / "deployment.json"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "stack.log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    return True


def fault_plan(info: StackInfo, plan: dict | None = None) -> dict:
    """The stack's fault plan and what it has injected; with `plan`, apply that plan first."""
    import urllib.request

    url = f"http://{info.snowflake_host}:{info.snowflake_port}/local/faults"
    request = urllib.request.Request(url, data=json.dumps(plan).encode(), method="PUT") if plan is not None else url
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def serve(paths: StackPaths) -> None:
    """Run the stack in this process until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request otherwise
    moto_port = free_port()
    faults = FaultInjector()  # off until a test or `local faults` turns it on
    moto = aws.start_moto(moto_port, faults)
    aws_endpoint = f"http://127.0.0.1:{moto_port}"

    account = Account()
    admin_password = secrets.token_urlsafe(24)
    account.add_admin(ADMIN_USER, admin_password)
    gateway = Gateway(
        account,
        sts_endpoint=aws_endpoint,
        lookup_secret=aws.issued_secret,
        refresh_cap_seconds=refresh_cap_from_env(os.environ),
        faults=faults,
    )
    gateway.start()
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets whose protocol says TCP, and
    # without it every response waits ~40 ms on Nagle's algorithm and the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    gateway_server = uvicorn.Server(uvicorn.Config(gateway.app(), log_level="warning", lifespan="off"))
    gateway_thread = threading.Thread(target=gateway_server.run, kwargs={"sockets": [sock]}, daemon=True)
    gateway_thread.start()

    runner = LambdaRunner(
        aws_endpoint=aws_endpoint,
        spec_path=paths.function_spec,
        runtime={
            # The local runtime's own additions; a cloud function has none of these.
            "AWS_ENDPOINT_URL": aws_endpoint,
            "SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES": GATEWAY_HOST,
            "HOME": str(paths.state_dir / "lambda-home"),
        },
        faults=faults,
    )
    runner_thread = threading.Thread(target=runner.run, daemon=True)
    runner_thread.start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not gateway_server.started and gateway_thread.is_alive():
        time.sleep(0.05)  # uvicorn offers no readiness callback; this only gates our READY line
    info = StackInfo(
        pid=os.getpid(),
        aws_endpoint=aws_endpoint,
        region=aws.REGION,
        account_id=aws.ACCOUNT_ID,
        snowflake_host=GATEWAY_HOST,
        snowflake_port=sock.getsockname()[1],
        snowflake_account="local",
        admin_user=ADMIN_USER,
        admin_password=admin_password,
    )
    write_private(paths.stack_json, json.dumps(asdict(info), indent=2))
    print("READY", flush=True)
    stop.wait()
    runner.stop_event.set()
    runner_thread.join(timeout=10)
    gateway_server.should_exit = True
    gateway_thread.join(timeout=10)
    gateway.stop()
    moto.stop()
    for path in (paths.stack_json, paths.function_spec, paths.deployment):
        path.unlink(missing_ok=True)


def start(paths: StackPaths) -> StackInfo:
    """Start the stack in the background and wait until it answers."""
    try:
        return read_stack(paths)
    except StackError:
        pass
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    for stale in (paths.stack_json, paths.function_spec, paths.deployment):
        stale.unlink(missing_ok=True)
    log = open(paths.log_file, "ab")  # noqa: SIM115 - handed to the child, which outlives us
    process = subprocess.Popen(
        [sys.executable, "-m", "widf_local.stack", str(paths.state_dir)],
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert process.stdout
    ready = _read_line_within(process.stdout, STARTUP_TIMEOUT_SECONDS)
    if ready.strip() != b"READY":
        process.kill()
        raise StackError(f"The local stack did not start; see {paths.log_file}.")
    return read_stack(paths)


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


if __name__ == "__main__":
    serve(StackPaths(Path(sys.argv[1])))
