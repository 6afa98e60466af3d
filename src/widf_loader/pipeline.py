"""One file, one pass: records -> route -> contract -> enrichment -> rows -> load -> ledger.

Every attempt ends with exactly one LOAD_HISTORY row, its status a LoadStatus;
on FAILED the error propagates, so the event is retried. The same code runs in
Lambda, in the local stack and in `widf-loader load`.
"""

from __future__ import annotations

import logging
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import accumulate, count, repeat
from operator import add, methodcaller
from typing import Any

import orjson

from widf_loader.as_written import AsWritten, judged_again
from widf_loader.config import LoaderSettings, ReadLimits
from widf_loader.contract import ContractBook, GateDecision, judge_file
from widf_loader.elements import ChunkElements, Serialised, without
from widf_loader.enrich import Enricher, RecordRejectedByHook, load_hooks
from widf_loader.events import FileRef
from widf_loader.outcomes import LoadStatus
from widf_loader.pipeline_config import PipelineConfig, Route
from widf_loader.reader import (
    ALL_BUT_BRACKETS,
    LimitExceeded,
    Lines,
    ObjectGone,
    UnreadableFile,
    check_record,
    iter_records,
    open_object,
    record_chunks,
)
from widf_loader.routing import by_one_field, field_or_none, routes_for_file
from widf_loader.stage import StagedLoad, is_large
from widf_loader.warehouse import LedgerEntry, RecordArrayJson, RecordLines, Warehouse, insert_rows_statement, reject_statement

log = logging.getLogger(__name__)
RAW_RECORD_MAX_BYTES = 64 * 1024
MAX_REJECTIONS_KEPT = 100
# A batch's records are bound as one JSON array, Snappy-packed into a BINARY (see warehouse.packed_records),
# whose limit in Snowflake is 8 MB. Snappy's worst case is n + n/6 + 32 bytes, so an array this large packs
# into one BINARY however badly it compresses; its text, just under 7 MB, is well under the 16 MB
# DECOMPRESS_STRING returns. The largest batch that fits, because fewer, larger batches cost fewer
# statements and less time for some memory: `make bench` counts the statements and the peak memory of
# a large file's load (docs/performance.md).
SNOWFLAKE_BINARY_MAX_BYTES = 8 * 1024 * 1024
BATCH_BYTES = (SNOWFLAKE_BINARY_MAX_BYTES - 32) * 6 // 7


@dataclass(frozen=True)
class FileOutcome:
    ref: FileRef
    status: LoadStatus  # any but FAILED, which raises instead
    rows_loaded: int
    load_id: str
    reason: str | None = None
    rows_rejected: int = 0


@dataclass
class Tally:
    """What one pass over a file has seen so far."""

    records: int = 0
    rejected: int = 0
    first_rejection: str | None = None
    per_table: dict[str, int] = field(default_factory=dict)
    rejections: list[tuple[int, str, str]] = field(default_factory=list)  # (index, route, reason): the first few, for dry runs

    @property
    def loaded(self) -> int:
        return self.records - self.rejected


def typed_value(value: Any, column_type: str) -> Any:
    """A typed column's value, bound as text and cast by Snowflake (TRY_CAST: a bad value becomes NULL)."""
    if value is None:
        return None
    if column_type == "VARIANT" or isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value).lower() if isinstance(value, bool) else str(value)


def serialised(element: tuple, index: int, name: str, limits: ReadLimits) -> bytes:
    """A batch element, `[index, record, typed column text...]`, as JSON."""
    try:
        return orjson.dumps(element)
    except orjson.JSONEncodeError as e:  # orjson stops at 254 levels of nesting
        raise LimitExceeded(f"{name} record {index}: nested deeper than {limits.max_depth} levels (WIDF_MAX_DEPTH) ({e})") from None


def record_json(element: bytes) -> bytes:
    """The record's own JSON inside its batch element `[index, record]` (an index holds no comma)."""
    return element[element.index(b",") + 1 : -1]


class _RecordArray:
    """One target table's pending records: the elements of the JSON array its next insert binds, in pieces.

    A piece is one element, or a run of consecutive elements already joined as the batch is packed, by
    commas for an array and newlines for lines (see ChunkElements.run): most often a chunk joins its batch whole.
    """

    __slots__ = ("pieces", "records", "size")

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.records = 0
        self.size = 2

    def add(self, elements: list[bytes], size: int) -> None:
        """Elements that add `size` bytes to the array, a comma each."""
        self.pieces += elements
        self.records += len(elements)
        self.size += size

    def add_run(self, run: bytes, records: int) -> None:
        self.pieces.append(run)
        self.records += records
        self.size += len(run) + 1

    def array(self) -> RecordArrayJson:
        pieces = self.pieces
        if len(pieces) < 2:
            return RecordArrayJson(b"[" + b"".join(pieces) + b"]")
        # The brackets join the first and last pieces: a batch's megabytes are copied once, not twice.
        return RecordArrayJson(b",".join([b"[" + pieces[0], *pieces[1:-1], pieces[-1] + b"]"]))

    def lines(self) -> RecordLines:
        """The elements as NDJSON, for a staged load's part files (see widf_loader.stage)."""
        return RecordLines(b"\n".join([*self.pieces[:-1], self.pieces[-1] + b"\n"]) if self.pieces else b"", self.records)


class Pipeline:
    """Routes, compiled contracts and hooks: built once per container from the configuration."""

    def __init__(self, config: PipelineConfig):
        self.config = config
        self.contracts = ContractBook(config.routes)
        self.hooks = load_hooks(config.enrichment.hooks)
        self.statements = {t.name: insert_rows_statement(t.table, t.columns) for t in config.targets}
        self.tables = {self.statements[t.name]: t.table for t in config.targets}
        self.reject_statement = reject_statement(config.rejected_records_table)

    def batches(
        self,
        ref: FileRef,
        records: Iterable[Any],
        load_id: str,
        limits: ReadLimits,
        batch_rows: int,
        tally: Tally,
        *,
        lines: bool = False,
    ) -> Iterator[tuple[str, list[tuple]]]:
        """(statement, rows) batches for every target table and the quarantine, filled as records stream by.

        A target table's batch is one row: the file's event context and its records as one JSON
        array (see insert_rows_statement), or as NDJSON lines with `lines` (a staged load writes them
        to its part files); the quarantine's batches are always arrays.
        This is the per-record hot path: keep it to one parse, one validation and one serialisation.
        """
        # Per file: the routes this file's records can take, each with its record test and compiled contract.
        candidates = [(test, route, self.contracts.check(route)) for test, route in routes_for_file(self.config.routes, ref)]
        # Routing by one field's value is one dict lookup instead of a test per route.
        table = by_one_field([(test, route) for test, route, _ in candidates])
        if table is not None:
            field, positions, fallback = table
        enrich = Enricher(self.hooks, ref, self.config.enrichment.time_budget_seconds) if self.hooks else None
        context = (ref.uri, ref.bucket, ref.key, ref.version_id, ref.etag, ref.size, ref.event_time, ref.principal, ref.source_ip, load_id)
        pending: dict[str, _RecordArray] = {}
        uri, rejected, dumps, statements = ref.uri, _RecordArray(), orjson.dumps, self.statements
        pack: Callable[[_RecordArray], RecordArrayJson | RecordLines] = _RecordArray.lines if lines else _RecordArray.array
        separator = b"\n" if lines else b","  # between the elements in the pack
        reject_context = (ref.uri, ref.key, load_id)
        # Records this short cannot break the size or depth limits: skip the check for them.
        unchecked_bytes = min(limits.max_record_bytes, 2 * limits.max_depth)

        def position_of(record: Any) -> int:
            """The position in candidates of the record's route."""
            if table is not None and type(record) is dict:
                try:
                    return positions.get(record.get(field), fallback)
                except TypeError:  # an unhashable value equals none of the table's scalars
                    return fallback
            for position, (test, _, _) in enumerate(candidates):
                if test is None or test(record):
                    return position
            raise AssertionError("the last route takes every record")  # guaranteed by pipeline_config

        def reject(index: int, route: Route, reason: str, element: bytes) -> tuple[str, list[tuple]] | None:
            """Quarantine a record; the quarantine's batch it filled, if this record starts the next one."""
            nonlocal rejected
            tally.rejected += 1
            tally.first_rejection = tally.first_rejection or f"record {index}: {reason}"
            if len(tally.rejections) < MAX_REJECTIONS_KEPT:  # memory stays flat however bad the file
                tally.rejections.append((index, route.name, reason))
            raw = (
                record_json(element).rstrip()[:RAW_RECORD_MAX_BYTES].decode(errors="ignore")
            )  # a line loaded as written ends in its newline
            item = dumps((index, route.name, reason, raw))
            full = None
            if rejected.records and (rejected.size + len(item) > BATCH_BYTES or rejected.records >= batch_rows):
                full = self.counted(self.reject_statement, [(*reject_context, rejected.array())], rejected.records, tally)
                rejected = _RecordArray()
            rejected.add([item], len(item) + 1)
            return full

        # Without hooks or typed columns a record needs only its route, its contract and its element:
        # a whole chunk of records then takes a few C-level passes instead of a trip round the loop each.
        by_chunk = enrich is None and not any(route.target.columns for _, route, _ in candidates)
        checks_all = [self.contracts.check_all(route) for _, route, _ in candidates]
        statement_at = [statements[route.target.name] for _, route, _ in candidates]
        one_table = len(set(statement_at)) == 1
        # Routes matter to a chunk only when they differ in contract or table.
        routed = any(checks_all) or not one_table

        def accept(
            first: int, chunk_elements: ChunkElements, where: list[int] | None, failed: list[int], record_at: Callable[[int], Any]
        ) -> Iterator[tuple[str, list[tuple]]]:
            """A chunk's elements into their tables' pending batches, less those of its failed records that
            their contract refuses (see judged), which go to the quarantine."""
            refused = set()
            for offset in failed:  # in file order, as one at a time
                route = candidates[0 if where is None else where[offset]][1]
                if (reason := self.contracts.violations(route, record_at(offset))) is not None:
                    refused.add(offset)
                    if (full := reject(first + offset, route, reason, chunk_elements[offset])) is not None:
                        yield full
            if refused:
                chunk_elements = chunk_elements.without(refused)
                where = None if where is None else without(where, refused)
            if where is None or one_table:  # most often the chunk joins its table's pending batch whole
                if (joins := pending.get(statement_at[0])) is None:
                    joins = pending[statement_at[0]] = _RecordArray()
                if (
                    joins.records + len(chunk_elements) < batch_rows
                    and joins.size + len(run := chunk_elements.run(separator)) <= BATCH_BYTES
                ):
                    joins.add_run(run, len(chunk_elements))
                    return
            elements = chunk_elements.each()
            sizes = list(map(len, elements))
            if where is None or one_table:
                groups = {statement_at[0]: (elements, sizes)}
            else:
                groups = {}
                for element, size, w in zip(elements, sizes, where, strict=True):
                    group = groups.setdefault(statement_at[w], ([], []))
                    group[0].append(element)
                    group[1].append(size)
            for statement, (accepted, sizes) in groups.items():
                batch, adding = pending.get(statement), sum(sizes) + len(sizes)  # the bytes they add, a comma each
                if batch is not None and batch.size + adding - 1 <= BATCH_BYTES and batch.records + len(accepted) < batch_rows:
                    batch.add(accepted, adding)
                else:
                    yield from self.filled(statement, accepted, sizes, pending, context, batch_rows, tally, pack)

        # NDJSON's lines are judged on their text and loaded as written when every route can judge them so
        # (widf_loader.as_written); a staged load's parts are parsed, since COPY would refuse a key written twice.
        routed_by_text = routed and len(candidates) > 1
        text_contracts = [self.contracts.struct(route) for _, route, _ in candidates]
        as_written = (
            AsWritten(text_contracts, table if routed_by_text else None, limits.max_depth)
            if by_chunk
            and not lines
            and all(c is not None or route.contract is None for c, (_, route, _) in zip(text_contracts, candidates, strict=True))
            and (table is not None or not routed_by_text)
            else None
        )

        start = 0  # the index in the file of the next chunk's first record

        def take(chunk: list[Any]) -> Iterator[tuple[str, list[tuple]]]:
            """A chunk of parsed records."""
            nonlocal start
            first, start = start, start + len(chunk)
            serialised_chunk = self.chunk_elements(chunk, first, uri, limits, unchecked_bytes) if by_chunk else None
            if serialised_chunk is not None:
                where, failed = self.judged(chunk, candidates, checks_all, position_of, table, routed)
                yield from accept(first, serialised_chunk, where, failed, chunk.__getitem__)
                return
            for index, record in enumerate(chunk, first):
                _, route, check = candidates[position_of(record)]
                try:
                    element = dumps((index, record))  # `[index, record]`: the record's place in its batch
                except orjson.JSONEncodeError:
                    element = serialised((index, record), index, uri, limits)  # raises, naming the record and the limit
                if len(element) > unchecked_bytes:
                    check_record(record, record_json(element), index, uri, limits)  # before validation: a validator recurses too
                reason = None if check is None or check(record) else self.contracts.violations(route, record)
                if reason is None and enrich is not None:
                    try:
                        record = enrich(record)
                        element = serialised((index, record), index, uri, limits)
                    except RecordRejectedByHook as e:
                        reason = str(e)
                if reason is None:
                    target = route.target
                    statement = statements[target.name]
                    if target.columns:
                        typed = [typed_value(field_or_none(record, c.field), c.type) for c in target.columns]
                        element = serialised((index, record, *typed), index, uri, limits)
                    batch = pending.get(statement)
                    if batch is None:
                        batch = pending[statement] = _RecordArray()
                    elif batch.size + len(element) > BATCH_BYTES:
                        yield self.counted(statement, [(*context, pack(batch))], batch.records, tally)
                        batch = pending[statement] = _RecordArray()
                    batch.add([element], len(element) + 1)
                    if batch.records >= batch_rows:
                        yield self.counted(statement, [(*context, pack(batch))], batch.records, tally)
                        pending[statement] = _RecordArray()
                elif (full := reject(index, route, reason, element)) is not None:
                    yield full

        for read in record_chunks(records, lines=as_written is not None):
            if isinstance(read, Lines):
                assert as_written is not None  # the reader hands over Lines only when asked for them
                first = start
                if (judged_texts := as_written.judged(read.texts, first)) is not None:
                    start += len(read)
                    elements, where, failed, parsed = judged_texts
                    yield from accept(first, elements, where, failed, parsed.__getitem__)
                    continue
                parts: Iterable[list[Any]] = read.parts()
            else:
                parts = (read,)
            for chunk in parts:
                yield from take(chunk)
        for statement, batch in pending.items():
            if batch.records:
                yield self.counted(statement, [(*context, pack(batch))], batch.records, tally)
        if rejected.records:
            yield self.counted(self.reject_statement, [(*reject_context, rejected.array())], rejected.records, tally)

    @staticmethod
    def judged(
        chunk: list[Any], candidates: list[tuple], checks_all: list, position_of: Callable[[Any], int], table: tuple | None, routed: bool
    ) -> tuple[list[int] | None, list[int]]:
        """Each record's route, as its position in candidates (None: the first's, for all), and the
        offsets of the records that fail their route's contract, in file order.

        Each route's records are judged together (see ContractBook.check_all).
        """
        where = None
        if routed and len(candidates) > 1:
            if table is not None:
                field, positions, fallback = table
                try:  # position_of's table lookup, in C (only an object has a `get`)
                    where = list(map(positions.get, map(methodcaller("get", field), chunk), repeat(fallback)))
                except (AttributeError, TypeError):  # a record that is no object, or an unhashable value: position_of routes it
                    pass
            if where is None:
                where = list(map(position_of, chunk))
        return where, judged_again(where, chunk, checks_all)

    @staticmethod
    def chunk_elements(chunk: list[Any], first: int, name: str, limits: ReadLimits, unchecked_bytes: int) -> ChunkElements | None:
        """The chunk's batch elements, `[index, record]`, its records checked against the size and depth limits.

        None when a record cannot be serialised: the chunk then goes one record at a time, which
        names the record and the limit.
        """
        try:
            elements = list(map(orjson.dumps, zip(count(first), chunk)))
        except orjson.JSONEncodeError:
            return None
        sizes = list(map(len, elements))
        if max(sizes) <= unchecked_bytes:
            return Serialised(elements)
        # Brackets per element, counted in C: the elements hold no raw newline, so joined by newlines
        # and stripped of all but brackets and newlines, each line is one element's brackets.
        brackets = list(map(len, b"\n".join(elements).translate(None, ALL_BUT_BRACKETS).split(b"\n")))
        if max(sizes) <= limits.max_record_bytes and max(brackets) <= limits.max_depth:
            return Serialised(elements)
        for offset, (size, bracket_count) in enumerate(zip(sizes, brackets, strict=True)):
            if size > unchecked_bytes and (size > limits.max_record_bytes or bracket_count > limits.max_depth):
                check_record(chunk[offset], record_json(elements[offset]), first + offset, name, limits)  # raises if it breaks a limit
        return Serialised(elements)

    def filled(
        self,
        statement: str,
        elements: list[bytes],
        sizes: list[int],
        pending: dict[str, _RecordArray],
        context: tuple,
        batch_rows: int,
        tally: Tally,
        pack: Callable[[_RecordArray], RecordArrayJson | RecordLines],
    ) -> Iterator[tuple[str, list[tuple]]]:
        """Append elements (of these sizes) to the statement's pending batch, yielding the batches that fill.

        The same rule as for one element at a time (a batch takes an element while under batch_rows
        records and BATCH_BYTES bytes; a fresh batch takes one whatever its size), with the runs that
        fit found by bisecting the elements' running sizes instead of testing each element.
        """
        # ends[j]: the bytes elements[: j + 1] add to a batch, a comma each.
        ends = list(map(add, accumulate(sizes), count(1)))
        batch, position = pending.get(statement), 0
        while position < len(elements):
            if batch is None:
                batch = pending[statement] = _RecordArray()
            elif batch.size + len(elements[position]) > BATCH_BYTES:
                yield self.counted(statement, [(*context, pack(batch))], batch.records, tally)
                batch = pending[statement] = _RecordArray()
            # Element `position` goes in regardless; those after it while they fit.
            before = ends[position - 1] if position else 0
            end = bisect_right(
                ends, BATCH_BYTES - batch.size + before + 1, position + 1, min(len(elements), position + batch_rows - batch.records)
            )
            batch.add(elements[position:end], ends[end - 1] - before)
            position = end
            if batch.records >= batch_rows:
                yield self.counted(statement, [(*context, pack(batch))], batch.records, tally)
                batch = pending[statement] = _RecordArray()

    def counted(self, statement: str, rows: list[tuple], records: int, tally: Tally) -> tuple[str, list[tuple]]:
        """Count a batch on its way out: rows per table, records seen."""
        tally.records += records
        if statement != self.reject_statement:
            table = self.tables[statement]
            tally.per_table[table] = tally.per_table.get(table, 0) + records
        return statement, rows

    def load_file(
        self, ref: FileRef, *, s3: Any, warehouse: Warehouse, settings: LoaderSettings, load_id: str | None = None
    ) -> FileOutcome:
        load_id = load_id or str(uuid.uuid4())  # the handler passes its own, so its logs and query tag name the same attempt
        entry = partial(LedgerEntry, ref=ref, load_id=load_id, started_at=datetime.now(UTC).isoformat())

        def outcome(status: LoadStatus, rows: int = 0, reason: str | None = None, rejected: int = 0) -> FileOutcome:
            return FileOutcome(ref, status, rows, load_id, reason, rejected)

        # The ledger's answer and S3's come back side by side; a settled file is a duplicate whatever the GET met.
        earlier, opened = warehouse.settled_load_while(ref, lambda: open_object(s3, ref, settings.limits))
        if earlier:
            if not isinstance(opened, Exception):
                opened.close()
            reason = f"already settled by load {earlier}"
            warehouse.record(entry(status=LoadStatus.SKIPPED_DUPLICATE, reason=reason))
            return outcome(LoadStatus.SKIPPED_DUPLICATE, reason=reason)
        tally = Tally()

        def settle() -> LedgerEntry:
            gate = judge_file(self.config.gates, ref.uri, tally.records, tally.rejected, tally.first_rejection)
            if not gate.passed:
                return entry(status=LoadStatus.REJECTED, reason=gate.reason, rows_rejected=tally.rejected)
            return entry(status=LoadStatus.LOADED, rows_loaded=tally.loaded, rows_rejected=tally.rejected)

        try:
            if isinstance(opened, Exception):
                raise opened
            records = iter_records(opened, ref.uri, settings.limits, compressed_size=ref.size)
            stage = StagedLoad(load_id, self.tables, settings.stage_part_bytes) if self.stages(ref, settings) else None
            batches = self.batches(ref, records, load_id, settings.limits, settings.batch_rows, tally, lines=stage is not None)
            claimed, settled = warehouse.load_and_claim(batches, settle, stage)
            if settled.status is LoadStatus.REJECTED:
                claimed = warehouse.claim_rejection(settled, self.quarantined(s3, ref, load_id, settings))
        except ObjectGone as e:
            warehouse.record(entry(status=LoadStatus.SKIPPED, reason=str(e)))
            return outcome(LoadStatus.SKIPPED, reason=str(e))
        except UnreadableFile as e:
            settled = entry(status=LoadStatus.REJECTED, reason=str(e))
            claimed = warehouse.claim_rejection(settled)
        except Exception as e:
            record_failure(warehouse, entry(status=LoadStatus.FAILED, reason=f"{type(e).__name__}: {e}"))
            raise
        if not claimed:
            reason = "settled by a concurrent delivery of the same file"
            warehouse.record(entry(status=LoadStatus.SKIPPED_DUPLICATE, reason=reason))
            return outcome(LoadStatus.SKIPPED_DUPLICATE, reason=reason)
        if settled.status is LoadStatus.REJECTED:
            self.quarantine(s3, ref)
            return outcome(LoadStatus.REJECTED, reason=settled.reason, rejected=settled.rows_rejected)
        return outcome(LoadStatus.LOADED, settled.rows_loaded, rejected=settled.rows_rejected)

    def stages(self, ref: FileRef, settings: LoaderSettings) -> bool:
        """Whether this file's rows load through a stage: a large file, when no target has typed columns (their
        TRY_CAST is the bound insert's; a COPY would cast them otherwise)."""
        return is_large(ref, settings) and not any(target.columns for target in self.config.targets)

    def quarantined(self, s3: Any, ref: FileRef, load_id: str, settings: LoaderSettings) -> Iterator[tuple[str, list[tuple]]]:
        """A gated file's rejected records, as REJECTED_RECORDS batches, from a second pass over the object.

        Why a second pass: the gate is known only once the whole file has streamed by, and then the
        first pass's rejected records roll back with its rows (Snowflake has no savepoints, and the
        loader may not delete). Reading the object again keeps memory flat however bad the file is;
        only rejected files pay for it.
        """
        stream = open_object(s3, ref, settings.limits)
        records = iter_records(stream, ref.uri, settings.limits, compressed_size=ref.size)
        for statement, rows in self.batches(ref, records, load_id, settings.limits, settings.batch_rows, Tally()):
            if statement == self.reject_statement:
                yield statement, rows

    def plan(self, stream: Any, ref: FileRef, limits: ReadLimits) -> tuple[Tally, GateDecision]:
        """What a load of this stream would do, without Snowflake: the dry run."""
        tally = Tally()
        for _ in self.batches(ref, iter_records(stream, ref.uri, limits), "dry-run", limits, 10_000, tally):
            pass
        return tally, judge_file(self.config.gates, ref.uri, tally.records, tally.rejected, tally.first_rejection)

    def quarantine(self, s3: Any, ref: FileRef) -> None:
        """Copy a rejected file aside, when configured (the role may write there and nowhere else)."""
        if not (prefix := self.config.quarantine_prefix):
            return
        source = {"Bucket": ref.bucket, "Key": ref.key, **({"VersionId": ref.version_id} if ref.version_id else {})}
        try:
            s3.copy_object(CopySource=source, Bucket=ref.bucket, Key=f"{prefix}{ref.key}")
        except Exception:
            log.warning("could not copy rejected %s to %s", ref.uri, prefix, exc_info=True)


def record_failure(warehouse: Warehouse, entry: LedgerEntry) -> None:
    """Best effort: when Snowflake itself is what failed, the log is the only record."""
    try:
        warehouse.record(entry)
    except Exception:
        log.warning("could not record the failure of %s in the ledger", entry.ref.uri, exc_info=True)
