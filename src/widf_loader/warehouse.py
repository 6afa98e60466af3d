"""Snowflake: a keyless connection (workload identity) and the load statements.

Values are always bound (qmark style, sent to the server as bindings), never
formatted into SQL; the only names in SQL text are validated identifiers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import snowflake.connector
from snowflake.connector.errors import DatabaseError

from widf_loader.config import LoaderSettings

log = logging.getLogger(__name__)

RAW_DATA_COLUMNS = (
    "SOURCE_FILE",
    "PAYLOAD",
    "SOURCE_BUCKET",
    "SOURCE_KEY",
    "SOURCE_VERSION_ID",
    "SOURCE_ETAG",
    "SOURCE_SIZE",
    "SOURCE_EVENT_TIME",
    "SOURCE_PRINCIPAL",
    "SOURCE_IP",
    "RECORD_INDEX",
    "LOAD_ID",
)


class IdentityNotTrusted(Exception):
    """Snowflake verified the function's AWS identity but no user trusts it."""


def insert_statement(table: str) -> str:
    # INSERT ... SELECT, because Snowflake refuses PARSE_JSON inside a VALUES clause.
    placeholders = ", ".join("PARSE_JSON(?)" if c == "PAYLOAD" else "?" for c in RAW_DATA_COLUMNS)
    return f"INSERT INTO {table} ({', '.join(RAW_DATA_COLUMNS)}, LOADED_BY) SELECT {placeholders}, CURRENT_USER()"


def connect(settings: LoaderSettings) -> snowflake.connector.SnowflakeConnection:
    try:
        return snowflake.connector.connect(**settings.connect_args())
    except DatabaseError as e:
        if "Unable to find an associated Snowflake user" in str(e):
            raise IdentityNotTrusted(
                f"{e.msg} - no Snowflake service user trusts this function's IAM role; "
                "run `widf-loader snow lambda-wid` to create one."
            ) from None
        raise


class Warehouse:
    """One connection per warm container, opened on first use."""

    def __init__(self, settings: LoaderSettings):
        self.settings = settings
        self._connection: snowflake.connector.SnowflakeConnection | None = None

    @property
    def connection(self) -> snowflake.connector.SnowflakeConnection:
        if self._connection is None or self._connection.is_closed():
            self._connection = connect(self.settings)
        return self._connection

    def load(self, batches: Iterable[Sequence[Sequence[Any]]]) -> int:
        """Insert every batch in one transaction: a file lands whole or not at all."""
        statement = insert_statement(self.settings.table)
        with self.connection.cursor() as cursor:
            cursor.execute("BEGIN")
            try:
                loaded = 0
                for batch in batches:
                    cursor.executemany(statement, batch)
                    loaded += len(batch)
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        return loaded
