"""`local`: start, stop and inspect the local stack."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from widf_cli.common import JsonOption, command_group, console, friendly_errors, print_settings, print_table, stack_paths
from widf_loader.config import ConfigError

local_app = command_group("Start, stop and inspect the local stack.\n\nExample: widf-loader local up")
PACKAGER = Path(__file__).resolve().parents[2] / "infra" / "package.py"


def function_runtime():
    """The function as the local runner runs it: this interpreter (the project's), the loader's source,
    and the loader's locked dependencies installed as the artefact carries them (infra/package.py)."""
    import widf_loader
    from widf_local.stack import FunctionRuntime

    arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    found = subprocess.run([sys.executable, str(PACKAGER), "--dependencies-only", "--arch", arch], capture_output=True, text=True)
    if found.returncode != 0:
        raise ConfigError(
            f"The function's dependencies could not be installed: {(found.stderr.strip().splitlines() or ['no output'])[-1].removeprefix('error: ')}"
        )
    return FunctionRuntime(python=sys.executable, package=Path(widf_loader.__file__).parent, dependencies=Path(found.stdout.strip()))


@local_app.command("up")
@friendly_errors
def local_up() -> None:
    """Start moto (S3, SQS, STS, IAM, Logs), the Snowflake gateway and the Lambda runner.

    Example: widf-loader local up
    """
    from widf_local import stack

    with console.status("Starting the local stack..."):
        info = stack.start(stack_paths(), function_runtime())
    console.print(
        f"[green]✓[/] Local stack running (pid {info.pid}): AWS {info.aws_endpoint}, Snowflake http://{info.snowflake_host}:{info.snowflake_port}"
    )
    console.print(f"  Details in {stack_paths().stack_json}")


@local_app.command("down")
@friendly_errors
def local_down() -> None:
    """Stop the local stack; its data is in memory and goes with it.

    Example: widf-loader local down
    """
    from widf_local import stack

    console.print("[green]✓[/] Local stack stopped." if stack.stop(stack_paths()) else "The local stack was not running.")


@local_app.command("status")
@friendly_errors
def local_status(as_json: JsonOption = False) -> None:
    """Show the endpoints of the running local stack (exit 1 if it is not running).

    Example: widf-loader local status --json
    """
    from widf_cli.local_stack import deployed
    from widf_local.stack import read_stack

    info = read_stack(stack_paths())
    rows = [
        ("pid", info.pid),
        ("aws endpoint", info.aws_endpoint),
        ("snowflake", f"http://{info.snowflake_host}:{info.snowflake_port} (account {info.snowflake_account})"),
        ("admin user", info.admin_user),
    ]
    if spec := deployed(stack_paths()):
        rows += [("function", spec.function.name), ("bucket", spec.resources.bucket), ("queue", spec.resources.queue_url)]
    print_settings(rows, "local stack", as_json)


@local_app.command("faults")
@friendly_errors
def local_faults(
    plan: Annotated[list[str] | None, typer.Argument(help="FAULT=PROBABILITY pairs, e.g. s3_slowdown=0.1; `off` clears them all")] = None,
) -> None:
    """Inject faults into the local stack (Snowflake, STS, S3, the function's container), or show those injected so far.

    Example: widf-loader local faults snowflake_response_lost=0.05 s3_slowdown=0.1 seed=7
    """
    from widf_local.faults import FaultPlan, FaultPlanError
    from widf_local.stack import fault_plan, read_stack

    info = read_stack(stack_paths())
    if plan:
        values: dict[str, float | int | None] = {}
        for pair in [] if plan == ["off"] else plan:
            name, _, value = pair.partition("=")
            try:
                values[name] = int(value) if name == "seed" else float(value)
            except ValueError:
                raise ConfigError(f"'{pair}' is not FAULT=NUMBER (e.g. s3_slowdown=0.1)") from None
        try:
            FaultPlan.from_dict(values)  # a clear error here, before the stack sees it
        except FaultPlanError as e:
            raise ConfigError(str(e)) from None
        report = fault_plan(info, values)
    else:
        report = fault_plan(info)
    active = [(name, value) for name, value in report["plan"].items() if value and name != "seed"]
    print_table(["fault", "probability"], active or [("(none)", "")], title="Fault plan")
    print_table(["fault", "injected"], sorted(report["injected"].items()) or [("(none yet)", 0)], title="Injected so far")
