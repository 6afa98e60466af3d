"""The `widf-loader` command: thin wiring over the modules that do the work.

Every command runs against the local stack by default; `--target cloud` (or
WIDF_TARGET=cloud) points the Snowflake commands at a real account through a
named connection in your connections.toml.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from enum import Enum
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import snowflake.connector
import typer
from rich.console import Console
from rich.table import Table
from snowflake.connector.errors import Error as SnowflakeConnectorError

from widf_loader import admin
from widf_loader.admin import SnowflakeNames
from widf_loader.config import ConfigError, LoaderSettings

console = Console()
errors = Console(stderr=True)
app = typer.Typer(help="Keyless loading of JSON files from S3 into Snowflake.", no_args_is_help=True, pretty_exceptions_enable=False)
local_app = typer.Typer(help="Start, stop and inspect the local stack.", no_args_is_help=True)
snow_app = typer.Typer(help="Snowflake objects, the service user, and queries.", no_args_is_help=True)
aws_app = typer.Typer(help="The function and its AWS resources.", no_args_is_help=True)
demo_app = typer.Typer(help="The two-act demo: `fail` (no trust yet) and `success`.", no_args_is_help=True)
for sub, name in ((local_app, "local"), (snow_app, "snow"), (aws_app, "aws"), (demo_app, "demo")):
    app.add_typer(sub, name=name)


class Target(str, Enum):
    local = "local"
    cloud = "cloud"


class Context:
    target: Target = Target.local
    state_dir: Path = Path(".local")


ctx = Context()


def names() -> SnowflakeNames:
    return SnowflakeNames.from_env(os.environ)


def stack_paths():
    from widf_loader.local.stack import StackPaths

    return StackPaths(ctx.state_dir)


def fail(message: str, code: int = 1) -> None:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def friendly_errors(command: Callable) -> Callable:
    """Errors a user can cause end the command with one line and a non-zero exit."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        from widf_loader.local.stack import StackError

        try:
            return command(*args, **kwargs)
        except (ConfigError, StackError) as e:
            fail(str(e))
        except SnowflakeConnectorError as e:
            fail(f"Snowflake: {' '.join(str(e).split())}")

    return run


def require_local(what: str) -> None:
    if ctx.target is Target.cloud:
        fail(f"`{what}` against the cloud needs the SAM deployment, which this version does not have yet; use the local stack.", 2)


def admin_connection() -> snowflake.connector.SnowflakeConnection:
    if ctx.target is Target.cloud:
        name = os.environ.get("SNOWFLAKE_CONNECTION_NAME")
        if not name:
            raise ConfigError("Set SNOWFLAKE_CONNECTION_NAME to an administrator connection in your connections.toml.")
        return snowflake.connector.connect(connection_name=name)
    from widf_loader.local.deploy import admin_connection as local_admin
    from widf_loader.local.stack import read_stack

    return local_admin(read_stack(stack_paths()))


def print_table(columns: list[str], rows: list[tuple], title: str | None = None) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)


@app.callback()
def main_options(
    target: Annotated[Target, typer.Option(envvar="WIDF_TARGET", help="local stack or real AWS + Snowflake")] = Target.local,
    state_dir: Annotated[Path, typer.Option(envvar="WIDF_STATE_DIR", help="where the local stack keeps its state")] = Path(".local"),
) -> None:
    ctx.target, ctx.state_dir = target, state_dir


@app.command()
@friendly_errors
def config() -> None:
    """Show the effective configuration (there are no secrets to show)."""
    rows: list[tuple] = [("target", ctx.target.value), ("state dir", str(ctx.state_dir))]
    rows += [(f"snowflake {k}", v) for k, v in names().variables().items()]
    if ctx.target is Target.local:
        from widf_loader.local.deploy import deployed

        if spec := deployed(stack_paths()):
            rows += [(f"function env {k}", v) for k, v in spec.function.environment.items()]
            LoaderSettings.from_env(spec.function.environment)  # the function would refuse to start otherwise
            rows.append(("keyless check", "passed"))
    print_table(["setting", "value"], rows)


@app.command("load")
@friendly_errors
def load(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a JSON array or NDJSON file, gzipped or not")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would load where, and what would be rejected, without loading")] = False,
    key: Annotated[str | None, typer.Option(help="the S3 key it would have (routes may match on it); default incoming/<file name>")] = None,
) -> None:
    """Run a local file through routes, contracts, gates and enrichment.

    Example: widf-loader load samples/events.json --dry-run
    """
    from widf_loader.events import FileRef
    from widf_loader.pipeline import Pipeline
    from widf_loader.pipeline_config import load_pipeline_config

    pipeline = Pipeline(load_pipeline_config())
    key = key or f"incoming/{file.name}"
    if not dry_run:
        load_through_the_function(file, key)
        return
    settings_limits = LoaderSettings.from_env({"SNOWFLAKE_ACCOUNT": "dry-run", **os.environ}).limits
    with file.open("rb") as stream:
        tally, gate = pipeline.plan(stream, FileRef(bucket="(dry run)", key=key, size=file.stat().st_size), settings_limits)
    console.print(f"[bold]{file}[/] as [bold]{key}[/] — configuration {pipeline.config.source}")
    print_table(["target table", "rows"], sorted(tally.per_table.items()) or [("(none)", 0)], title="Would load")
    if tally.rejections:
        shown = tally.rejections[:20]
        print_table(["record", "route", "reason"], [(i, r, why) for i, r, why in shown], title=f"Would quarantine ({tally.rejected} records)")
    verdict = f"[green]file would load[/]: {tally.loaded} of {tally.records} records" if gate.passed else f"[red]file would be REJECTED[/]: {gate.reason}"
    console.print(verdict, highlight=False)


def load_through_the_function(file: Path, key: str) -> None:
    """Upload to the landing bucket and report the function's outcome for that object version."""
    require_local("load")
    from widf_loader.local.demo import wait_for
    from widf_loader.local import aws
    from widf_loader.local.deploy import admin_connection, deployed
    from widf_loader.local.stack import read_stack

    info = read_stack(stack_paths())
    if not (spec := deployed(stack_paths())):
        raise ConfigError("No function is deployed: run `widf-loader aws deploy` first (or use --dry-run).")
    version = aws.client("s3", info.aws_endpoint).put_object(Bucket=spec.resources.bucket, Key=key, Body=file.read_bytes())["VersionId"]
    console.print(f"Uploaded s3://{spec.resources.bucket}/{key} (version {version}); waiting for the function...")
    file_id = f"{spec.resources.bucket}/{key}#{version}"
    n = names()
    with admin_connection(info) as connection:
        ledger = f"{n.database}.{n.schema}.LOAD_HISTORY"
        query = f"SELECT STATUS, ROWS_LOADED, ROWS_REJECTED, REASON, LOAD_ID FROM {ledger} WHERE FILE_ID = %s AND STATUS <> 'FAILED'"
        row = wait_for(lambda: connection.cursor().execute(query, (file_id,)).fetchone(), seconds=120)
        if row is None:
            raise ConfigError(f"No outcome for {key} within 120 s: see `widf-loader aws logs`.")
        print_table(["status", "rows loaded", "rows rejected", "reason", "load id"], [row], title="LOAD_HISTORY")
        _, rejected = admin.fetch(
            connection,
            f"SELECT RECORD_INDEX, ROUTE, REASON FROM {n.database}.{n.schema}.REJECTED_RECORDS WHERE LOAD_ID = %s ORDER BY RECORD_INDEX LIMIT 20",
            (row[4],),
        )
        if rejected:
            print_table(["record", "route", "reason"], rejected, title="REJECTED_RECORDS")


# -- local -------------------------------------------------------------------


@local_app.command("up")
@friendly_errors
def local_up() -> None:
    """Start moto (S3, SQS, STS, IAM, Logs), the Snowflake gateway and the Lambda runner."""
    from widf_loader.local import stack

    with console.status("Starting the local stack..."):
        info = stack.start(stack_paths())
    console.print(f"[green]✓[/] Local stack running (pid {info.pid}): AWS {info.aws_endpoint}, Snowflake http://{info.snowflake_host}:{info.snowflake_port}")
    console.print(f"  Details in {stack_paths().stack_json}")


@local_app.command("down")
@friendly_errors
def local_down() -> None:
    """Stop the local stack; its data is in memory and goes with it."""
    from widf_loader.local import stack

    console.print("[green]✓[/] Local stack stopped." if stack.stop(stack_paths()) else "The local stack was not running.")


@local_app.command("status")
@friendly_errors
def local_status() -> None:
    """Show the endpoints of the running local stack (exit 1 if it is not running)."""
    from widf_loader.local.deploy import deployed
    from widf_loader.local.stack import read_stack

    info = read_stack(stack_paths())
    rows = [
        ("pid", info.pid),
        ("aws endpoint", info.aws_endpoint),
        ("snowflake", f"http://{info.snowflake_host}:{info.snowflake_port} (account {info.snowflake_account})"),
        ("admin user", info.admin_user),
    ]
    if spec := deployed(stack_paths()):
        rows += [("function", spec.function.name), ("bucket", spec.resources.bucket), ("queue", spec.resources.queue_url)]
    print_table(["", "local stack"], rows)


# -- snow --------------------------------------------------------------------


def run_admin_script(name: str, variables: dict[str, str]) -> None:
    with admin_connection() as connection:
        for statement, answer in admin.run_script(connection, name, variables):
            console.print(f"[dim]{statement}[/] → {answer}")


@snow_app.command("setup")
@friendly_errors
def snow_setup() -> None:
    """Create the role, warehouse, database, RAW_DATA and DAILY_SUMMARY (idempotent)."""
    run_admin_script("setup", names().variables())


def deployed_role_arn() -> str:
    require_local("aws role-arn")
    from widf_loader.local.deploy import deployed

    if not (spec := deployed(stack_paths())):
        raise ConfigError("No function is deployed: run `widf-loader aws deploy` first, or pass --role-arn.")
    return spec.resources.role_arn


@snow_app.command("lambda-wid")
@friendly_errors
def snow_lambda_wid(
    role_arn: Annotated[str | None, typer.Option(help="IAM role ARN; default: the deployed function's role")] = None,
) -> None:
    """Create the WIDF service user trusted by the function's IAM role, with least privilege."""
    run_admin_script("lambda_wid", names().variables(role_arn or deployed_role_arn()))


@snow_app.command("cleanup")
@friendly_errors
def snow_cleanup() -> None:
    """Drop the service user, database and role (idempotent; the warehouse stays)."""
    run_admin_script("cleanup", names().variables())


@snow_app.command("query")
@friendly_errors
def snow_query(limit: Annotated[int, typer.Option(min=1, max=10000)] = 20) -> None:
    """Show the latest RAW_DATA rows with their event context."""
    with admin_connection() as connection:
        print_table(*admin.recent_raw_data(connection, names(), limit), title="RAW_DATA")


@snow_app.command("query-summary")
@friendly_errors
def snow_query_summary() -> None:
    """Show DAILY_SUMMARY by date and action."""
    with admin_connection() as connection:
        print_table(*admin.daily_summary(connection, names()), title="DAILY_SUMMARY")


# -- aws ---------------------------------------------------------------------


@aws_app.command("deploy")
@friendly_errors
def aws_deploy() -> None:
    """Create the bucket, queues, role and log group, and deploy the function."""
    require_local("aws deploy")
    from widf_loader.local import deploy
    from widf_loader.local.stack import read_stack

    result = deploy.deploy(read_stack(stack_paths()), stack_paths(), names())
    print_table(
        ["output", "value"],
        [
            ("function", result.function.name),
            ("role arn", result.resources.role_arn),
            ("bucket", result.resources.bucket),
            ("queue", result.resources.queue_url),
            ("dead-letter queue", result.resources.dlq_url),
        ],
    )


@aws_app.command("role-arn")
@friendly_errors
def aws_role_arn() -> None:
    """Print the function's IAM role ARN (what the Snowflake service user must trust)."""
    print(deployed_role_arn())


@aws_app.command("logs")
@friendly_errors
def aws_logs(since: Annotated[int, typer.Option(help="minutes to look back")] = 30) -> None:
    """Print the function's log lines."""
    require_local("aws logs")
    from widf_loader.local import aws
    from widf_loader.local.deploy import deployed
    from widf_loader.local.stack import read_stack

    info = read_stack(stack_paths())
    if not (spec := deployed(stack_paths())):
        raise ConfigError("No function is deployed: run `widf-loader aws deploy` first.")
    logs = aws.client("logs", info.aws_endpoint)
    kwargs: dict[str, Any] = {"logGroupName": spec.resources.log_group, "startTime": int((time.time() - since * 60) * 1000)}
    while True:
        page = logs.filter_log_events(**kwargs)
        for event in page["events"]:
            stamp = datetime.fromtimestamp(event["timestamp"] / 1000, timezone.utc)
            console.print(f"[dim]{stamp:%H:%M:%S}[/] {event['message']}", highlight=False, markup=False)
        if not (token := page.get("nextToken")):
            break
        kwargs["nextToken"] = token


@aws_app.command("clean")
@friendly_errors
def aws_clean() -> None:
    """Undeploy the function (the local stack's resources go with `local down`)."""
    require_local("aws clean")
    from widf_loader.local.deploy import undeploy

    console.print("[green]✓[/] Function undeployed." if undeploy(stack_paths()) else "Nothing was deployed.")


# -- demo --------------------------------------------------------------------


@demo_app.command("fail")
@friendly_errors
def demo_fail() -> None:
    """Act I: deploy, upload, and watch Snowflake refuse an identity it does not trust."""
    require_local("demo")
    from widf_loader.local.demo import act_one

    if not act_one(console, stack_paths(), names()):
        raise typer.Exit(1)


@demo_app.command("success")
@friendly_errors
def demo_success() -> None:
    """Act II: create the service user, upload again, and see the rows and the summary."""
    require_local("demo")
    from widf_loader.local.demo import act_two

    if not act_two(console, stack_paths(), names()):
        raise typer.Exit(1)


@demo_app.command("clean")
@friendly_errors
def demo_clean() -> None:
    """Remove what the demo created in Snowflake and undeploy the function."""
    snow_cleanup()
    aws_clean()


def main() -> None:
    app(prog_name="widf-loader")


if __name__ == "__main__":
    sys.exit(main())
