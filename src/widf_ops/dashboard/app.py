"""The dashboard's web app: the page, a JSON twin of it, and a health check to wait on."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from widf_ops.dashboard.data import Snapshot
from widf_ops.dashboard.page import page

# The page runs no script and loads nothing: say so to the browser too.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_app(read_snapshot: Callable[[], Snapshot], refresh_seconds: int = 15) -> Starlette:
    lock = threading.Lock()  # one administrator connection: one reader at a time

    def snapshot() -> Snapshot:
        with lock:
            return read_snapshot()

    async def index(request: Request) -> Response:
        return HTMLResponse(page(await run_in_threadpool(snapshot), refresh_seconds), headers=SECURITY_HEADERS)

    async def snapshot_json(request: Request) -> Response:
        return Response(to_json(await run_in_threadpool(snapshot)), media_type="application/json", headers=SECURITY_HEADERS)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/", index), Route("/snapshot.json", snapshot_json), Route("/health", health)])


def to_json(snapshot: Snapshot) -> bytes:
    return json.dumps(asdict(snapshot), default=str).encode()
