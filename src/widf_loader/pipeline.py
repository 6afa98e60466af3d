"""One file, one pass: object stream -> records -> rows -> load -> ledger.

Every attempt ends with exactly one LOAD_HISTORY row: LOADED or REJECTED
(which settle the file), SKIPPED_DUPLICATE, SKIPPED (object gone), or FAILED
(then the error propagates, so the event is retried). The same function runs
in Lambda, in the local stack and in the CLI.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from itertools import islice
from typing import Any

import orjson

from widf_loader.config import LoaderSettings, ReadLimits
from widf_loader.events import FileRef
from widf_loader.reader import ObjectGone, UnreadableFile, check_record, iter_records, open_object
from widf_loader.warehouse import LedgerEntry, Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileOutcome:
    ref: FileRef
    status: str  # LOADED | REJECTED | SKIPPED_DUPLICATE | SKIPPED
    rows_loaded: int
    load_id: str
    reason: str | None = None


def raw_rows(ref: FileRef, records: Iterable[Any], load_id: str, limits: ReadLimits) -> Iterator[tuple]:
    """RAW_DATA rows: each record plus where it came from (columns of warehouse.RAW_DATA_COLUMNS)."""
    for index, record in enumerate(records):
        payload = orjson.dumps(record)
        check_record(record, payload, index, ref.uri, limits)
        yield (
            ref.uri, payload.decode(), ref.bucket, ref.key, ref.version_id, ref.etag, ref.size,
            ref.event_time, ref.principal, ref.source_ip, index, load_id,
        )  # fmt: skip


def batched(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def load_file(ref: FileRef, *, s3: Any, warehouse: Warehouse, settings: LoaderSettings) -> FileOutcome:
    load_id = str(uuid.uuid4())
    entry = partial(LedgerEntry, ref=ref, load_id=load_id, started_at=datetime.now(timezone.utc).isoformat())

    def outcome(status: str, rows: int = 0, reason: str | None = None) -> FileOutcome:
        return FileOutcome(ref, status, rows, load_id, reason)

    if earlier := warehouse.settled_load(ref):
        reason = f"already settled by load {earlier}"
        warehouse.record(entry(status="SKIPPED_DUPLICATE", reason=reason))
        return outcome("SKIPPED_DUPLICATE", reason=reason)
    try:
        stream = open_object(s3, ref, settings.limits)
        rows = raw_rows(ref, iter_records(stream, ref.uri, settings.limits), load_id, settings.limits)
        claimed, loaded = warehouse.load_and_claim(
            batched(rows, settings.batch_rows), lambda count: entry(status="LOADED", rows_loaded=count)
        )
    except ObjectGone as e:
        warehouse.record(entry(status="SKIPPED", reason=str(e)))
        return outcome("SKIPPED", reason=str(e))
    except UnreadableFile as e:
        if warehouse.claim_rejection(entry(status="REJECTED", reason=str(e))):
            return outcome("REJECTED", reason=str(e))
        claimed, loaded = False, 0
    except Exception as e:
        record_failure(warehouse, entry(status="FAILED", reason=f"{type(e).__name__}: {e}"))
        raise
    if not claimed:
        reason = "settled by a concurrent delivery of the same file"
        warehouse.record(entry(status="SKIPPED_DUPLICATE", reason=reason))
        return outcome("SKIPPED_DUPLICATE", reason=reason)
    return outcome("LOADED", loaded)


def record_failure(warehouse: Warehouse, entry: LedgerEntry) -> None:
    """Best effort: when Snowflake itself is what failed, the log is the only record."""
    try:
        warehouse.record(entry)
    except Exception:  # noqa: BLE001 - the original error is what the caller must see
        log.warning("could not record the failure of %s in the ledger", entry.ref.uri, exc_info=True)
