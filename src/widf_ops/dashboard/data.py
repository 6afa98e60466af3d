"""What the dashboard shows, read in one go: plain rows in, plain dataclasses out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from widf_ops.admin import SnowflakeNames, daily_summary, fetch, rejected_records

RECENT_LOADS = 15
RECENT_REJECTS = 10


@dataclass(frozen=True)
class DailyFigure:
    load_date: date
    action: str
    files_loaded: int
    total_events: int


@dataclass(frozen=True)
class Load:
    finished_at: datetime | None
    source_file: str
    file_id: str
    status: str
    rows_loaded: int
    rows_rejected: int
    reason: str | None
    load_id: str


@dataclass(frozen=True)
class Reject:
    rejected_at: datetime | None
    source_file: str
    record_index: int
    route: str
    reason: str


@dataclass(frozen=True)
class Queues:
    waiting: int
    in_flight: int
    dead_letters: int


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    where: str  # "local stack" or the account
    summary: list[DailyFigure] = field(default_factory=list)
    outcomes: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # status -> (files, rows loaded, rows rejected)
    loads: list[Load] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)  # the most recent ones
    rejects_total: int | None = None  # every row of REJECTED_RECORDS
    queues: Queues | None = None
    problems: list[str] = field(default_factory=list)  # what could not be read, said on the page instead of a blank


def read_summary(connection: Any, names: SnowflakeNames) -> list[DailyFigure]:
    _, rows = daily_summary(connection, names)
    return [DailyFigure(r[0], str(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in rows]


def read_outcomes(connection: Any, names: SnowflakeNames) -> dict[str, tuple[int, int, int]]:
    _, rows = fetch(
        connection,
        f"SELECT STATUS, COUNT(*), SUM(ROWS_LOADED), SUM(ROWS_REJECTED) FROM {names.database}.{names.schema}.LOAD_HISTORY GROUP BY STATUS",
    )
    return {str(r[0]): (int(r[1] or 0), int(r[2] or 0), int(r[3] or 0)) for r in rows}


def read_loads(connection: Any, names: SnowflakeNames, limit: int = RECENT_LOADS) -> list[Load]:
    _, rows = fetch(
        connection,
        "SELECT FINISHED_AT, SOURCE_FILE, FILE_ID, STATUS, ROWS_LOADED, ROWS_REJECTED, REASON, LOAD_ID "
        f"FROM {names.database}.{names.schema}.LOAD_HISTORY ORDER BY FINISHED_AT DESC LIMIT {int(limit)}",
    )
    return [Load(r[0], str(r[1]), str(r[2]), str(r[3]), int(r[4] or 0), int(r[5] or 0), r[6], str(r[7])) for r in rows]


def read_rejects(connection: Any, names: SnowflakeNames, limit: int = RECENT_REJECTS) -> list[Reject]:
    _, rows = rejected_records(connection, names, limit)
    return [Reject(r[0], str(r[1]), int(r[2] or 0), str(r[3]), str(r[4])) for r in rows]


def read_rejects_total(connection: Any, names: SnowflakeNames) -> int:
    _, rows = fetch(connection, f"SELECT COUNT(*) FROM {names.database}.{names.schema}.REJECTED_RECORDS")
    return int(rows[0][0])


def read_snapshot(connection: Any, names: SnowflakeNames, queues: Callable[[], Queues], where: str) -> Snapshot:
    """Everything at once; a part that fails is named in `problems` and the rest still shows."""
    parts: dict[str, Any] = {}
    problems = []
    readers = {
        "summary": lambda: read_summary(connection, names),
        "outcomes": lambda: read_outcomes(connection, names),
        "loads": lambda: read_loads(connection, names),
        "rejects": lambda: read_rejects(connection, names),
        "rejects_total": lambda: read_rejects_total(connection, names),
        "queues": queues,
    }
    for name, read in readers.items():
        try:
            parts[name] = read()
        except Exception as e:  # noqa: BLE001 - one unreadable part must not blank the whole page
            problems.append(f"{name}: {' '.join(str(e).split())[:300]}")
    return Snapshot(taken_at=datetime.now(UTC), where=where, problems=problems, **parts)
