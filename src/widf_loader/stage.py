"""Large files through a stage: a file's validated, routed and enriched records go into gzip NDJSON parts,
PUT to the service user's own stage (`@~`), then one COPY INTO per target table, in the file's one
transaction, before its claim.

Why: by the bound path a large file is one INSERT per bound array (7 MB of records), some 200 statements a
GB (`make bench`: statements_per_gb), each a round trip to a running warehouse; COPY is Snowflake's bulk
path, and parts follow its file-sizing guidance ("Preparing to load data": roughly 100-250 MB compressed).
The user stage needs no object, grant or setup: the service user may always write its own.

Exactly once, as before: the claim comes last and commits with the COPYs. An attempt stages under a folder
of its own (its load id) and copies only that folder, so a crash after a PUT, or during a COPY, leaves
files nothing loads and no rows; the next attempt stages its own parts and loads the file whole. An
attempt removes its folder when it ends, committed or not; a killed one leaves it behind.
"""

from __future__ import annotations

import gzip
import logging
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
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


class StagedLoad:
    """One attempt's parts: written as the batches arrive (in the warehouse's sender thread), PUT as each
    fills, and copied by finish(); cleanup() removes them, staged and local."""

    def __init__(self, load_id: str, tables: Mapping[str, str], part_bytes: int):
        if not _LOAD_ID.fullmatch(load_id):
            raise ValueError(f"a staged load's folder is named by its load id, a UUID: not {load_id!r}")
        self.folder = f"{STAGE_ROOT}/{load_id}/"
        self.tables = dict(tables)  # insert statement -> its table
        self.part_bytes = part_bytes
        self.directory = Path(tempfile.mkdtemp(prefix="widf-stage-"))  # Lambda's /tmp
        self.names = {statement: f"t{i}" for i, statement in enumerate(self.tables)}  # a table's parts: folder and files
        self.context: tuple = ()  # the file's event context, as its batches carry it
        self.parts: dict[str, int] = {}  # statement -> parts started
        self._open: dict[str, tuple[IO[bytes], gzip.GzipFile, Path]] = {}

    def takes(self, statement: str) -> bool:
        return statement in self.tables

    def write(self, cursor: Any, statement: str, rows: Sequence[Sequence[Any]], params: Mapping[str, str] | None) -> None:
        """A target table's batch, `[(*context, RecordLines)]`, appended to its open part; a full part is PUT."""
        [(*context, lines)] = rows
        assert isinstance(lines, RecordLines)
        self.context = tuple(context)
        raw, part, _ = self._open.get(statement) or self._start(statement)
        part.write(lines.ndjson)
        if raw.tell() >= self.part_bytes:
            self._put(cursor, statement, params)

    def finish(self, cursor: Any, loaded_by: str, params: Mapping[str, str] | None) -> None:
        """PUT the parts still open, then COPY each table's folder (inside the caller's transaction)."""
        for statement in list(self._open):
            self._put(cursor, statement, params)
        for statement in self.parts:
            sql = copy_rows_statement(self.tables[statement], self.folder_of(statement))
            cursor.execute(sql, (*self.context, loaded_by), _statement_params=params)

    def cleanup(self, cursor: Any, params: Mapping[str, str] | None) -> None:
        """Best effort: the staged folder and the local parts; a staged file left behind loads nowhere."""
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
        path = self.directory / f"{self.names[statement]}-part-{number:05d}.ndjson.gz"
        raw = path.open("wb")
        opened = self._open[statement] = (raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0), path)
        return opened

    def _put(self, cursor: Any, statement: str, params: Mapping[str, str] | None) -> None:
        raw, part, path = self._open.pop(statement)
        part.close()
        raw.close()
        cursor.execute(
            f"PUT 'file://{path}' {self.folder_of(statement)} AUTO_COMPRESS = FALSE SOURCE_COMPRESSION = GZIP OVERWRITE = TRUE",
            _statement_params=params,
        )
        path.unlink()
