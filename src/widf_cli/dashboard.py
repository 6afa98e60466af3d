"""`dashboard`: a web page over the warehouse and the queues, on the local stack or in the cloud."""

from __future__ import annotations

import os
from datetime import UTC
from typing import Annotated, Any

import typer

from widf_cli.common import Target, admin_connection, app, ctx, friendly_errors, names


class WarehouseAndQueues:
    """What the page reads from: the administrator's connection (kept, reopened after a failure) and the queues."""

    def __init__(self) -> None:
        from widf_cli.aws import aws_side

        self.names = names()
        self.side = aws_side()
        self.where = "local stack" if ctx.target is Target.local else f"cloud · {os.environ.get('SNOWFLAKE_CONNECTION_NAME', '')}"
        self._connection: Any = None

    def connection(self) -> Any:
        if self._connection is None or self._connection.is_closed():
            self._connection = admin_connection()
        return self._connection

    def queues(self) -> Any:
        from widf_cli.aws import deployment
        from widf_ops.dashboard.data import Queues
        from widf_ops.queues import queue_depth

        resources = deployment(self.side)
        sqs = self.side.client("sqs")
        events = queue_depth(sqs, resources.queue_url)
        return Queues(waiting=events.waiting, in_flight=events.in_flight, dead_letters=queue_depth(sqs, resources.dlq_url).waiting)

    def snapshot(self) -> Any:
        from widf_ops.dashboard.data import Snapshot, read_snapshot

        try:
            connection = self.connection()
        except Exception as e:  # noqa: BLE001 - the page says what is wrong and retries on its next refresh
            return Snapshot(taken_at=_now(), where=self.where, problems=[f"Snowflake: {' '.join(str(e).split())[:300]}"])
        snapshot = read_snapshot(connection, self.names, self.queues, self.where)
        if snapshot.problems:
            self._connection = None  # it may be what broke; the next refresh opens a fresh one
        return snapshot


def _now() -> Any:
    from datetime import datetime

    return datetime.now(UTC)


@app.command("dashboard")
@friendly_errors
def dashboard(
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to serve on")] = 8050,
    host: Annotated[str, typer.Option(help="address to listen on (loopback: only this machine sees the page)")] = "127.0.0.1",
    refresh: Annotated[int, typer.Option(min=2, max=3600, help="seconds between the page's own refreshes")] = 15,
) -> None:
    """Serve a page with DAILY_SUMMARY as a chart, recent loads, rejected records and the queue depths.

    Example: widf-loader dashboard --port 8050   (then open http://127.0.0.1:8050)
    """
    from widf_cli.common import console, fail

    try:
        import uvicorn

        from widf_ops.dashboard.app import create_app
    except ImportError as e:
        fail(f"The dashboard needs the `dashboard` extra ({e.name} is missing): pip install 'widf-loader[dashboard]'.")

    source = WarehouseAndQueues()
    console.print(f"Dashboard on http://{host}:{port}/ ({source.where}); Ctrl-C stops it.")
    uvicorn.run(create_app(source.snapshot, refresh_seconds=refresh), host=host, port=port, log_level="warning")
