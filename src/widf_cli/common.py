"""What every command group shares: the console, the target, one-line errors, tables."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from widf_loader.config import ConfigError
from widf_ops.admin import ADMIN_CONNECTION_OPTIONS, SnowflakeNames

if TYPE_CHECKING:
    import snowflake.connector

# Columns for tables when the output is not a terminal and COLUMNS does not say: rich would take 80.
UNTERMINATED_WIDTH = 200


def terminal_console(stderr: bool = False) -> Console:
    """Colour only for a terminal (rich's own rule), and none at all when NO_COLOR is set (https://no-color.org).

    Output that is not a terminal (a pipe, a file, a CI log) is not hard-wrapped: a message stays on one
    line, so `grep` finds Snowflake's error whole; tables are laid out at a wide width instead of 80.
    """
    interactive = (sys.stderr if stderr else sys.stdout).isatty()
    width = None if interactive or os.environ.get("COLUMNS") else UNTERMINATED_WIDTH
    return Console(stderr=stderr, color_system=None if os.environ.get("NO_COLOR") else "auto", soft_wrap=not interactive, width=width)


def command_group(help: str) -> typer.Typer:
    """A group of commands, with help and usage errors in click's plain text.

    typer's rich help imports rich's Markdown and traceback renderers (markdown-it, pygments, attrs), which
    cost more than the rest of the start-up of a command that needs none of them (issue 18's start-up budget).
    Plain help also has no colour to turn off for NO_COLOR or a pipe. `max_content_width` keeps each command's first
    sentence whole in the commands list, where click's default of 80 columns cuts it.
    """
    return typer.Typer(
        help=help, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False, context_settings={"max_content_width": 120}
    )


console = terminal_console()
errors = terminal_console(stderr=True)
app = command_group("Keyless loading of JSON files from S3 into Snowflake.\n\nExample: widf-loader local up && widf-loader doctor")


class Target(StrEnum):
    local = "local"
    cloud = "cloud"


class Context:
    target: Target = Target.local
    state_dir: Path = Path(".local")


ctx = Context()


def names() -> SnowflakeNames:
    return SnowflakeNames.from_env(os.environ)


def stack_paths():
    from widf_local.stack import StackPaths

    return StackPaths(ctx.state_dir)


def fail(message: str, code: int = 1) -> None:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def friendly_errors(command: Callable) -> Callable:
    """Errors a user can cause end the command with one line and a non-zero exit."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        from widf_local.stack import StackError

        try:
            return command(*args, **kwargs)
        except (ConfigError, StackError) as e:
            fail(str(e))
        except Exception as e:
            if not is_connector_error(e):
                raise
            fail(f"Snowflake: {' '.join(str(e).split())}")

    return run


def is_connector_error(error: Exception) -> bool:
    """The connector is imported by the commands that connect, when they connect (it costs half a second at
    start-up); an error can only be one of its own once it is."""
    errors = sys.modules.get("snowflake.connector.errors")
    return errors is not None and isinstance(error, errors.Error)


def require_local(what: str) -> None:
    """For commands that act as the local stack's own administrator, whom a cloud account does not have."""
    if ctx.target is Target.cloud:
        fail(f"`{what}` runs on the local stack only: it acts as the local stack's administrator; use --target local.", 2)


def admin_connection() -> snowflake.connector.SnowflakeConnection:
    import snowflake.connector

    if ctx.target is Target.cloud:
        name = os.environ.get("SNOWFLAKE_CONNECTION_NAME")
        if not name:
            raise ConfigError("Set SNOWFLAKE_CONNECTION_NAME to an administrator connection in your connections.toml.")
        return snowflake.connector.connect(connection_name=name, **ADMIN_CONNECTION_OPTIONS)
    from widf_cli.local_stack import admin_connection as local_admin
    from widf_local.stack import read_stack

    return local_admin(read_stack(stack_paths()))


JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout, and nothing else there")]


def json_value(value: Any) -> Any:
    """Numbers stay numbers (a Decimal without a fraction is an int), times become ISO 8601 text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    return value if value is None or isinstance(value, bool | int | float | str | list | dict) else str(value)


def print_json(document: Any) -> None:
    """JSON on stdout, bypassing rich: no markup, no wrapping, no colour, whatever the terminal."""
    sys.stdout.write(json.dumps(document, default=json_value, indent=2) + "\n")
    sys.stdout.flush()


def rows_as_json(columns: list[str], rows: list[tuple]) -> list[dict[str, Any]]:
    return [{c: json_value(v) for c, v in zip(columns, row, strict=True)} for row in rows]


def print_rows(columns: list[str], rows: list[tuple], title: str | None = None, as_json: bool = False) -> None:
    """A table for people, or with --json a list of objects keyed by column name."""
    if as_json:
        print_json(rows_as_json(columns, rows))
    else:
        print_table(columns, rows, title=title)


def print_settings(rows: list[tuple[str, Any]], heading: str, as_json: bool = False) -> None:
    """Name/value pairs: a two-column table, or with --json one object."""
    if as_json:
        print_json({name: json_value(value) for name, value in rows})
    else:
        print_table(["", heading], rows)


def print_table(columns: list[str], rows: list[tuple], title: str | None = None) -> None:
    from rich.table import Table

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
