"""`snow`: Snowflake objects, the service user, and queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from widf_cli.common import (
    JsonOption,
    admin_connection,
    command_group,
    console,
    friendly_errors,
    names,
    print_rows,
)
from widf_ops import admin

snow_app = command_group(
    "Snowflake objects, the service user, and queries.\n\nExample: widf-loader snow setup && widf-loader snow lambda-wid"
)


def run_admin_script(name: str, variables: dict[str, str], then: Sequence[str] = ()) -> None:
    """Run a shipped script, then the statements the pipeline configuration adds."""
    with admin_connection() as connection:
        for statement, answer in admin.run_script(connection, name, variables):
            console.print(f"[dim]{statement}[/] → {answer}")
        for statement in then:
            row = connection.cursor().execute(statement).fetchone()
            console.print(f"[dim]{statement[:90]}[/] → {row[0] if row else ''}")


def configured(build) -> list[str]:
    """Statements for the tables the pipeline configuration names beyond the shipped ones."""
    from widf_loader.pipeline_config import load_pipeline_config

    return build(load_pipeline_config(), names())


@snow_app.command("setup")
@friendly_errors
def snow_setup() -> None:
    """Create the role, warehouse, database, the loader's tables, DAILY_SUMMARY and the role's grants (idempotent).

    Example: widf-loader snow setup
    """
    from widf_ops.ddl import create_target_tables, grant_target_tables

    run_admin_script("setup", names().variables(), then=configured(create_target_tables) + configured(grant_target_tables))


def deployed_role_arn() -> str:
    """The deployed function's IAM role ARN, from the local stack or the cloud stack's outputs."""
    from widf_cli.aws import aws_side, deployment

    return deployment(aws_side()).role_arn


@snow_app.command("lambda-wid")
@friendly_errors
def snow_lambda_wid(
    role_arn: Annotated[str | None, typer.Option(help="IAM role ARN; default: the deployed function's role")] = None,
) -> None:
    """Create the WIDF service user trusted by the function's IAM role, with least privilege.

    Example: widf-loader snow lambda-wid --role-arn arn:aws:iam::123456789012:role/widf-loader-function-role
    """
    from widf_ops.ddl import grant_target_tables

    run_admin_script("lambda_wid", names().variables(role_arn or deployed_role_arn()), then=configured(grant_target_tables))


@snow_app.command("cleanup")
@friendly_errors
def snow_cleanup() -> None:
    """Drop the service user, database and role (idempotent; the warehouse stays).

    Example: widf-loader snow cleanup
    """
    run_admin_script("cleanup", names().variables())


@snow_app.command("query")
@friendly_errors
def snow_query(
    limit: Annotated[int, typer.Option(min=1, max=10000, help="rows to show, newest first")] = 20,
    rejected: Annotated[
        bool, typer.Option("--rejected", help="REJECTED_RECORDS instead: each quarantined record, its route and reason")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show the latest RAW_DATA rows with their event context, or with --rejected the quarantined records.

    Example: widf-loader snow query --limit 5 --json; widf-loader snow query --rejected
    """
    with admin_connection() as connection:
        if rejected:
            print_rows(*admin.rejected_records(connection, names(), limit), title="REJECTED_RECORDS", as_json=as_json)
        else:
            print_rows(*admin.recent_raw_data(connection, names(), limit), title="RAW_DATA", as_json=as_json)


@snow_app.command("query-summary")
@friendly_errors
def snow_query_summary(
    refresh: Annotated[
        bool, typer.Option("--refresh", help="ALTER DYNAMIC TABLE ... REFRESH first, instead of showing it as of its last refresh")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show DAILY_SUMMARY by date and action (a dynamic table: current within its target lag).

    Example: widf-loader snow query-summary --refresh
    """
    with admin_connection() as connection:
        if refresh:
            admin.refresh_daily_summary(connection, names())
        print_rows(*admin.daily_summary(connection, names()), title="DAILY_SUMMARY", as_json=as_json)
