"""One file, one pass: object stream -> records -> rows -> load.

The same function runs in Lambda, in the local stack and in the CLI.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import orjson

from widf_loader.events import FileRef
from widf_loader.reader import ObjectGone, iter_records, open_object
from widf_loader.warehouse import Warehouse


@dataclass(frozen=True)
class FileOutcome:
    ref: FileRef
    status: str  # LOADED | SKIPPED
    rows_loaded: int
    load_id: str
    reason: str | None = None


def raw_row(ref: FileRef, record: Any, index: int, load_id: str) -> tuple:
    """A RAW_DATA row: the record plus where it came from (columns of warehouse.RAW_DATA_COLUMNS)."""
    return (
        ref.uri,
        orjson.dumps(record).decode(),
        ref.bucket,
        ref.key,
        ref.version_id,
        ref.etag,
        ref.size,
        ref.event_time,
        ref.principal,
        ref.source_ip,
        index,
        load_id,
    )


def batched(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def load_file(ref: FileRef, *, s3: Any, warehouse: Warehouse, batch_rows: int) -> FileOutcome:
    load_id = str(uuid.uuid4())
    try:
        stream = open_object(s3, ref)
    except ObjectGone as e:
        return FileOutcome(ref, "SKIPPED", 0, load_id, reason=str(e))
    rows = (raw_row(ref, record, index, load_id) for index, record in enumerate(iter_records(stream, ref.uri)))
    loaded = warehouse.load(batched(rows, batch_rows))
    return FileOutcome(ref, "LOADED", loaded, load_id)
