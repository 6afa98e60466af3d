"""The `widf-loader` command: thin wiring over the modules that do the work.

Every command runs against the local stack by default; `--target cloud` (or
WIDF_TARGET=cloud) points the commands at a real AWS account and a Snowflake
account through a named connection in your connections.toml.

One module per command group; this one only assembles them. The command is
its own package, beside the loader: it drives the local stack too, and the
loader never imports `widf_local`.
"""

from __future__ import annotations

from widf_cli import backfill as _backfill  # noqa: F401  (registers `backfill` and `replay-dlq`)
from widf_cli import dashboard as _dashboard  # noqa: F401  (registers `dashboard`)
from widf_cli import doctor as _doctor  # noqa: F401  (registers `doctor`)

# Registration order is the order `--help` lists the commands in.
from widf_cli import load as _load  # noqa: F401  (registers `config` and `load`)
from widf_cli.aws import aws_app
from widf_cli.common import app
from widf_cli.demo import demo_app
from widf_cli.local import local_app
from widf_cli.snow import snow_app

for sub, name in ((local_app, "local"), (snow_app, "snow"), (aws_app, "aws"), (demo_app, "demo")):
    app.add_typer(sub, name=name)


def main() -> None:
    app(prog_name="widf-loader")
