"""`widf-loader dashboard` in a real headless browser (Debian's chromium through Playwright), over a real local stack."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
import pytest
from playwright.sync_api import sync_playwright

from helpers import ndjson, put, query
from widf_loader.events import file_id
from widf_local import aws, samples
from widf_ops.stack_outputs import wait_for

CHROMIUM = "/usr/bin/chromium"
# The closed network refuses Chromium's own background connections: ask for none.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Three of ten records lack their user: over the default 10 % gate, so the file loads nothing.
GATED = [{k: v for k, v in e.items() if k != "user_id" or i not in (2, 5, 8)} for i, e in enumerate(samples.sample_events(10, seed=9))]


def settled(stack, ref) -> str | None:
    rows = query(stack, "SELECT STATUS FROM WIDF_DEMO_DB.PUBLIC.LOAD_HISTORY WHERE FILE_ID = %s", (file_id(ref),))
    return rows[0][0] if rows else None


@pytest.fixture(scope="module")
def loaded(stack, loader):
    """A clean file, a file with one record that breaks its contract, a file over the reject gate,
    then a file that is not JSON; one dead letter."""
    refs = []
    for key, body in (
        ("incoming/dash/clean.json", orjson.dumps(samples.sample_events(12, seed=5))),
        ("incoming/dash/mixed.ndjson", ndjson([*samples.sample_events(10, seed=6), {"event_id": "e-bad", "action": "view"}])),
        ("incoming/dash/gated.json", orjson.dumps(GATED)),
        ("incoming/dash/broken.json", b'[{"event_id": "x", '),
    ):
        ref = put(stack, loader, key, body)
        assert wait_for(lambda ref=ref: settled(stack, ref), seconds=90), f"{ref.uri} never settled"
        refs.append(ref)
    stack.cli("snow", "query-summary", "--refresh")  # DAILY_SUMMARY now, not within its target lag
    # A poison message, as the queue's redrive policy leaves it after three failed receives.
    aws.client("sqs", stack.info.aws_endpoint).send_message(QueueUrl=loader.resources.dlq_url, MessageBody='{"Records": []}')
    return refs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool | None:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return True if response.status == 200 else None
    except OSError:
        return None


@pytest.fixture(scope="module")
def dashboard(stack, loaded):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "widf_cli", "--state-dir", str(stack.state_dir), "dashboard", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_for(lambda: healthy(url) or (False if process.poll() is not None else None), seconds=60):
            process.kill()
            raise AssertionError(f"the dashboard did not start:\n{process.communicate()[0]}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_the_dashboard_shows_the_summary_chart_loads_rejects_and_dead_letters(dashboard, loaded, tmp_path):
    clean, mixed, gated, broken = loaded
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(dashboard)
            page.wait_for_selector("#daily-summary-chart rect", timeout=15_000)
            bars = page.locator("#daily-summary-chart rect title").all_text_contents()
            latest = page.locator("#recent-loads tbody tr").first
            latest_file, latest_status = latest.get_attribute("data-file-id"), latest.get_attribute("data-status")
            latest_text = latest.inner_text()
            rejects = page.locator("#rejects").inner_text()
            rejects_total = page.locator("#rejects-total").inner_text()
            records_rejected = page.locator("#records-rejected .value").inner_text()
            dead_letters = page.locator("#dlq-depth .value").inner_text()
            screenshot = tmp_path / "dashboard.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    assert any(title.startswith("page_view: ") for title in bars), bars  # a bar per action, from DAILY_SUMMARY
    assert (latest_file, latest_status) == (file_id(broken), "REJECTED")
    assert "broken.json" in latest_text and "invalid JSON" in latest_text
    assert "mixed.ndjson" in rejects and '"user_id" is a required property' in rejects
    assert "gated.json" in rejects and all(f"record {i} · route " in rejects for i in (2, 5, 8))
    # The card counts LOAD_HISTORY's rejected rows, the panel REJECTED_RECORDS: 1 (mixed) + 3 (gated) in both.
    assert records_rejected == rejects_total.replace(",", "") == "4"
    assert dead_letters == "1"
    assert requested and all(url.startswith(dashboard) for url in requested), f"the page fetched from elsewhere: {requested}"
    width, height = png_size(screenshot)
    assert width >= 1000 and height >= 600 and screenshot.stat().st_size > 30_000, "a blank or tiny screenshot"


def test_the_data_layer_counts_every_rejected_record_once_and_agrees_with_the_cli(stack, loaded):
    from widf_cli.local_stack import admin_connection
    from widf_ops.admin import SnowflakeNames
    from widf_ops.dashboard.data import Queues, read_snapshot

    with admin_connection(stack.info) as connection:
        snapshot = read_snapshot(connection, SnowflakeNames(), lambda: Queues(0, 0, 0), "local stack")
    assert snapshot.problems == []
    ledger_rejected = sum(rejected for status, (_, _, rejected) in snapshot.outcomes.items() if status in ("LOADED", "REJECTED"))
    assert ledger_rejected == snapshot.rejects_total == len(snapshot.rejects) == 4
    _, _, gated, _ = loaded
    assert sorted(r.record_index for r in snapshot.rejects if r.source_file == gated.uri) == [2, 5, 8]
    listed = orjson.loads(stack.cli("snow", "query", "--rejected", "--json").stdout)
    assert sorted((r["SOURCE_FILE"], r["RECORD_INDEX"]) for r in listed) == sorted(
        (r.source_file, r.record_index) for r in snapshot.rejects
    )
    assert all(r["REASON"] and r["RAW_RECORD"] for r in listed)
