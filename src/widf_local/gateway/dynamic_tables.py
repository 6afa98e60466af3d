"""Dynamic tables that refresh on their own, within their TARGET_LAG.

fakesnow turns `CREATE DYNAMIC TABLE ... AS <query>` into a one-off snapshot.
Here a dynamic table is a real table plus its defining query: created with
`CREATE OR REPLACE TABLE ... AS <query>`, then recomputed by a background
refresher (DELETE + INSERT ... SELECT in one transaction, so readers see the
old contents or the new, never half) often enough that its data is never
older than its target lag; `ALTER DYNAMIC TABLE ... REFRESH` recomputes it at
once; a suspended one is left alone. `SHOW DYNAMIC TABLES` reports the lag,
the time its data is current as of (data_timestamp) and its row count.

Locally a target lag may be shorter than Snowflake's one-minute minimum, and
WIDF_LOCAL_DYNAMIC_TABLE_REFRESH_SECONDS caps the time between refreshes so
tests need not wait a whole lag; SHOW still reports the declared lag.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pyarrow as pa
from sqlglot import exp

from widf_local.gateway.errors import SnowflakeError, already_exists, does_not_exist
from widf_local.gateway.grants import relation, table_key
from widf_local.gateway.names import like, qualified, unquote_literal, written

log = logging.getLogger("widf_loader.gateway.dynamic_tables")

REFRESH_CAP_VARIABLE = "WIDF_LOCAL_DYNAMIC_TABLE_REFRESH_SECONDS"
SNOWFLAKE_MINIMUM_LAG_SECONDS = 60
_LAG = re.compile(r"^\s*(?P<n>\d+)\s*(?P<unit>seconds?|minutes?|hours?|days?)\s*$", re.I)
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_NAME = r"(?:\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_$]*)(?:\.(?:\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_$]*))*"
ALTER = re.compile(
    rf"^\s*ALTER\s+DYNAMIC\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<name>{_NAME})\s+(?P<action>REFRESH|SUSPEND|RESUME|SET\s+TARGET_LAG\s*=\s*(?P<lag>'[^']*'|DOWNSTREAM))\s*;?\s*$",
    re.I,
)
SHOW = re.compile(
    rf"^\s*SHOW\s+DYNAMIC\s+TABLES(?:\s+LIKE\s+(?P<like>'(?:[^']|'')*'))?"
    rf"(?:\s+IN\s+(?:(?P<account>ACCOUNT)|(?P<kind>DATABASE|SCHEMA)(?:\s+(?P<scope>{_NAME}))?|(?P<bare>{_NAME})))?"
    rf"(?:\s+STARTS\s+WITH\s+(?P<starts>'(?:[^']|'')*'))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*;?\s*$",
    re.I,
)
DROP = re.compile(rf"^\s*DROP\s+DYNAMIC\s+TABLE\s+(?P<ifexists>IF\s+EXISTS\s+)?(?P<name>{_NAME})\s*;?\s*$", re.I)
ANY_DYNAMIC = re.compile(r"^\s*(CREATE|ALTER|DROP|SHOW|DESC|DESCRIBE|UNDROP)\s+(OR\s+REPLACE\s+)?(TRANSIENT\s+)?DYNAMIC\s+TABLES?\b", re.I)

# The output's columns in the documentation's order, packed as the page lists them (hence fmt: skip).
SHOW_COLUMNS = [
    "created_on", "name", "reserved", "database_name", "schema_name", "cluster_by", "rows", "bytes", "owner",
    "target_lag", "refresh_mode", "refresh_mode_reason", "warehouse", "comment", "text", "automatic_clustering",
    "scheduling_state", "last_suspended_on", "is_clone", "is_replica", "is_iceberg", "data_timestamp", "owner_role_type",
]  # fmt: skip


REFRESHES_KEPT = 10_000  # refreshes kept for DYNAMIC_TABLE_REFRESH_HISTORY(), newest last; older ones fall away
DEFAULT_RESULT_LIMIT = 100  # Snowflake's default for the table function
_ARGUMENT = re.compile(r"(?P<name>\w+)\s*=>\s*(?P<value>'(?:[^']|'')*'|\w+)\s*(?:,|$)", re.I)


def now() -> datetime:
    return datetime.now(UTC)


def target_lag_seconds(text: str) -> float | None:
    """'1 minute' -> 60; DOWNSTREAM -> None (refreshed only on demand locally)."""
    value = unquote_literal(text.strip())
    if value.upper() == "DOWNSTREAM":
        return None
    if not (m := _LAG.match(value)):
        raise SnowflakeError(
            2029,
            f"SQL compilation error:\ninvalid value '{value}' for property 'TARGET_LAG': use '<number> {{seconds|minutes|hours|days}}' or DOWNSTREAM.",
        )
    seconds = int(m["n"]) * _UNIT_SECONDS[m["unit"].lower().rstrip("s")]
    if seconds < 1:
        raise SnowflakeError(
            2029, "SQL compilation error:\nTARGET_LAG must be at least 1 second locally (Snowflake's minimum is 1 minute)."
        )
    return float(seconds)


def refresh_cap_from_env(env: Mapping[str, str]) -> float | None:
    raw = env.get(REFRESH_CAP_VARIABLE)
    try:
        return float(raw) if raw else None
    except ValueError:
        raise ValueError(f"{REFRESH_CAP_VARIABLE} must be a number of seconds, not '{raw}'.") from None


class Engine(Protocol):
    def run(self, statements: list[str], *, atomic: bool = False) -> list[tuple]: ...

    def count_rows(self, table: str) -> int: ...

    def exists(self, on: Any) -> bool: ...


@dataclass
class DynamicTable:
    name: str  # DB.SCHEMA.NAME
    query: str  # the defining query, its table names qualified
    text: str  # the CREATE statement as written
    target_lag: str  # as declared: '1 minute', DOWNSTREAM
    lag_seconds: float | None
    warehouse: str | None
    owner: str
    comment: str | None = None
    created_on: datetime = field(default_factory=now)
    suspended: bool = False
    last_suspended_on: datetime | None = None
    data_timestamp: datetime | None = None
    rows: int = 0
    refreshes: int = 0
    last_error: str | None = None

    @property
    def sql_name(self) -> str:
        return ".".join(written(p) for p in self.name.split("."))


@dataclass(frozen=True)
class Refresh:
    """One row of DYNAMIC_TABLE_REFRESH_HISTORY(), with the documentation's column names (the ones kept here)."""

    NAME: str
    SCHEMA_NAME: str
    DATABASE_NAME: str
    STATE: str  # SUCCEEDED | FAILED
    STATE_MESSAGE: str
    DATA_TIMESTAMP: datetime  # all data that arrived in the base tables before it is in the table
    REFRESH_START_TIME: datetime
    REFRESH_END_TIME: datetime
    COMPLETION_TARGET: datetime | None  # the previous refresh's DATA_TIMESTAMP plus the target lag
    QUALIFIED_NAME: str
    REFRESH_ACTION: str  # FULL: the local gateway recomputes in full
    REFRESH_TRIGGER: str  # CREATION | SCHEDULED | MANUAL


REFRESH_COLUMNS = [f.name for f in fields(Refresh)]


def qualify_tables(query: exp.Expr, database: str | None, schema: str | None) -> exp.Expr:
    """Name every table in full, so the query means the same wherever it is refreshed from."""
    ctes = {cte.alias_or_name.upper() for cte in query.find_all(exp.CTE)}

    def qualify(node: exp.Expr) -> exp.Expr:
        is_cte = isinstance(node, exp.Table) and not node.args.get("db") and node.name.upper() in ctes
        if isinstance(node, exp.Table) and not is_cte and (key := table_key(node, database, schema)):
            catalog, db, name = key.split(".", 2)
            ident = [exp.to_identifier(part, quoted=written(part) != part) for part in (name, db, catalog)]
            return exp.Table(this=ident[0], db=ident[1], catalog=ident[2], alias=node.args.get("alias"))
        return node

    return query.copy().transform(qualify)


class DynamicTables:
    """The registry of dynamic tables and the refresher that keeps them within their lag."""

    def __init__(self, engine: Engine, *, refresh_cap_seconds: float | None = None, tick_seconds: float = 0.5):
        self.engine = engine
        self.refresh_cap_seconds = refresh_cap_seconds
        self.tick_seconds = tick_seconds
        self.tables: dict[str, DynamicTable] = {}
        self.refreshes: deque[Refresh] = deque(maxlen=REFRESHES_KEPT)
        self.ticks = 0  # refresher passes: an observable for tests that must see a refresh *not* happen
        self._lock = threading.RLock()  # one refresh at a time; a drop waits for a refresh in flight
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dynamic-table-refresher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            for table in self.due(now()):
                try:
                    self.refresh(table.name, trigger="SCHEDULED")
                except Exception as e:  # noqa: BLE001 - one failing table must not stop the others' refreshes
                    log.warning("refresh of %s failed: %s", table.name, e)
            self.ticks += 1

    def interval_seconds(self, table: DynamicTable) -> float | None:
        """How often a table is refreshed: half its lag, so its data is never older than the lag."""
        if table.lag_seconds is None:
            return self.refresh_cap_seconds
        return min(table.lag_seconds / 2, self.refresh_cap_seconds or table.lag_seconds)

    def due(self, at: datetime) -> list[DynamicTable]:
        with self._lock:
            due = []
            for table in self.tables.values():
                interval = self.interval_seconds(table)
                if table.suspended or interval is None:
                    continue
                if table.data_timestamp is None or (at - table.data_timestamp).total_seconds() >= interval:
                    due.append(table)
            return due

    # -- statements -----------------------------------------------------------

    def create(self, create: exp.Create, sql: str, *, database: str | None, schema: str | None, role: str) -> str:
        """CREATE [OR REPLACE] DYNAMIC TABLE [IF NOT EXISTS] ...; the status Snowflake answers with."""
        target = create.this.this if isinstance(create.this, exp.Schema) else create.this
        if not isinstance(target, exp.Table) or not (name := table_key(target, database, schema)):
            raise SnowflakeError(
                90105,
                "Cannot perform CREATE DYNAMIC TABLE. This session does not have a current database. Call 'USE DATABASE', or use a qualified name.",
                "22000",
            )
        declared = create.args["properties"].expressions if create.args.get("properties") else []
        properties: dict[str, Any] = {p.name.upper(): p.args.get("value") for p in declared if isinstance(p, exp.Property)}
        comment = next((p for p in declared if isinstance(p, exp.SchemaCommentProperty)), None)
        if "TARGET_LAG" not in properties or "WAREHOUSE" not in properties:
            raise SnowflakeError(1003, "SQL compilation error:\nA dynamic table needs TARGET_LAG and WAREHOUSE.")
        if create.expression is None:
            raise SnowflakeError(1003, "SQL compilation error:\nA dynamic table needs AS <query>.")
        lag = properties["TARGET_LAG"].sql(dialect="snowflake")
        short = name.rsplit(".", 1)[-1]
        with self._lock:
            exists = name in self.tables or self.engine.exists(relation(name))
            if exists and not create.args.get("replace"):
                if create.args.get("exists"):
                    return f"{short} already exists, statement succeeded."
                raise already_exists(short)
            table = DynamicTable(
                name=name,
                query=qualify_tables(create.expression, database, schema).sql(dialect="snowflake"),
                text=" ".join(sql.split()),
                target_lag=unquote_literal(lag) if lag.startswith("'") else lag.upper(),
                lag_seconds=target_lag_seconds(lag),
                warehouse=properties["WAREHOUSE"].name.upper(),
                owner=role,
                comment=comment.this.name if comment is not None else None,
            )
            # Snowflake's default INITIALIZE = ON_CREATE: the first refresh happens as part of the CREATE.
            started = now()
            self.engine.run([f"CREATE OR REPLACE TABLE {table.sql_name} AS {table.query}"])
            table.data_timestamp, table.rows, table.refreshes = started, self.engine.count_rows(name), 1
            self.tables[name] = table
            self.record(table, "CREATION", started, previous=None)
        return f"Dynamic table {short} successfully created."

    def refresh(self, name: str, trigger: str = "MANUAL") -> DynamicTable:
        """Recompute a table from its query, atomically; the refresh goes into the refresh history."""
        with self._lock:
            if (table := self.tables.get(name)) is None:
                raise does_not_exist(name)
            started, previous = now(), table.data_timestamp
            try:
                self.engine.run([f"DELETE FROM {table.sql_name}", f"INSERT INTO {table.sql_name} {table.query}"], atomic=True)
            except Exception as e:
                table.last_error = str(e)
                self.record(table, trigger, started, previous=previous, error=str(e))
                raise
            table.data_timestamp, table.rows, table.last_error = started, self.engine.count_rows(name), None
            table.refreshes += 1
            self.record(table, trigger, started, previous=previous)
            return table

    def record(self, table: DynamicTable, trigger: str, started: datetime, *, previous: datetime | None, error: str | None = None) -> None:
        database, schema, short = table.name.split(".", 2)
        lag = table.lag_seconds
        self.refreshes.append(
            Refresh(
                NAME=short,
                SCHEMA_NAME=schema,
                DATABASE_NAME=database,
                STATE="FAILED" if error else "SUCCEEDED",
                STATE_MESSAGE=error or "",
                DATA_TIMESTAMP=started,
                REFRESH_START_TIME=started,
                REFRESH_END_TIME=now(),
                COMPLETION_TARGET=previous + timedelta(seconds=lag) if previous is not None and lag is not None else None,
                QUALIFIED_NAME=table.name,
                REFRESH_ACTION="FULL",
                REFRESH_TRIGGER=trigger,
            )
        )

    def refresh_history(self, arguments: str, database: str | None, schema: str | None, visible: Callable[[str], bool]) -> pa.Table:
        """DYNAMIC_TABLE_REFRESH_HISTORY(NAME => …, NAME_PREFIX => …, RESULT_LIMIT => …, ERROR_ONLY => …), newest first."""
        given: dict[str, str] = {}
        rest = arguments.strip()
        while rest:
            if not (m := _ARGUMENT.match(rest)):
                raise SnowflakeError(1003, f"SQL compilation error:\ninvalid argument list for DYNAMIC_TABLE_REFRESH_HISTORY: {arguments}")
            given[m["name"].upper()] = m["value"]
            rest = rest[m.end() :].strip()
        if unknown := sorted(set(given) - {"NAME", "NAME_PREFIX", "RESULT_LIMIT", "ERROR_ONLY"}):
            raise SnowflakeError(
                2, f"SQL compilation error:\nDYNAMIC_TABLE_REFRESH_HISTORY({', '.join(unknown)} => …) is not supported locally."
            )
        name = qualified(unquote_literal(given["NAME"]), database, schema) if "NAME" in given else None
        prefix = unquote_literal(given["NAME_PREFIX"]).upper() if "NAME_PREFIX" in given else ""
        limit = int(given.get("RESULT_LIMIT", DEFAULT_RESULT_LIMIT))
        errors_only = given.get("ERROR_ONLY", "FALSE").upper() == "TRUE"
        with self._lock:
            refreshes = list(self.refreshes)
        rows = [
            r
            for r in reversed(refreshes)
            if (name is None or r.QUALIFIED_NAME.upper() == name.upper())
            and r.QUALIFIED_NAME.upper().startswith(prefix)
            and (not errors_only or r.STATE != "SUCCEEDED")
            and visible(r.QUALIFIED_NAME)
        ][:limit]
        times = ("DATA_TIMESTAMP", "REFRESH_START_TIME", "REFRESH_END_TIME", "COMPLETION_TARGET")
        schema_ = pa.schema([(c, pa.timestamp("us", tz="UTC") if c in times else pa.string()) for c in REFRESH_COLUMNS])
        return pa.table({c: [getattr(r, c) for r in rows] for c in REFRESH_COLUMNS}, schema=schema_)

    def alter(self, m: re.Match, database: str | None, schema: str | None) -> str:
        name = self.resolve(m["name"], database, schema)
        action = m["action"].split()[0].upper()
        if action == "REFRESH":
            self.refresh(name, trigger="MANUAL")
            return "Statement executed successfully."
        with self._lock:
            table = self.tables[name]
            if action == "SUSPEND":
                table.suspended, table.last_suspended_on = True, now()
            elif action == "RESUME":
                table.suspended = False
            else:
                table.lag_seconds = target_lag_seconds(m["lag"])
                table.target_lag = unquote_literal(m["lag"]) if m["lag"].startswith("'") else m["lag"].upper()
        return "Statement executed successfully."

    def drop(self, m: re.Match, database: str | None, schema: str | None) -> str:
        name = qualified(m["name"], database, schema)
        if name not in self.tables:
            if m["ifexists"]:
                return f"Drop statement executed successfully ({name.rsplit('.', 1)[-1]} already dropped)."
            raise does_not_exist(name)
        with self._lock:
            table = self.tables.pop(name)
            self.engine.run([f"DROP TABLE IF EXISTS {table.sql_name}"])
        return f"{name.rsplit('.', 1)[-1]} successfully dropped."

    def forget_within(self, prefix: str) -> None:
        """A database, schema or table is being dropped: stop refreshing what was in it."""
        with self._lock:
            for name in [n for n in self.tables if n == prefix or n.startswith(prefix + ".")]:
                del self.tables[name]

    def resolve(self, raw_name: str, database: str | None, schema: str | None) -> str:
        name = qualified(raw_name, database, schema)
        if name not in self.tables:
            raise does_not_exist(name)
        return name

    def names(self) -> set[str]:
        with self._lock:
            return set(self.tables)

    def show(self, m: re.Match, database: str | None, schema: str | None, visible: Callable[[str], bool]) -> tuple[list[str], list[tuple]]:
        if m["account"]:
            scope = ""
        elif m["kind"] and m["kind"].upper() == "DATABASE":
            scope = qualified(m["scope"]) if m["scope"] else (database or "")
        elif m["kind"] or m["bare"]:
            raw = m["scope"] or m["bare"]
            scope = qualified(raw, database) if raw else f"{database}.{schema}"
        else:
            scope = f"{database}.{schema}" if database and schema else (database or "")
        pattern = like(m["like"])
        starts = unquote_literal(m["starts"]) if m["starts"] else ""
        rows = []
        with self._lock:
            for table in sorted(self.tables.values(), key=lambda t: t.name):
                db, sch, short = table.name.split(".", 2)
                if scope and not (table.name.startswith(scope + ".")):
                    continue
                if (pattern and not pattern.fullmatch(short)) or not short.startswith(starts) or not visible(table.name):
                    continue
                values = {
                    "created_on": table.created_on,
                    "name": short,
                    "reserved": "",
                    "database_name": db,
                    "schema_name": sch,
                    "cluster_by": "",
                    "rows": table.rows,
                    "bytes": table.rows * 1024,
                    "owner": table.owner,
                    "target_lag": table.target_lag,
                    "refresh_mode": "FULL",
                    "refresh_mode_reason": "The local gateway recomputes dynamic tables in full.",
                    "warehouse": table.warehouse,
                    "comment": table.comment or "",
                    "text": table.text,
                    "automatic_clustering": "OFF",
                    "scheduling_state": "SUSPENDED" if table.suspended else "RUNNING",
                    "last_suspended_on": table.last_suspended_on,
                    "is_clone": "false",
                    "is_replica": "false",
                    "is_iceberg": "false",
                    "data_timestamp": table.data_timestamp,
                    "owner_role_type": "ROLE",
                }
                rows.append(tuple(values[c] for c in SHOW_COLUMNS))
        limit = int(m["limit"]) if m["limit"] else None
        return SHOW_COLUMNS, rows[:limit]


def is_dynamic_table_statement(sql: str) -> bool:
    return bool(ANY_DYNAMIC.match(sql))
