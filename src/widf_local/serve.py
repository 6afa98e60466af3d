"""The local stack's process: moto, the Snowflake gateway and the Lambda runner,
until SIGTERM. It runs from the stack's own environment (`local/.venv`),
started by `widf_local.stack.start`:

    python -m widf_local.serve STATE_DIR FUNCTION

The runner starts the function's containers as FUNCTION says (a
`widf_local.stack.FunctionLaunch` as JSON: its interpreter, user, code,
import path and HOME, all outside STATE_DIR).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import uvicorn

from widf_local import aws
from widf_local.faults import FaultInjector
from widf_local.gateway.accounts import Account
from widf_local.gateway.dynamic_tables import refresh_cap_from_env
from widf_local.gateway.server import Gateway
from widf_local.runner import LambdaRunner
from widf_local.stack import ADMIN_USER, GATEWAY_HOST, FunctionLaunch, StackInfo, StackPaths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def serve(paths: StackPaths, function: FunctionLaunch) -> None:
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
        sts_region=aws.REGION,
        lookup_secret=aws.issued_secret,
        refresh_cap_seconds=refresh_cap_from_env(os.environ),
        faults=faults,
        stage_root=paths.state_dir / "stages",
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
        function=function,
        runtime={
            # The local runtime's own additions; a cloud function has none of these.
            "AWS_ENDPOINT_URL": aws_endpoint,
            "SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES": GATEWAY_HOST,
            "HOME": function.home,
            "PYTHONPATH": function.path,  # Lambda's runtime puts the task root on the path the same way
        },
        faults=faults,
    )
    gateway.stack_stats["oldest_open_receive"] = runner.oldest_open_receive
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
    gc.freeze()  # see warm_cloudformation
    print("READY", flush=True)
    threading.Thread(target=warm_cloudformation, name="warm-cloudformation", daemon=True).start()
    stop.wait()
    # Everything is told to stop first, then waited for: the waits overlap.
    runner.stop_event.set()
    gateway_server.should_exit = True
    runner_thread.join(timeout=10)
    gateway_thread.join(timeout=10)
    gateway.stop()
    moto.stop()
    for path in (paths.stack_json, paths.function_spec, paths.deployment):
        path.unlink(missing_ok=True)


def warm_cloudformation() -> None:
    """Import moto's CloudFormation now, in the background: its first request imports the models of every
    service it can create (seconds), and `aws deploy` would otherwise wait for that."""
    import moto.cloudformation.responses  # noqa: F401

    # The stack's modules and models live as long as the process: out of the collector's sight, which would
    # otherwise walk them all again on each full collection, as a large batch's parse sets off several.
    gc.freeze()


if __name__ == "__main__":
    serve(StackPaths(Path(sys.argv[1])), FunctionLaunch.from_json(sys.argv[2]))
    # Nothing is left to save (the data lives in memory): skip the interpreter's finalization, which spends
    # seconds freeing moto's and DuckDB's objects while `local down` waits for this process to end.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
