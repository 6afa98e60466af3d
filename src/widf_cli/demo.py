"""`demo`: the two acts."""

from __future__ import annotations

import typer

from widf_cli.aws import aws_clean
from widf_cli.common import (
    command_group,
    console,
    friendly_errors,
    names,
    require_local,
    stack_paths,
)
from widf_cli.snow import snow_cleanup

demo_app = command_group(
    "The two-act demo: `fail` (no trust yet) and `success`.\n\nExample: widf-loader demo fail; widf-loader demo success"
)


@demo_app.command("fail")
@friendly_errors
def demo_fail() -> None:
    """Act I: deploy, upload, and watch Snowflake refuse an identity it does not trust.

    Example: widf-loader demo fail
    """
    require_local("demo")
    from widf_cli.demo_story import act_one

    if not act_one(console, stack_paths(), names()):
        raise typer.Exit(1)


@demo_app.command("success")
@friendly_errors
def demo_success() -> None:
    """Act II: create the service user, upload again, and see the rows and the summary.

    Example: widf-loader demo success
    """
    require_local("demo")
    from widf_cli.demo_story import act_two

    if not act_two(console, stack_paths(), names()):
        raise typer.Exit(1)


@demo_app.command("clean")
@friendly_errors
def demo_clean() -> None:
    """Remove what the demo created in Snowflake and undeploy the function.

    Example: widf-loader demo clean
    """
    snow_cleanup()
    aws_clean()
