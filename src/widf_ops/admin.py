"""The administrator's side of Snowflake: the shipped SQL scripts and queries.

Scripts in `sql/` use Snowflake CLI templating (`<% name %>`), so the same
files run with `snow sql -f ... -D name=value`. Values are checked before they
are placed in the text: names must be plain identifiers, the role ARN must be
an IAM role ARN. That is the only SQL ever built from strings here.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from widf_loader.config import ConfigError, LoaderSettings, identifier
from widf_ops.arns import is_session_arn, parse_role_arn

SQL_DIR = Path(__file__).resolve().parent / "sql"
if not SQL_DIR.is_dir():  # an editable install: the scripts live at the repository root
    SQL_DIR = Path(__file__).resolve().parents[2] / "sql"

_VARIABLE = re.compile(r"<%\s*(\w+)\s*%>")
# Every administrator connection's options beside its credentials. The tools run no asynchronous queries,
# so a closed session is logged out (connector 5.x otherwise first asks whether any query still runs, and
# warns at each connect that this default will change).
ADMIN_CONNECTION_OPTIONS = {"enable_server_session_keep_alive_auto_detection": False}


def iam_role_arn(arn: str) -> str:
    if is_session_arn(arn):
        raise ConfigError(
            f"'{arn}' is an assumed-role session ARN; Snowflake must trust the IAM role ARN "
            "(arn:aws:iam::<account>:role/<name>) - `widf-loader aws role-arn` prints it."
        )
    if parse_role_arn(arn) is None:
        raise ConfigError(f"'{arn}' is not an IAM role ARN (arn:aws:iam::<account>:role/<name>).")
    return arn


@dataclass(frozen=True)
class SnowflakeNames:
    """The objects the administrator sets up for the loader: by default the loader's own defaults, so that
    with nothing configured both sides name the same objects."""

    database: str = LoaderSettings.database
    schema: str = LoaderSettings.schema
    role: str = LoaderSettings.role
    warehouse: str = LoaderSettings.warehouse
    user: str = "LAMBDA_LOADER_BOT"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SnowflakeNames:
        defaults = cls()
        return cls(
            database=identifier(env.get("SNOWFLAKE_DATABASE", defaults.database), "SNOWFLAKE_DATABASE"),
            schema=identifier(env.get("SNOWFLAKE_SCHEMA", defaults.schema), "SNOWFLAKE_SCHEMA"),
            role=identifier(env.get("SNOWFLAKE_ROLE", defaults.role), "SNOWFLAKE_ROLE"),
            warehouse=identifier(env.get("SNOWFLAKE_WAREHOUSE", defaults.warehouse), "SNOWFLAKE_WAREHOUSE"),
            user=identifier(env.get("WIDF_SERVICE_USER", defaults.user), "WIDF_SERVICE_USER"),
        )

    def variables(self, role_arn: str | None = None) -> dict[str, str]:
        names = {"database": self.database, "schema": self.schema, "role": self.role, "warehouse": self.warehouse, "user": self.user}
        return names | ({"role_arn": iam_role_arn(role_arn)} if role_arn else {})


def render(script: str, variables: Mapping[str, str]) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in variables:
            raise ConfigError(f"The script needs a value for '{name}' (snow sql: -D {name}=...).")
        return variables[name]

    return _VARIABLE.sub(value, script)


def script_text(name: str, variables: Mapping[str, str]) -> str:
    return render((SQL_DIR / f"{name}.sql").read_text(), variables)


def run_script(connection: Any, name: str, variables: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """Run a shipped script statement by statement; yield (statement, Snowflake's answer)."""
    for cursor in connection.execute_stream(io.StringIO(script_text(name, variables)), remove_comments=True):
        row = cursor.fetchone()
        yield " ".join(cursor.query.split())[:90], str(row[0]) if row else ""


def fetch(connection: Any, sql: str, params: tuple = ()) -> tuple[list[str], list[tuple]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [c[0] for c in cursor.description], cursor.fetchall()


def recent_raw_data(connection: Any, names: SnowflakeNames, limit: int = 20) -> tuple[list[str], list[tuple]]:
    return fetch(
        connection,
        f"SELECT ID, SOURCE_FILE, RECORD_INDEX, PAYLOAD:action::STRING AS ACTION, PAYLOAD:user_id::STRING AS USER_ID, "
        f"PAYLOAD:amount::NUMBER(18, 2) AS AMOUNT, LOADED_BY, SOURCE_PRINCIPAL, LOADED_AT "
        f"FROM {names.database}.{names.schema}.RAW_DATA ORDER BY ID DESC LIMIT {int(limit)}",
    )


def rejected_records(connection: Any, names: SnowflakeNames, limit: int = 20, load_id: str | None = None) -> tuple[list[str], list[tuple]]:
    """REJECTED_RECORDS, newest first, or one load's in file order: what the CLI and the dashboard show."""
    where, order, params = (
        ("WHERE LOAD_ID = %s ", "RECORD_INDEX", (load_id,)) if load_id else ("", "REJECTED_AT DESC, SOURCE_FILE, RECORD_INDEX", ())
    )
    return fetch(
        connection,
        "SELECT REJECTED_AT, SOURCE_FILE, RECORD_INDEX, ROUTE, REASON, RAW_RECORD, LOAD_ID "
        f"FROM {names.database}.{names.schema}.REJECTED_RECORDS {where}ORDER BY {order} LIMIT {int(limit)}",
        params,
    )


def refresh_daily_summary(connection: Any, names: SnowflakeNames) -> None:
    """Bring DAILY_SUMMARY up to date now, rather than within its target lag."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER DYNAMIC TABLE {names.database}.{names.schema}.DAILY_SUMMARY REFRESH")


def daily_summary(connection: Any, names: SnowflakeNames) -> tuple[list[str], list[tuple]]:
    return fetch(
        connection,
        "SELECT LOAD_DATE, ACTION, FILES_LOADED, TOTAL_EVENTS, UNIQUE_USERS, TOTAL_AMOUNT "
        f"FROM {names.database}.{names.schema}.DAILY_SUMMARY ORDER BY LOAD_DATE, ACTION",
    )
