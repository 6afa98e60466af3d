"""Fixtures of the local stack's tests that more than one module uses: the real Snowflake CLI, in its own
environment, against the module's stack."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers import REPOSITORY

# The Snowflake CLI pins its own dependencies (its connector among them), so it lives in a virtual environment
# of its own, never in the project's. 3.31.0 pins a pip release the package index does not have.
SNOWCLI = "snowflake-cli==3.30.0"


@pytest.fixture(scope="session")
def snowcli(client_environment) -> Path:
    return client_environment("snowcli-venv", SNOWCLI) / "snow"


@pytest.fixture(scope="module")
def snow_process(stack, snowcli, tmp_path_factory):
    """`snow sql --format JSON ...` against the local stack, its process answered as it ended: a temporary
    config.toml without the password, which comes from the environment (SNOWFLAKE_CONNECTIONS_<NAME>_PASSWORD),
    as the Snowflake CLI documents."""
    home = tmp_path_factory.mktemp("snowflake-home")
    info = stack.info
    config = home / "config.toml"
    config.write_text(
        'default_connection_name = "local"\n\n[connections.local]\n'
        f'account = "{info.snowflake_account}"\nuser = "{info.admin_user}"\nhost = "{info.snowflake_host}"\n'
        f'port = {info.snowflake_port}\nprotocol = "http"\nrole = "ACCOUNTADMIN"\n'
    )
    config.chmod(0o600)  # the Snowflake CLI refuses a config file others can read
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "SNOWFLAKE_HOME": str(home),
        "LANG": "C.UTF-8",
        "SNOWFLAKE_CONNECTIONS_LOCAL_PASSWORD": info.admin_password,
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(snowcli), "--config-file", str(config), "sql", "--format", "JSON", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
            cwd=REPOSITORY,
        )

    return run


@pytest.fixture(scope="module")
def snow(snow_process):
    """`snow sql ...` that must succeed: its result sets."""

    def run(*args: str) -> list[list[dict]]:
        result = snow_process(*args)
        assert result.returncode == 0, f"snow sql {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        return json.loads(result.stdout)

    return run
