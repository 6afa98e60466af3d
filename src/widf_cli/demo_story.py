"""The two-act story `make demo` tells, checked rather than assumed.

Act I: the function is deployed and a file arrives, but no Snowflake user
trusts the function's IAM role, so Snowflake refuses the login.
Act II: the WIDF service user is created for that role; the same kind of
upload loads, and DAILY_SUMMARY shows it.

The acts are the administrator's side at work (the `sql/` scripts, the
queries), so they live with the command; the local stack only provides the
sample events (`widf_local.samples`).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from rich.console import Console

from widf_cli.common import print_table
from widf_cli.local_stack import admin_connection, deploy_to_local_stack, deployed
from widf_local import samples
from widf_local.stack import StackPaths, read_stack
from widf_ops import admin
from widf_ops.admin import SnowflakeNames
from widf_ops.arns import parse_role_arn
from widf_ops.stack_outputs import WAIT_SECONDS, client, wait_for

UNKNOWN_CALLER = re.compile(r"Unable to find an associated Snowflake user for the verified AWS Caller Identity with ARN '([^']+)'")


def upload(endpoint: str, bucket: str, key: str, events: list[dict[str, Any]]) -> None:
    client("s3", endpoint).put_object(Bucket=bucket, Key=key, Body=orjson.dumps(events, option=orjson.OPT_INDENT_2))


def logged_failure(endpoint: str, log_group: str, uri: str, since_ms: int) -> str | None:
    logs = client("logs", endpoint)
    kwargs: dict[str, Any] = {"logGroupName": log_group, "startTime": since_ms}
    while True:
        page = logs.filter_log_events(**kwargs)
        for event in page["events"]:
            if f"FAILED {uri}" in event["message"]:
                return event["message"]
        if not (token := page.get("nextToken")):
            return None
        kwargs["nextToken"] = token


def rows_for(connection: Any, names: SnowflakeNames, uri: str) -> list[tuple]:
    _, rows = admin.fetch(
        connection,
        f"SELECT PAYLOAD, LOADED_BY FROM {names.database}.{names.schema}.RAW_DATA WHERE SOURCE_FILE = %s ORDER BY RECORD_INDEX",
        (uri,),
    )
    return rows


def step(console: Console, text: str) -> None:
    console.print(f"[bold cyan]▸[/] {text}")


def act_one(console: Console, paths: StackPaths, names: SnowflakeNames) -> bool:
    info = read_stack(paths)
    console.rule("[bold]Act I — a function nobody in Snowflake trusts yet")
    with admin_connection(info) as connection:
        for statement, answer in admin.run_script(connection, "setup", names.variables()):
            console.print(f"  [dim]{statement}[/] → {answer}")
        connection.cursor().execute(f"DROP USER IF EXISTS {names.user}")
    step(console, f"Snowflake objects ready in {names.database}.{names.schema}; no user trusts the function yet")
    deployment = deploy_to_local_stack(info, paths, names)
    step(console, f"Function [bold]{deployment.function.name}[/] deployed with role {deployment.resources.role_arn}")
    key = f"incoming/act-1-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    since = int(time.time() * 1000)
    upload(info.aws_endpoint, deployment.resources.bucket, key, samples.sample_events(seed=1))
    uri = f"s3://{deployment.resources.bucket}/{key}"
    step(console, f"Uploaded {uri}; the function runs...")
    message = wait_for(lambda: logged_failure(info.aws_endpoint, deployment.resources.log_group, uri, since))
    if message is None:
        console.print(f"[red]✗ No failure was logged for {uri} within {WAIT_SECONDS}s; see .local/stack.log.")
        return False
    found = UNKNOWN_CALLER.search(message)
    role = parse_role_arn(deployment.resources.role_arn)
    if not found or role is None or found.group(1) != role.session_arn(deployment.function.name):
        console.print(f"[red]✗ The load failed, but not with Snowflake's unknown-identity error:[/] {message}")
        return False
    console.print(f"[bold red]✗ Load failed, as it should:[/] {found.group(0)}")
    console.print("  The message stays in the queue and is retried after its visibility timeout.")
    return True


def act_two(console: Console, paths: StackPaths, names: SnowflakeNames) -> bool:
    info = read_stack(paths)
    console.rule("[bold]Act II — the role becomes a Snowflake service user")
    if not (deployment := deployed(paths)):
        console.print("[red]✗ Nothing is deployed: run `widf-loader demo fail` first.")
        return False
    role_arn = deployment.resources.role_arn
    with admin_connection(info) as connection:
        for statement, answer in admin.run_script(connection, "lambda_wid", names.variables(role_arn)):
            console.print(f"  [dim]{statement}[/] → {answer}")
        step(console, f"Service user {names.user} trusts {role_arn}")
        events = samples.sample_events(seed=2)
        key = f"incoming/act-2-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
        uri = f"s3://{deployment.resources.bucket}/{key}"
        upload(info.aws_endpoint, deployment.resources.bucket, key, events)
        step(console, f"Uploaded {uri} ({len(events)} events); the function runs...")
        rows = wait_for(lambda: r if len(r := rows_for(connection, names, uri)) >= len(events) else None)
        if rows is None or len(rows) != len(events):
            console.print(f"[red]✗ RAW_DATA did not receive the {len(events)} events of {uri} within {WAIT_SECONDS}s.")
            return False
        if {loaded_by for _, loaded_by in rows} != {names.user}:
            console.print(f"[red]✗ Rows were loaded by {sorted({r[1] for r in rows})}, not {names.user}.")
            return False
        console.print(f"[bold green]✓ Loaded {len(rows)} events as {names.user} — no password, no key.")
        print_table(
            *admin.fetch(
                connection,
                'SELECT RECORD_INDEX AS "#", PAYLOAD:action::STRING AS ACTION, PAYLOAD:user_id::STRING AS USER_ID, '
                "PAYLOAD:amount::NUMBER(18, 2) AS AMOUNT, LOADED_BY, SOURCE_VERSION_ID "
                f"FROM {names.database}.{names.schema}.RAW_DATA WHERE SOURCE_FILE = %s ORDER BY RECORD_INDEX LIMIT 10",
                (uri,),
            ),
            title=f"RAW_DATA rows of {key} (first 10)",
        )
        # DAILY_SUMMARY is a dynamic table: current within its TARGET_LAG. Refresh it now, as in Snowflake, so it matches.
        admin.refresh_daily_summary(connection, names)
        columns, summary = admin.daily_summary(connection, names)
        print_table(columns, summary, title="DAILY_SUMMARY")
        return summary_matches(connection, names, columns, summary, console)


def summary_matches(connection: Any, names: SnowflakeNames, columns: list[str], summary: list[tuple], console: Console) -> bool:
    """DAILY_SUMMARY must agree with the same figures computed from RAW_DATA in Python."""
    _, raw = admin.fetch(connection, f"SELECT TO_DATE(LOADED_AT), PAYLOAD, SOURCE_FILE FROM {names.database}.{names.schema}.RAW_DATA")
    expected = samples.summarise([(day, orjson.loads(payload), source) for day, payload, source in raw])
    actual = {
        (row[columns.index("LOAD_DATE")], row[columns.index("ACTION")]): {
            k: row[columns.index(k)] for k in ("FILES_LOADED", "TOTAL_EVENTS", "UNIQUE_USERS")
        }
        | {"TOTAL_AMOUNT": Decimal(str(row[columns.index("TOTAL_AMOUNT")])).quantize(Decimal("0.01"))}
        for row in summary
    }
    if actual != expected:
        console.print(f"[red]✗ DAILY_SUMMARY disagrees with RAW_DATA: expected {expected}, got {actual}")
        return False
    console.print("[bold green]✓ DAILY_SUMMARY matches RAW_DATA, action by action.")
    return True
