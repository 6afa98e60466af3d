"""Snowflake's errors, with Snowflake's codes and wording, in one place."""

from __future__ import annotations

import re

ACCOUNT_NAME = "LOCAL"  # the local account's name, as Snowflake's errors and SHOW GRANTS write it


class SnowflakeError(Exception):
    """An error with Snowflake's code and wording, sent to the client as a failed query."""

    def __init__(self, code: int, message: str, sqlstate: str = "42000"):
        super().__init__(message)
        self.code = code
        self.message = message
        self.sqlstate = sqlstate


def does_not_exist(name: str, kind: str = "Object") -> SnowflakeError:
    # Snowflake never tells a role that an object it may not see exists. Its SQLSTATE is 42S02 (base table or
    # view not found) for a table or view, 02000 for a database, schema, stage or the like, as its answers show.
    sqlstate = "42S02" if kind in ("Object", "Table", "View") else "02000"
    return SnowflakeError(2003, f"SQL compilation error:\n{kind} '{name}' does not exist or not authorized.", sqlstate)


def cannot_be_performed() -> SnowflakeError:
    """USE DATABASE / SCHEMA / WAREHOUSE of what does not exist or may not be used: Snowflake names nothing."""
    return SnowflakeError(2043, "SQL compilation error:\nObject does not exist, or operation cannot be performed.", "02000")


def already_exists(name: str) -> SnowflakeError:
    return SnowflakeError(2002, f"SQL compilation error:\nObject '{name}' already exists.", "42710")


def insufficient_privileges(kind: str, name: str) -> SnowflakeError:
    return SnowflakeError(3001, f"SQL access control error:\nInsufficient privileges to operate on {kind.lower()} '{name}'.", "42501")


def primary_role_must_have(role: str, privilege: str, kind: str, name: str) -> SnowflakeError:
    """A CREATE the primary role may not run: Snowflake names the container, the primary role and the privilege
    it lacks, e.g. "... on schema 'PUBLIC'. Your primary role R must have CREATE TABLE granted on SCHEMA D.PUBLIC."
    (an account is named `account 'LOCAL'`, and the privilege is `granted on ACCOUNT`)."""
    where = f"{kind} {name}" if kind != "ACCOUNT" else "ACCOUNT"
    short = name.rsplit(".", 1)[-1] if kind != "ACCOUNT" else ACCOUNT_NAME
    return SnowflakeError(
        3001,
        f"SQL access control error:\nInsufficient privileges to operate on {kind.lower()} '{short}'. "
        f"Your primary role {role} must have {privilege} granted on {where}.",
        "42501",
    )


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
