"""The gateway's query history: what `INFORMATION_SCHEMA.QUERY_HISTORY()` answers.

Each statement is recorded with the QUERY_TAG it ran under: the tag sent with
the statement itself (the query request's `parameters`, as the drivers send a
per-statement tag), else the session's (`session_parameters` at login, or
`ALTER SESSION SET QUERY_TAG`). As in Snowflake, a user sees their own queries
and the administrative roles see everyone's.

A statement that needs a warehouse (Snowflake's "Overview of warehouses": a SELECT
that reads tables, DML, COPY) is recorded with the session's warehouse and the time
it ran (EXECUTION_TIME, milliseconds); anything else (DDL, SHOW, COMMIT, a SELECT
of no table) runs without one: no WAREHOUSE_NAME, no EXECUTION_TIME. That is what a
warehouse is billed for, so the benchmark reads its warehouse-busy time here.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from widf_local.gateway.accounts import Session
from widf_local.gateway.grants import ADMIN_ROLES

_WAREHOUSE_STATEMENTS = {"INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "TRUNCATE"}
_QUERIES = {"SELECT", "WITH"}
_FIRST_WORD = re.compile(r"^\s*\(?\s*(\w+)")
_STRINGS = re.compile(r"'(?:[^'\\]|''|\\.)*'")
HISTORY_LIMIT = 10_000  # statements kept, newest first out of QUERY_HISTORY(); older ones fall away


def table_function_call(function: str) -> re.Pattern:
    """TABLE(INFORMATION_SCHEMA.<function>()), with or without a database in front and arguments inside."""
    return re.compile(
        rf"TABLE\s*\(\s*(?:(?P<database>\"?\w+\"?)\s*\.\s*)?INFORMATION_SCHEMA\s*\.\s*{function}\s*\((?P<args>[^()]*)\)\s*\)",
        re.IGNORECASE,
    )


QUERY_HISTORY_CALL = table_function_call("QUERY_HISTORY")
REFRESH_HISTORY_CALL = table_function_call("DYNAMIC_TABLE_REFRESH_HISTORY")  # answered from gateway.dynamic_tables
RESULT_LIMIT = re.compile(r"RESULT_LIMIT\s*=>\s*(\d+)", re.IGNORECASE)
DEFAULT_RESULT_LIMIT = 100  # Snowflake's default for the table function
ALTER_SESSION_QUERY_TAG = re.compile(
    r"^\s*ALTER\s+SESSION\s+(?:SET\s+QUERY_TAG\s*=\s*'(?P<tag>(?:[^']|'')*)'|UNSET\s+QUERY_TAG)\s*;?\s*$", re.IGNORECASE
)


@dataclass(frozen=True)
class QueryRecord:
    QUERY_ID: str  # the id the client's cursor reports (sfqid)
    QUERY_TEXT: str
    SESSION_ID: int
    USER_NAME: str
    ROLE_NAME: str
    WAREHOUSE_NAME: str | None  # None for a statement that runs without a warehouse
    QUERY_TAG: str
    EXECUTION_STATUS: str  # SUCCESS | FAILED_WITH_ERROR
    START_TIME: datetime
    END_TIME: datetime
    TOTAL_ELAPSED_TIME: int  # milliseconds
    EXECUTION_TIME: int  # milliseconds on the warehouse; 0 without one


COLUMNS = list(QueryRecord.__dataclass_fields__)


def uses_warehouse(sql: str) -> bool:
    """DML and COPY, and a query that reads from something (FROM outside its strings)."""
    word = m.group(1).upper() if (m := _FIRST_WORD.match(sql)) else ""
    if word in _WAREHOUSE_STATEMENTS:
        return True
    return word in _QUERIES and re.search(r"\bFROM\b", _STRINGS.sub("''", sql), re.IGNORECASE) is not None


def statement_tag(parameters: dict | None, session: Session) -> str:
    """The tag a statement runs under; Snowflake shows '' when there is none."""
    tag = (parameters or {}).get("QUERY_TAG")
    return str(tag) if tag is not None else session.query_tag


def session_tag_change(sql: str) -> str | None:
    """The session's new tag for `ALTER SESSION SET / UNSET QUERY_TAG`; None for any other statement."""
    if not (match := ALTER_SESSION_QUERY_TAG.match(sql)):
        return None
    return (match["tag"] or "").replace("''", "'")


class QueryHistory:
    def __init__(self, limit: int = HISTORY_LIMIT):
        self.records: deque[QueryRecord] = deque(maxlen=limit)
        self.lock = threading.Lock()

    def record(self, record: QueryRecord) -> None:
        with self.lock:
            self.records.append(record)

    def visible_to(self, session: Session, roles: frozenset[str]) -> list[QueryRecord]:
        """Newest first, as Snowflake orders QUERY_HISTORY()."""
        with self.lock:
            records = list(self.records)
        admin = bool(roles & ADMIN_ROLES)
        return [r for r in reversed(records) if admin or r.USER_NAME == session.user.name]

    def as_table(self, records: list[QueryRecord]) -> pa.Table:
        schema = pa.schema(
            [
                (
                    c,
                    pa.timestamp("us", tz="UTC")
                    if c in ("START_TIME", "END_TIME")
                    else pa.int64()
                    if c in ("TOTAL_ELAPSED_TIME", "EXECUTION_TIME", "SESSION_ID")
                    else pa.string(),
                )
                for c in COLUMNS
            ]
        )
        return pa.table({c: [getattr(r, c) for r in records] for c in COLUMNS}, schema=schema)


@dataclass(frozen=True)
class HistorySource:
    statement: str  # the query, reading the registered history table instead of the table function
    limit: int  # RESULT_LIMIT
    database: str | None  # the database named before INFORMATION_SCHEMA, if any
    arguments: str  # as written inside the call's parentheses


def history_source(sql: str, table_name: str, call: re.Pattern = QUERY_HISTORY_CALL) -> HistorySource | None:
    if not (match := call.search(sql)):
        return None
    limit = int(m.group(1)) if (m := RESULT_LIMIT.search(match["args"])) else DEFAULT_RESULT_LIMIT
    database = match["database"]
    database = database.strip('"') if database and database.startswith('"') else database and database.upper()
    return HistorySource(sql[: match.start()] + table_name + sql[match.end() :], limit, database, match["args"])
