"""Snowflake's errors, with Snowflake's codes and wording, in one place."""

from __future__ import annotations

import re


class SnowflakeError(Exception):
    """An error with Snowflake's code and wording, sent to the client as a failed query."""

    def __init__(self, code: int, message: str, sqlstate: str = "42000"):
        super().__init__(message)
        self.code = code
        self.message = message
        self.sqlstate = sqlstate


def does_not_exist(name: str) -> SnowflakeError:
    # Snowflake never tells a role that an object it may not see exists.
    return SnowflakeError(2003, f"SQL compilation error:\nObject '{name}' does not exist or not authorized.", "02000")


def already_exists(name: str) -> SnowflakeError:
    return SnowflakeError(2002, f"SQL compilation error:\nObject '{name}' already exists.", "42710")


def insufficient_privileges(kind: str, name: str) -> SnowflakeError:
    return SnowflakeError(3001, f"SQL access control error:\nInsufficient privileges to operate on {kind.lower()} '{name}'.", "42501")


def unsupported(sql: str) -> SnowflakeError:
    first_line = " ".join(sql.split())[:120]
    return SnowflakeError(2, f"SQL compilation error:\nUnsupported statement in the local gateway: {first_line}", "0A000")


_MISSING_IN_ENGINE = re.compile(r'Catalog Error: (?:Table|Schema|Catalog) (?:with name )?"?(?P<name>[^"!\s]+)"? does not exist')


def in_snowflakes_words(message: str, sql: str) -> SnowflakeError | None:
    """DuckDB's errors, where Snowflake has its own words: a missing table is Snowflake's "Object 'X' does not
    exist or not authorized"; a statement DuckDB cannot even parse is one the gateway does not support."""
    if m := _MISSING_IN_ENGINE.search(message or ""):
        return does_not_exist(m["name"].upper() if m["name"].isidentifier() else m["name"])
    if "Parser Error:" in (message or ""):
        return unsupported(sql)
    return None
