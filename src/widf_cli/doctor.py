"""`doctor`: check the chain from an upload to a loaded row, and say what fixes each broken link."""

from __future__ import annotations

from typing import Any

import typer
from rich.text import Text

from widf_cli.common import (
    JsonOption,
    Target,
    admin_connection,
    app,
    console,
    ctx,
    friendly_errors,
    names,
    print_json,
    stack_paths,
)
from widf_loader.config import ConfigError
from widf_ops.doctor import Check, Sources, Status, fail, passed, run_checks

MARKS = {Status.OK: ("✓", "green"), Status.WARN: ("!", "yellow"), Status.FAIL: ("✗", "red"), Status.SKIP: ("·", "dim")}


@app.command("doctor")
@friendly_errors
def doctor(as_json: JsonOption = False) -> None:
    """Check every link from an upload to a loaded row, and say what fixes each broken one.

    AWS credentials, the function's role, the identity it presents and the IAM
    role that maps to, the Snowflake user that must trust exactly that role,
    the loader role's grants, the bucket's notification to the queue, and the
    dead-letter queue. Exit 0 when nothing failed (warnings pass), 1 otherwise.

    Example: widf-loader doctor

    Example: widf-loader --target cloud doctor --json
    """
    checks = diagnose()
    if as_json:
        print_json({"ok": passed(checks), "target": ctx.target.value, "checks": [c.to_dict() for c in checks]})
    else:
        print_checks(checks)
    if not passed(checks):
        raise typer.Exit(1)


def diagnose() -> list[Check]:
    cli = "widf-loader" if ctx.target is Target.local else "widf-loader --target cloud"
    try:
        sources = doctor_sources(cli)
    except ConfigError as e:
        if ctx.target is Target.local:
            return [fail("local stack", str(e), f"`{cli} local up`")]
        return [fail("aws side", str(e), "set WIDF_STACK_NAME / WIDF_FUNCTION_NAME to the deployed stack's names")]
    return run_checks(sources)


def doctor_sources(cli: str) -> Sources:
    """The same clients and connection the other commands use, for either target."""
    from widf_cli.aws import aws_side, cloud_function_name, deployment
    from widf_loader.pipeline_config import load_pipeline_config
    from widf_local.stack import StackError

    try:
        side = aws_side()
    except StackError as e:
        raise ConfigError(str(e)) from None
    config = load_pipeline_config()

    def connect_admin() -> Any:
        try:
            return admin_connection()
        except StackError as e:
            raise ConfigError(str(e)) from None

    return Sources(
        aws_client=side.client,
        find_deployment=lambda: deployment(side),
        connect_admin=connect_admin,
        names=names(),
        tables=("RAW_DATA", "LOAD_HISTORY", "REJECTED_RECORDS", *config.tables, config.rejected_records_table),
        function_name=local_function_name() if side.local else cloud_function_name(),
        cli=cli,
        admin_fix=f"`{cli} local up`"
        if side.local
        else "SNOWFLAKE_CONNECTION_NAME must name an administrator connection in your connections.toml that can log in",
    )


def local_function_name() -> str:
    from widf_local.deploy import deployed
    from widf_ops.stack_outputs import FUNCTION_NAME

    return spec.function.name if (spec := deployed(stack_paths())) else FUNCTION_NAME


def print_checks(checks: list[Check]) -> None:
    width = max(len(c.name) for c in checks)
    for check in checks:
        mark, style = MARKS[check.status]
        console.print(
            Text.assemble((mark, style), " ", (check.name.ljust(width), "bold"), "  ", check.detail), highlight=False, soft_wrap=True
        )
        if check.fix:
            console.print(Text.assemble(" " * (width + 4), ("fix: ", style), check.fix), highlight=False, soft_wrap=True)
    failed = sum(c.status is Status.FAIL for c in checks)
    summary = f"{failed} of {len(checks)} checks failed." if failed else "Every link holds."
    console.print(Text(summary, style="red" if failed else "green"))
