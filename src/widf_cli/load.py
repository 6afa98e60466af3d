"""`config` and `load`: the configuration, and a local file through the pipeline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from widf_cli.common import (
    JsonOption,
    Target,
    app,
    console,
    ctx,
    friendly_errors,
    names,
    print_json,
    print_table,
    require_local,
    stack_paths,
)
from widf_loader.config import ConfigError, LoaderSettings, ReadLimits
from widf_ops import admin

SHOWN_REJECTIONS = 20


def shown(listed: int, total: int, title: str = "REJECTED_RECORDS") -> str:
    """A rejections table's title: how many records, and whether the table lists them all."""
    more = f"; the first {listed} shown, see `widf-loader snow query --rejected`" if listed < total else ""
    return f"{title} ({total} records{more})"


@app.command()
@friendly_errors
def config(as_json: JsonOption = False) -> None:
    """Show the effective configuration (there are no secrets to show).

    Example: widf-loader config --json
    """
    rows: list[tuple] = [("target", ctx.target.value), ("state dir", str(ctx.state_dir))]
    rows += [(f"snowflake {k}", v) for k, v in names().variables().items()]
    if ctx.target is Target.local:
        from widf_local.deploy import deployed

        if spec := deployed(stack_paths()):
            rows += [(f"function env {k}", v) for k, v in spec.function.environment.items()]
            LoaderSettings.from_env(spec.function.environment)  # the function would refuse to start otherwise
            rows.append(("keyless check", "passed"))
    if as_json:
        print_json(dict(rows))
    else:
        print_table(["setting", "value"], rows)


@app.command("load")
@friendly_errors
def load(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a JSON array or NDJSON file, gzipped or not")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would load where, and what would be rejected, without loading")
    ] = False,
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
    # Only the limits: this is the administrator's shell, whose Snowflake connection the function would refuse.
    settings_limits = ReadLimits.from_env(os.environ)
    with file.open("rb") as stream:
        tally, gate = pipeline.plan(stream, FileRef(bucket="(dry run)", key=key, size=file.stat().st_size), settings_limits)
    console.print(f"[bold]{file}[/] as [bold]{key}[/] — configuration {pipeline.config.source}")
    print_table(["target table", "rows"], sorted(tally.per_table.items()) or [("(none)", 0)], title="Would load")
    if tally.rejections:
        listed = tally.rejections[:SHOWN_REJECTIONS]  # the pipeline keeps the first 100
        print_table(["record", "route", "reason"], listed, title=shown(len(listed), tally.rejected, "Would quarantine"))
    verdict = (
        f"[green]file would load[/]: {tally.loaded} of {tally.records} records"
        if gate.passed
        else f"[red]file would be REJECTED[/]: {gate.reason}"
    )
    console.print(verdict, highlight=False)


def load_through_the_function(file: Path, key: str) -> None:
    """Upload to the landing bucket and report the function's outcome for that object version."""
    require_local("load")
    from widf_cli.local_stack import admin_connection, deployed
    from widf_loader.events import FileRef, file_id
    from widf_loader.outcomes import LoadStatus
    from widf_local import aws
    from widf_local.stack import read_stack
    from widf_ops.stack_outputs import wait_for

    info = read_stack(stack_paths())
    if not (spec := deployed(stack_paths())):
        raise ConfigError("No function is deployed: run `widf-loader aws deploy` first (or use --dry-run).")
    version = aws.client("s3", info.aws_endpoint).put_object(Bucket=spec.resources.bucket, Key=key, Body=file.read_bytes())["VersionId"]
    console.print(f"Uploaded s3://{spec.resources.bucket}/{key} (version {version}); waiting for the function...")
    uploaded = file_id(FileRef(bucket=spec.resources.bucket, key=key, version_id=version))
    n = names()
    with admin_connection(info) as connection:
        ledger = f"{n.database}.{n.schema}.LOAD_HISTORY"
        query = f"SELECT STATUS, ROWS_LOADED, ROWS_REJECTED, REASON, LOAD_ID FROM {ledger} WHERE FILE_ID = %s AND STATUS <> '{LoadStatus.FAILED}'"
        row = wait_for(lambda: connection.cursor().execute(query, (uploaded,)).fetchone(), seconds=120)
        if row is None:
            raise ConfigError(f"No outcome for {key} within 120 s: see `widf-loader aws logs`.")
        print_table(["status", "rows loaded", "rows rejected", "reason", "load id"], [row], title="LOAD_HISTORY")
        _, rejected = admin.rejected_records(connection, n, SHOWN_REJECTIONS, load_id=row[4])
        if rejected:
            print_table(
                ["record", "route", "reason"], [(i, route, why) for _, _, i, route, why, *_ in rejected], title=shown(len(rejected), row[2])
            )
