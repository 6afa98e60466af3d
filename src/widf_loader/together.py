"""The small files of one SQS batch, loaded together in a constant number of statements.

One file alone costs four statements (Pipeline.load_file): the settled check, an insert, the claim, the
commit; a batch of ten small files would cost forty, each a round trip to a running warehouse. Together
they cost one settled check for the batch, one insert per table their rows go to (the single-file SELECT
once per file, joined by UNION ALL), one MERGE claiming every file, and one COMMIT.

Exactly-once stays per file. The claim inserts a file's outcome only if no delivery settled it; if one did
meanwhile, the whole transaction rolls back and every file of the batch goes the per-file way, which sorts
out which. So does any file that is not simple: one whose records need more than one bound array, that a
gate rejects (its rejected records need the per-file path's second pass), or that cannot be read (the
per-file path records why, and its message returns to the queue alone).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from widf_loader.config import LoaderSettings
from widf_loader.contract import judge_file
from widf_loader.events import FileRef, file_id
from widf_loader.outcomes import LoadStatus
from widf_loader.pipeline import BATCH_BYTES, FileOutcome, Pipeline, Tally
from widf_loader.reader import iter_records, open_object
from widf_loader.warehouse import LedgerEntry, RecordArrayJson, Warehouse, for_files

log = logging.getLogger(__name__)

# A file is small if its object is no larger than one bound array (as stored; a gzipped file that turns out
# larger is handed back once its records fill a second array), and the batch's arrays together stay within
# one array's size, so a joint insert's request is no larger than a large file's.
SMALL_FILE_BYTES = BATCH_BYTES
JOINT_BYTES = BATCH_BYTES


@dataclass(frozen=True)
class Together:
    """What loading a batch's files together settled, by their position in the batch, and which are left
    to load one by one."""

    outcomes: dict[int, FileOutcome]
    alone: list[int]


def is_small(ref: FileRef) -> bool:
    return ref.size is not None and ref.size <= SMALL_FILE_BYTES


def read_whole(
    pipeline: Pipeline, ref: FileRef, load_id: str, *, s3: Any, settings: LoaderSettings
) -> tuple[list[tuple[str, list[tuple]]], Tally] | None:
    """A small file's batches, one per table at most, and its tally; None when it is not simple after all."""
    tally = Tally()
    batches: list[tuple[str, list[tuple]]] = []
    try:
        records = iter_records(open_object(s3, ref, settings.limits), ref.uri, settings.limits, compressed_size=ref.size)
        for statement, rows in pipeline.batches(ref, records, load_id, settings.limits, settings.batch_rows, tally):
            if any(statement == earlier for earlier, _ in batches):
                return None  # more than one array's worth: the per-file path streams it
            batches.append((statement, rows))
    except Exception as e:  # noqa: BLE001 - unreadable, gone, over a limit: the per-file path records the reason
        log.info("%s is loaded on its own: %s", ref.uri, e)
        return None
    return batches, tally


def array_bytes(rows: Sequence[tuple]) -> int:
    return sum(len(value.json) for row in rows for value in row if isinstance(value, RecordArrayJson))


def load_together(
    pipeline: Pipeline, refs: Sequence[FileRef], load_ids: Sequence[str], *, s3: Any, warehouse: Warehouse, settings: LoaderSettings
) -> Together:
    """Load these files in one transaction where they are small and simple; the rest are left alone."""
    started_at = datetime.now(UTC).isoformat()
    settled = warehouse.settled_loads([ref for ref in refs if is_small(ref)])
    outcomes: dict[int, FileOutcome] = {}
    alone: list[int] = []
    entries: list[LedgerEntry] = []
    joint: dict[str, list[tuple]] = {}  # statement -> the rows of every file, in file order
    joint_bytes, seen = 0, set()
    for position, (ref, load_id) in enumerate(zip(refs, load_ids, strict=True)):
        entry = partial(LedgerEntry, ref=ref, load_id=load_id, started_at=started_at)
        if not is_small(ref) or file_id(ref) in seen:  # a second delivery in one batch: alone, after the first settles
            alone.append(position)
            continue
        seen.add(file_id(ref))
        if earlier := settled.get(file_id(ref)):
            reason = f"already settled by load {earlier}"
            entries.append(entry(status=LoadStatus.SKIPPED_DUPLICATE, reason=reason))
            outcomes[position] = FileOutcome(ref, LoadStatus.SKIPPED_DUPLICATE, 0, load_id, reason)
            continue
        if (read := read_whole(pipeline, ref, load_id, s3=s3, settings=settings)) is None:
            alone.append(position)
            continue
        batches, tally = read
        size = sum(array_bytes(rows) for _, rows in batches)
        gated = not judge_file(pipeline.config.gates, ref.uri, tally.records, tally.rejected, tally.first_rejection).passed
        if gated or joint_bytes + size > JOINT_BYTES:
            alone.append(position)
            continue
        joint_bytes += size
        for statement, rows in batches:
            joint.setdefault(statement, []).extend(rows)
        entries.append(entry(status=LoadStatus.LOADED, rows_loaded=tally.loaded, rows_rejected=tally.rejected))
        outcomes[position] = FileOutcome(ref, LoadStatus.LOADED, tally.loaded, load_id, rows_rejected=tally.rejected)
    if not entries:
        return Together({}, alone)
    # One statement per table, its binds the files' rows one after another (execute_batch runs a row each).
    statements = [(for_files(statement, len(rows)), [tuple(value for row in rows for value in row)]) for statement, rows in joint.items()]
    if not warehouse.load_and_claim_together(statements, entries):
        log.info("a file of this batch was settled meanwhile by another delivery; loading the batch's files one by one")
        return Together({}, list(range(len(refs))))
    return Together(outcomes, alone)
