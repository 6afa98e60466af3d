"""Large files through a stage: a file's validated, routed and enriched records go into gzip NDJSON parts,
PUT to the service user's own stage (`@~`), each part copied into its table by a COPY INTO of its own as soon
as it is full, in the file's one transaction, before its claim.

Why: by the bound path a large file is one INSERT per bound array (7 MB of records), some 200 statements a
GB (`make bench`: statements_per_gb), each a round trip to a running warehouse; COPY is Snowflake's bulk
path, and parts follow its file-sizing guidance ("Preparing to load data": roughly 100-250 MB compressed).
A full part's PUT and COPY run in a thread of their own (the copier) while the pipeline fills the next
part, so the warehouse loads the file as it streams by instead of all at its end, and the pipeline never
waits for a COPY but the last: one part is copying at a time, so /tmp holds two parts at most. The user stage needs no object, grant
or setup: the service user may always write its own.

Exactly once, as before: the claim comes last and commits with the COPYs. An attempt stages under a folder
of its own (its load id) and each COPY names its one part, so a crash after a PUT, or during or after a
COPY, leaves files nothing loads and no committed rows; the next attempt stages its own parts and loads the
file whole. A COPY that does not load every record of its part fails the attempt (PartNotLoaded), which
rolls back. An attempt removes its folder when it ends, committed or not; a killed one leaves it behind.
"""

from __future__ import annotations

import gzip
import logging
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from pathlib import Path
from typing import IO, Any

from widf_loader.config import LoaderSettings
from widf_loader.events import FileRef
from widf_loader.warehouse import RecordLines, copy_rows_statement

log = logging.getLogger(__name__)
STAGE_ROOT = "@~/widf-loader"
_LOAD_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
GZIP_LEVEL = 1  # the parts are transient: the fastest level that still shrinks JSON several times


def is_large(ref: FileRef, settings: LoaderSettings) -> bool:
    """Whether the file loads through the stage: its S3 object is over the threshold (WIDF_STAGE_ABOVE_BYTES)."""
    return ref.size is not None and ref.size > settings.stage_above_bytes


class PartNotLoaded(Exception):
    """A part's COPY did not load the part whole (or did not find it): the attempt fails and rolls back."""


class StagedLoad:
    """One attempt's parts: written as the batches arrive (in the warehouse's sender thread), each PUT and
    copied in the copier thread once it fills, the last by finish(); cleanup() removes them, staged and local.

    Every statement on the attempt's cursor runs one after another: the copier's, then (wait_for_copies)
    any other statement of the transaction."""

    def __init__(self, load_id: str, tables: Mapping[str, str], part_bytes: int):
        if not _LOAD_ID.fullmatch(load_id):
            raise ValueError(f"a staged load's folder is named by its load id, a UUID: not {load_id!r}")
        self.folder = f"{STAGE_ROOT}/{load_id}/"
        self.tables = dict(tables)  # insert statement -> its table
        self.part_bytes = part_bytes
        self.directory = Path(tempfile.mkdtemp(prefix="widf-stage-"))  # Lambda's /tmp
        self.names = {statement: f"t{i}" for i, statement in enumerate(self.tables)}  # a table's parts: folder and files
        self.context: tuple = ()  # the file's event context, as its batches carry it
        self.loaded_by = ""  # the connection's user, bound into every COPY (the warehouse sets it before the first)
        self.parts: dict[str, int] = {}  # statement -> parts started
        self._open: dict[str, tuple[IO[bytes], gzip.GzipFile, Path]] = {}
        self._records: dict[str, int] = {}  # statement -> records in its open part
        self._copier: ThreadPoolExecutor | None = None
        self._copying: Future | None = None  # the part being PUT and copied, if any

    def takes(self, statement: str) -> bool:
        return statement in self.tables

    def write(self, cursor: Any, statement: str, rows: Sequence[Sequence[Any]], params: Mapping[str, str] | None) -> None:
        """A target table's batch, `[(*context, RecordLines)]`, appended to its open part; a full part is loaded."""
        [(*context, lines)] = rows
        assert isinstance(lines, RecordLines)
        self.context = tuple(context)
        raw, part, _ = self._open.get(statement) or self._start(statement)
        part.write(lines.ndjson)
        self._records[statement] += lines.records
        if raw.tell() >= self.part_bytes:
            self._hand_to_copier(cursor, statement, params)

    def wait_for_copies(self) -> None:
        """Return once no part is copying; raises what its PUT or COPY raised (PartNotLoaded among them)."""
        if self._copying is not None:
            copying, self._copying = self._copying, None
            copying.result()

    def finish(self, cursor: Any, params: Mapping[str, str] | None) -> None:
        """Load the parts still open, and wait for every COPY (inside the caller's transaction)."""
        for statement in list(self._open):
            self._hand_to_copier(cursor, statement, params)
        self.wait_for_copies()

    def cleanup(self, cursor: Any, params: Mapping[str, str] | None) -> None:
        """Best effort: the staged folder and the local parts; a staged file left behind loads nowhere. A COPY
        still running is waited for first: the rollback that follows must not race it."""
        if self._copying is not None:
            futures_wait([self._copying])
            self._copying = None
        if self._copier is not None:
            self._copier.shutdown()
        for raw, part, _ in self._open.values():
            part.close()
            raw.close()
        self._open.clear()
        shutil.rmtree(self.directory, ignore_errors=True)
        if self.parts:
            try:
                cursor.execute(f"REMOVE {self.folder}", _statement_params=params)
            except Exception:  # the load is settled either way; the folder only takes space
                log.warning("could not remove the staged parts in %s", self.folder, exc_info=True)

    def folder_of(self, statement: str) -> str:
        return f"{self.folder}{self.names[statement]}/"

    def _start(self, statement: str) -> tuple[IO[bytes], gzip.GzipFile, Path]:
        number = self.parts[statement] = self.parts.get(statement, 0) + 1
        self._records[statement] = 0
        path = self.directory / f"{self.names[statement]}-part-{number:05d}.ndjson.gz"
        raw = path.open("wb")
        opened = self._open[statement] = (raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0), path)
        return opened

    def _hand_to_copier(self, cursor: Any, statement: str, params: Mapping[str, str] | None) -> None:
        """Close the table's open part and have the copier load it, once the part before it is copied."""
        raw, part, path = self._open.pop(statement)
        part.close()
        raw.close()
        records = self._records.pop(statement)
        self.wait_for_copies()
        if self._copier is None:
            self._copier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="widf-copier")
        self._copying = self._copier.submit(self._load, cursor, statement, path, records, params)

    def _load(self, cursor: Any, statement: str, path: Path, records: int, params: Mapping[str, str] | None) -> None:
        """In the copier: PUT one closed part, then COPY that one file into its table."""
        folder = self.folder_of(statement)
        cursor.execute(
            f"PUT 'file://{path}' {folder} AUTO_COMPRESS = FALSE SOURCE_COMPRESSION = GZIP OVERWRITE = TRUE", _statement_params=params
        )
        path.unlink()
        cursor.execute(
            copy_rows_statement(self.tables[statement], folder, path.name), (*self.context, self.loaded_by), _statement_params=params
        )
        columns = [column[0] for column in cursor.description]
        if (shortfall := copy_shortfall(columns, cursor.fetchall(), path.name, records)) is not None:
            raise PartNotLoaded(shortfall)


def copy_shortfall(columns: Sequence[str], results: Sequence[Sequence[Any]], part: str, records: int) -> str | None:
    """What a COPY of one part failed to load, from its result (a row per file it loaded); None: all its records."""
    rows = [dict(zip((c.lower() for c in columns), row, strict=True)) for row in results]
    mine = [row for row in rows if str(row.get("file", "")).endswith(part)]
    if len(mine) == 1 and mine[0].get("status") == "LOADED" and int(mine[0].get("rows_loaded") or 0) == records:
        return None
    found = mine[0] if len(mine) == 1 else rows[0] if rows else {}
    return f"the COPY of staged part {part} did not load its {records} records: {found.get('status', 'no result')}, {found.get('rows_loaded', 0)} loaded"
