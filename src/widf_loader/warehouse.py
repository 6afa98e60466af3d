"""Snowflake: a keyless connection (workload identity), the load, and the
exactly-once ledger in LOAD_HISTORY.

Values are always bound (qmark style, sent to the server as bindings), never
formatted into SQL; the only names in SQL text are validated identifiers.
"""

from __future__ import annotations

import base64
import inspect
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import cramjam
import snowflake.connector
from snowflake.connector.errors import DatabaseError

from widf_loader.config import LoaderSettings
from widf_loader.events import FileRef, file_id
from widf_loader.outcomes import FINAL_STATUSES, LoadStatus
from widf_loader.pipeline_config import TypedColumn

if TYPE_CHECKING:
    from widf_loader.stage import StagedLoad

log = logging.getLogger(__name__)
T = TypeVar("T")

RECORDS_COMPRESSION = "SNAPPY"  # a method of Snowflake's COMPRESS / DECOMPRESS_STRING
LOCK_WAIT_TIMEOUT = 625  # Snowflake: the statement waited LOCK_TIMEOUT for a table lock
# Connector 5.2's login reports the application path with inspect.stack() (snowflake-connector-python#2908;
# 4.x walks the frames itself since #2999, which 5.2 does not have): see Warehouse.connect_ahead.
LOGIN_WALKS_INSPECT_STACK = snowflake.connector.__version__.startswith("5.")
# RAW_DATA's columns and types, as sql/setup.sql creates them (a test holds the two together); every target
# table begins with them (widf_ops.ddl). The loader binds the RAW_DATA_COLUMNS; Snowflake fills ID and
# LOADED_AT, and the insert LOADED_BY (CURRENT_USER()).
RAW_DATA_TABLE = (
    ("ID", "NUMBER AUTOINCREMENT"),
    ("SOURCE_FILE", "VARCHAR"),
    ("PAYLOAD", "VARIANT"),
    ("LOADED_AT", "TIMESTAMP_LTZ DEFAULT CURRENT_TIMESTAMP()"),
    ("LOADED_BY", "VARCHAR"),
    ("SOURCE_BUCKET", "VARCHAR"),
    ("SOURCE_KEY", "VARCHAR"),
    ("SOURCE_VERSION_ID", "VARCHAR"),
    ("SOURCE_ETAG", "VARCHAR"),
    ("SOURCE_SIZE", "NUMBER"),
    ("SOURCE_EVENT_TIME", "VARCHAR"),
    ("SOURCE_PRINCIPAL", "VARCHAR"),
    ("SOURCE_IP", "VARCHAR"),
    ("RECORD_INDEX", "NUMBER"),
    ("LOAD_ID", "VARCHAR"),
)
RAW_DATA_COLUMNS = tuple(name for name, _ in RAW_DATA_TABLE if name not in ("ID", "LOADED_AT", "LOADED_BY"))
LEDGER_COLUMNS = (
    "FILE_ID",
    "SOURCE_FILE",
    "SOURCE_BUCKET",
    "SOURCE_KEY",
    "SOURCE_VERSION_ID",
    "SOURCE_ETAG",
    "SOURCE_SIZE",
    "SOURCE_SEQUENCER",
    "SOURCE_EVENT_TIME",
    "STATUS",
    "ROWS_LOADED",
    "ROWS_REJECTED",
    "REASON",
    "LOAD_ID",
    "STARTED_AT",
)
REASON_MAX_CHARS = 2000


class IdentityNotTrusted(Exception):
    """Snowflake verified the function's AWS identity but no user trusts it."""


@dataclass(frozen=True)
class LedgerEntry:
    """One row of LOAD_HISTORY: the outcome of one attempt at one file."""

    ref: FileRef
    status: LoadStatus
    load_id: str
    started_at: str  # ISO timestamp, when the attempt began
    rows_loaded: int = 0
    rows_rejected: int = 0
    reason: str | None = None

    def values(self) -> tuple:
        ref = self.ref
        reason = self.reason[:REASON_MAX_CHARS] if self.reason else None
        # The status's plain string: the connector maps a bound value by its exact type, and refuses a str subclass.
        return (
            file_id(ref),
            ref.uri,
            ref.bucket,
            ref.key,
            ref.version_id,
            ref.etag,
            ref.size,
            ref.sequencer,
            ref.event_time,
            self.status.value,
            self.rows_loaded,
            self.rows_rejected,
            reason,
            self.load_id,
            self.started_at,
        )


# REJECTED_RECORDS (the quarantine), likewise: the loader binds the REJECTED_COLUMNS, and REJECTED_BY.
REJECTED_RECORDS_TABLE = (
    ("SOURCE_FILE", "VARCHAR"),
    ("SOURCE_KEY", "VARCHAR"),
    ("RECORD_INDEX", "NUMBER"),
    ("ROUTE", "VARCHAR"),
    ("REASON", "VARCHAR"),
    ("RAW_RECORD", "VARCHAR"),
    ("LOAD_ID", "VARCHAR"),
    ("REJECTED_AT", "TIMESTAMP_LTZ DEFAULT CURRENT_TIMESTAMP()"),
    ("REJECTED_BY", "VARCHAR"),
)
REJECTED_COLUMNS = tuple(name for name, _ in REJECTED_RECORDS_TABLE if name not in ("REJECTED_AT", "REJECTED_BY"))


def insert_rows_statement(table: str, typed_columns: Sequence[TypedColumn] = ()) -> str:
    """Records for a target table, many per statement: their event context bound once, the records
    themselves bound as one JSON array of `[record index, record, typed column text...]` elements,
    Snappy-compressed and base64-encoded (see packed_records).

    Why one array and not one bound row per record: the connector converts every bound value in
    Python (~3 µs each), so twelve columns a row cost ~40 µs a record, ten times the pipeline; the
    context is the same for every record of a file. Typed columns are bound as text and cast by
    Snowflake (TRY_CAST: a bad value becomes NULL), as a single bound value would be. PARSE_JSON's `'d'`
    keeps the last value of a key written twice, as orjson reads it: a record loaded as written
    (widf_loader.as_written) is the file's own text, where the strict default would fail the batch.
    """
    values = raw_data_values("r.value")
    typed = "".join(f", {c.name}" for c in typed_columns)
    typed_values = "".join(
        f", {'PARSE_JSON' if c.type == 'VARIANT' else 'TRY_CAST'}(r.value[{i}]::VARCHAR{'' if c.type == 'VARIANT' else f' AS {c.type}'})"
        for i, c in enumerate(typed_columns, start=2)
    )
    return (
        f"INSERT INTO {table} ({', '.join(RAW_DATA_COLUMNS)}, LOADED_BY{typed}) "
        f"SELECT {values}, CURRENT_USER(){typed_values} "
        f"FROM TABLE(FLATTEN(INPUT => PARSE_JSON(DECOMPRESS_STRING(BASE64_DECODE_BINARY(?), '{RECORDS_COMPRESSION}'), 'd'))) r"
    )


def raw_data_values(element: str) -> str:
    """RAW_DATA_COLUMNS' values in an insert or a COPY: the payload and index from each record's element
    `[index, record, ...]` (named `element`), the file's event context bound once (`?`)."""
    per_record = {"PAYLOAD": f"{element}[1]", "RECORD_INDEX": f"{element}[0]"}
    return ", ".join(per_record.get(c, "?") for c in RAW_DATA_COLUMNS)


def copy_rows_statement(table: str, folder: str, part: str) -> str:
    """A staged load's COPY of one part file of a table (widf_loader.stage): each line `[record index, record]`,
    the file's event context and LOADED_BY bound once, as insert_rows_statement binds them. `folder` (a path of
    the user stage, under a load id) and `part` (a file name in it) are the loader's own names, never ones from
    configuration or an event."""
    if not re.fullmatch(r"[\w.-]+", part):
        raise ValueError(f"a staged part is named by the loader, a plain file name: not {part!r}")
    values = raw_data_values("$1")
    return (
        f"COPY INTO {table} ({', '.join(RAW_DATA_COLUMNS)}, LOADED_BY) FROM (SELECT {values}, ? FROM {folder}) "
        f"FILES = ('{part}') FILE_FORMAT = (TYPE = JSON COMPRESSION = GZIP) ON_ERROR = ABORT_STATEMENT"
    )


def packed_records(array_json: bytes) -> str:
    """A batch's JSON array as its insert binds it: Snappy (raw format, as Snowflake's COMPRESS writes
    it), then base64, which Snowflake turns back with DECOMPRESS_STRING(BASE64_DECODE_BINARY(?)).

    Why: the connector gzips every request body at level 9, and JSON text escaped inside a JSON request
    is what it is slowest at: 160 ms for a 4.4 MB batch, half of the loader's CPU on a large file.
    Snappy and base64 take 3 ms and leave the connector a seventh of the bytes (33 ms in all).
    """
    return base64.b64encode(cramjam.snappy.compress_raw(array_json)).decode("ascii")


@dataclass(frozen=True, slots=True)
class RecordArrayJson:
    """A batch's records as one JSON array, as the pipeline builds it. The warehouse packs it (see
    packed_records) in its sender thread, while the pipeline builds the next batch."""

    json: bytes


@dataclass(frozen=True, slots=True)
class RecordLines:
    """A batch's records as NDJSON lines, for a staged load's part files (widf_loader.stage); never bound."""

    ndjson: bytes
    records: int


def bound_rows(rows: Sequence[Sequence[Any]]) -> list[tuple]:
    """The rows as the statement binds them: a batch's record array packed, everything else as it is."""
    return [tuple(packed_records(v.json) if isinstance(v, RecordArrayJson) else v for v in row) for row in rows]


def reject_statement(table: str) -> str:
    """Rejected records for the quarantine table, bound as the target tables' are: the file's context once,
    the records as one packed JSON array of `[record index, route, reason, raw record]` elements."""
    per_record = {
        "RECORD_INDEX": "r.value[0]",
        "ROUTE": "r.value[1]::VARCHAR",
        "REASON": "r.value[2]::VARCHAR",
        "RAW_RECORD": "r.value[3]::VARCHAR",
    }
    values = ", ".join(per_record.get(c, "?") for c in REJECTED_COLUMNS)
    return (
        f"INSERT INTO {table} ({', '.join(REJECTED_COLUMNS)}, REJECTED_BY) SELECT {values}, CURRENT_USER() "
        f"FROM TABLE(FLATTEN(INPUT => PARSE_JSON(DECOMPRESS_STRING(BASE64_DECODE_BINARY(?), '{RECORDS_COMPRESSION}')))) r"
    )


def _ledger_source() -> str:
    return ", ".join(f"{'CAST(? AS TIMESTAMP_LTZ)' if c == 'STARTED_AT' else '?'} AS {c}" for c in LEDGER_COLUMNS)


def record_statement(ledger: str) -> str:
    columns = ", ".join(LEDGER_COLUMNS)
    return f"INSERT INTO {ledger} ({columns}, FINISHED_AT, LOADED_BY) SELECT {_ledger_source()}, CURRENT_TIMESTAMP(), CURRENT_USER()"


def claim_statement(ledger: str, entries: int = 1) -> str:
    """Insert each entry's outcome unless its file is already settled; an entry that settles nothing
    (a duplicate) is always inserted, so one statement records a whole batch's outcomes.

    Why a MERGE and not a check-then-INSERT: Snowflake enforces no unique
    constraint, so two concurrent deliveries that both check, find nothing and
    insert would both win. A MERGE takes the ledger table's lock (UPDATE,
    DELETE and MERGE on one table never run concurrently) and keeps it until
    the transaction ends, so a second MERGE for the same file waits, then
    evaluates against the committed claim (read committed) and inserts nothing.
    The claim is the last statement before COMMIT, so the lock is held for
    milliseconds, not for the whole file: loads of different files still run
    in parallel, and a runner that dies mid-file holds no lock at all.
    """
    columns = ", ".join(LEDGER_COLUMNS)
    values = ", ".join(f"s.{c}" for c in LEDGER_COLUMNS)
    settled = ", ".join(f"'{s}'" for s in FINAL_STATUSES)
    source = " UNION ALL ".join(f"SELECT {_ledger_source()}" for _ in range(entries))
    return (
        f"MERGE INTO {ledger} h USING ({source}) s "
        f"ON h.FILE_ID = s.FILE_ID AND h.STATUS IN ({settled}) AND s.STATUS IN ({settled}) "
        f"WHEN NOT MATCHED THEN INSERT ({columns}, FINISHED_AT, LOADED_BY) "
        f"VALUES ({values}, CURRENT_TIMESTAMP(), CURRENT_USER())"
    )


def settled_statement(ledger: str, files: int = 1) -> str:
    settled = ", ".join(f"'{s}'" for s in FINAL_STATUSES)
    return f"SELECT FILE_ID, LOAD_ID FROM {ledger} WHERE FILE_ID IN ({', '.join('?' * files)}) AND STATUS IN ({settled})"


def for_files(statement: str, files: int) -> str:
    """One insert for several files' batches: the statement's SELECT once per file, joined by UNION ALL, each
    binding its own file's context and records (in the order of the files' rows).

    The insert statements built here (insert_rows_statement, reject_statement) have one ` SELECT `, before the
    source; everything after it is the per-file part.
    """
    head, select = statement.split(" SELECT ", 1)
    return f"{head} " + " UNION ALL ".join(f"SELECT {select}" for _ in range(files))


def connect(settings: LoaderSettings) -> snowflake.connector.SnowflakeConnection:
    try:
        return snowflake.connector.connect(**settings.connect_args())
    except DatabaseError as e:
        if "Unable to find an associated Snowflake user" in str(e):
            raise IdentityNotTrusted(
                f"{e.msg} - no Snowflake service user trusts this function's IAM role; run `widf-loader snow lambda-wid` to create one."
            ) from None
        raise


class Warehouse:
    """The loader's side of Snowflake. One connection per warm container, opened on first use."""

    def __init__(self, settings: LoaderSettings):
        self.settings = settings
        self.ledger = settings.ledger_table
        self._connection: snowflake.connector.SnowflakeConnection | None = None
        self._connecting: Future[snowflake.connector.SnowflakeConnection] | None = None
        # Sent with each statement in the query request's own parameters, as Snowflake's drivers do for a
        # per-statement QUERY_TAG: no ALTER SESSION, so tagging costs no statement and no round trip.
        self._statement_params: dict[str, str] | None = None
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="widf-sender")
        self._user: str | None = None  # CURRENT_USER() of the open connection, asked once

    @contextmanager
    def tagged(self, query_tag: str) -> Iterator[None]:
        """Every statement inside carries this QUERY_TAG (Snowflake shows it in QUERY_HISTORY)."""
        self._statement_params = {"QUERY_TAG": query_tag}
        try:
            yield
        finally:
            self._statement_params = None

    def end_transaction(self, statement: str) -> None:
        """COMMIT or ROLLBACK, tagged like the statements before it (connection.commit() would send it untagged)."""
        with self.connection.cursor() as cursor:
            cursor.execute(statement, _statement_params=self._statement_params)

    def connect_ahead(self) -> None:
        """Start opening the connection in the sender thread, so that the login's round trips overlap what the
        caller does next (a cold start's S3 client); the first use of `connection` waits for it, and raises
        what opening it raised."""
        if self._connection is None and self._connecting is None:
            if LOGIN_WALKS_INSPECT_STACK:
                # Its first call stats the file of every module loaded so far, one system call at a time, each
                # giving up the GIL; beside a thread busy importing, each took a switch interval to win it back,
                # and the login took several times its own length. Made here, with no thread to contend with,
                # the call is short, and the login's finds every module known (`make bench`: cold_start_connector5_s).
                inspect.stack(context=0)
            self._connecting = self._sender.submit(connect, self.settings)

    def _take_connected_ahead(self) -> None:
        """Wait for the connection connect_ahead is opening, if any, and keep it; raises what opening it raised."""
        if self._connecting is not None:
            connecting, self._connecting = self._connecting, None
            self._connection = connecting.result()

    @property
    def connection(self) -> snowflake.connector.SnowflakeConnection:
        self._take_connected_ahead()
        if self._connection is None or self._connection.is_closed():
            self._connection = connect(self.settings)
        return self._connection

    def reset(self) -> None:
        """Drop the connection, so the next use opens a fresh one (after an error that may have broken it)."""
        with suppress(Exception):  # opening it ahead failed: nothing to close, and the next use opens a fresh one
            self._take_connected_ahead()
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:
                log.debug("closing a broken connection failed", exc_info=True)
        self._connection = None
        self._user = None

    def current_user(self) -> str:
        """The connection's user, as a staged load's COPY binds it into LOADED_BY (one statement per connection)."""
        if self._user is None:
            with self.connection.cursor() as cursor:
                row = cursor.execute("SELECT CURRENT_USER()", _statement_params=self._statement_params).fetchone()
                assert row is not None  # CURRENT_USER() is one row
                self._user = str(row[0])
        return self._user

    def settled_load(self, ref: FileRef) -> str | None:
        """The load id of an earlier attempt that settled this file, if any (a cheap early exit)."""
        return self.settled_loads([ref]).get(file_id(ref))

    def settled_load_while(self, ref: FileRef, work: Callable[[], T]) -> tuple[str | None, T | Exception]:
        """settled_load, asked in the sender thread while this one does `work` (a round trip of its own): both
        answers, the work's result or what it raised. What the check raises propagates, after the work."""
        settled = self._sender.submit(self.settled_load, ref)
        try:
            done: T | Exception = work()
        except Exception as e:  # noqa: BLE001 - handed to the caller, who decides once the ledger has answered
            done = e
        return settled.result(), done

    def settled_loads(self, refs: Sequence[FileRef]) -> dict[str, str]:
        """For those of these files already settled: file id -> the load id that settled it (one statement)."""
        ids = sorted({file_id(ref) for ref in refs})
        with self.connection.cursor() as cursor:
            rows = cursor.execute(settled_statement(self.ledger, len(ids)), ids, _statement_params=self._statement_params).fetchall()
        return {row[0]: row[1] for row in rows}

    def load_and_claim(
        self, batches: Iterable[tuple[str, Sequence[Sequence[Any]]]], settle: Callable[[], LedgerEntry], stage: StagedLoad | None = None
    ) -> tuple[bool, LedgerEntry]:
        """Run every (statement, rows) batch, then settle the file, in one transaction.

        `settle()` judges the file once all its rows are in. LOADED: the file is
        claimed and the transaction commits, unless another delivery settled it
        first (then everything rolls back and claimed is False). Anything else
        (a gate rejected the file): everything rolls back and nothing is claimed;
        the caller settles the rejection with claim_rejection. With a stage, the
        target tables' batches go to its parts, each copied once it is full, the last before the claim.
        """
        with self.transaction(), self.connection.cursor() as cursor:
            try:
                if stage is not None:
                    stage.loaded_by = self.current_user()
                self.send_while_building(cursor, batches, stage)
                if stage is not None:
                    stage.wait_for_copies()  # a part's COPY may still run: nothing else may meanwhile, a ROLLBACK least
                entry = settle()
                if entry.status is not LoadStatus.LOADED:
                    self.end_transaction("ROLLBACK")
                    return False, entry
                if stage is not None:
                    stage.finish(cursor, self._statement_params)
                return self.claim(cursor, [entry]), entry
            finally:
                if stage is not None:
                    stage.cleanup(cursor, self._statement_params)

    def load_and_claim_together(self, batches: Iterable[tuple[str, Sequence[Sequence[Any]]]], entries: Sequence[LedgerEntry]) -> bool:
        """Run the batches, then record every entry with one claim, in one transaction.

        True: committed, every LOADED entry claimed its file. False: another delivery settled one of these
        files meanwhile, so everything rolled back (the caller loads the files one by one, which sorts out
        which).
        """
        with self.transaction(), self.connection.cursor() as cursor:
            self.send_while_building(cursor, batches)
            return self.claim(cursor, entries)

    def claim(self, cursor: Any, entries: Sequence[LedgerEntry]) -> bool:
        """The last statements of a load: the claim of every entry (see claim_statement), then COMMIT if each
        was inserted, else ROLLBACK (another delivery settled a file first). True if committed."""
        values = [value for entry in entries for value in entry.values()]
        cursor.execute(claim_statement(self.ledger, len(entries)), values, _statement_params=self._statement_params)
        claimed = cursor.rowcount == len(entries)
        self.end_transaction("COMMIT" if claimed else "ROLLBACK")
        return claimed

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A failure inside rolls the transaction back (and frees a ledger held by a killed invocation), then propagates."""
        try:
            yield
        except DatabaseError as e:
            self._rollback_quietly()
            if e.errno == LOCK_WAIT_TIMEOUT:  # perhaps a killed invocation's transaction holds the ledger
                self.abort_detached_transactions()
            raise
        except BaseException:
            self._rollback_quietly()
            raise

    def send_while_building(
        self, cursor: Any, batches: Iterable[tuple[str, Sequence[Sequence[Any]]]], stage: StagedLoad | None = None
    ) -> None:
        """Run each batch's statement in the sender thread while this thread builds the next batch (or, for a
        target table of a staged load, write it to the stage's part there; the stage copies a full part in a
        thread of its own).

        Building a batch (parse, validate, serialise) is CPU work in Python; running it is mostly waiting
        for Snowflake, and the connector's gzip of the request releases the GIL. One statement in flight
        and one batch in the making: the statements still run one after another, in order, in the
        file's one transaction, and memory holds two batches at most.
        """
        in_flight: Future | None = None

        def execute_batch(cursor: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
            if stage is not None:
                stage.wait_for_copies()  # one statement at a time on the transaction's cursor
            self.execute_batch(cursor, statement, rows)

        try:
            for statement, rows in batches:
                if in_flight is not None:
                    in_flight.result()
                if stage is not None and stage.takes(statement):
                    in_flight = self._sender.submit(stage.write, cursor, statement, rows, self._statement_params)
                else:
                    in_flight = self._sender.submit(execute_batch, cursor, statement, rows)
        except BaseException:
            if in_flight is not None:
                futures_wait([in_flight])  # the rollback that follows must not race a statement still running
            raise
        if in_flight is not None:
            in_flight.result()

    def execute_batch(self, cursor: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """In the sender thread: pack the batch's records (see packed_records) and run its statement.

        A batch is one row of binds (its records are one array), so it runs as `execute`: connector 5.x's
        `executemany` takes no statement parameters (the QUERY_TAG) and first asks the server, in a round
        trip of its own, whether the statement accepts array binds.
        """
        for row in bound_rows(rows):
            cursor.execute(statement, row, _statement_params=self._statement_params)

    def abort_detached_transactions(self) -> list[str]:
        """Abort our own transactions that no live invocation can own; return their ids.

        Lambda kills an invocation at its timeout without a word to Snowflake, and
        a statement that was running then (or a claim not yet committed) leaves
        its transaction open, holding the ledger's lock, until Snowflake gives up
        on it hours later. Only this user's transactions are visible and
        abortable, and only those older than the function's timeout are stale.
        """
        aborted = []
        with self.connection.cursor() as cursor:
            rows = cursor.execute("SHOW TRANSACTIONS", _statement_params=self._statement_params).fetchall()
            columns = [d[0].lower() for d in cursor.description or ()]
            now = datetime.now(UTC)
            for row in rows:
                transaction = dict(zip(columns, row, strict=True))
                started = transaction["started_on"]
                started = started if started.tzinfo else started.replace(tzinfo=UTC)
                if str(transaction["session"]) == str(self.connection.session_id) or transaction["state"] != "running":
                    continue
                if (now - started).total_seconds() > self.settings.function_timeout_seconds:
                    cursor.execute(
                        "SELECT SYSTEM$ABORT_TRANSACTION(?)", (int(transaction["id"]),), _statement_params=self._statement_params
                    )
                    aborted.append(str(transaction["id"]))
        if aborted:
            log.warning("aborted %d detached transaction(s) of killed invocations: %s", len(aborted), ", ".join(aborted))
        return aborted

    def claim_rejection(self, entry: LedgerEntry, quarantined: Iterable[tuple[str, Sequence[Sequence[Any]]]] = ()) -> bool:
        """Settle a file as REJECTED, with its quarantined records' batches, in one transaction.

        The claim comes last, as in load_and_claim: a delivery that finds the file
        already settled rolls back, so a rejected file's records are written once
        however often it arrives. False if it was already settled.
        """
        with self.transaction(), self.connection.cursor() as cursor:
            self.send_while_building(cursor, quarantined)
            return self.claim(cursor, [entry])

    def record(self, entry: LedgerEntry) -> None:
        """Record an outcome that settles nothing (a duplicate, a skip, a failure)."""
        with self.connection.cursor() as cursor:
            cursor.execute(record_statement(self.ledger), entry.values(), _statement_params=self._statement_params)
        self.end_transaction("COMMIT")

    def _rollback_quietly(self) -> None:
        try:
            if self._connection is not None and not self._connection.is_closed():
                self.end_transaction("ROLLBACK")
        except Exception:
            log.warning("rollback after a failed load also failed; dropping the connection", exc_info=True)
            self.reset()
