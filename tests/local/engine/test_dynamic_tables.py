"""How often the gateway refreshes a dynamic table, from its TARGET_LAG."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlglot import exp

from widf_local.gateway.dynamic_tables import DynamicTable, DynamicTables, target_lag_seconds
from widf_local.gateway.errors import SnowflakeError
from widf_local.gateway.grants import parse


def test_refreshes_come_often_enough_to_honour_the_lag():
    registry = DynamicTables(engine=None)  # type: ignore[arg-type]  # the schedule alone: no refresh runs
    capped = DynamicTables(engine=None, refresh_cap_seconds=2)  # type: ignore[arg-type]  # as above

    def table(lag: str) -> DynamicTable:
        return DynamicTable("D.S.T", "SELECT 1", "", lag, target_lag_seconds(f"'{lag}'"), "WH", "SYSADMIN")

    assert registry.interval_seconds(table("1 minute")) == 30
    assert registry.interval_seconds(table("5 seconds")) == 2.5
    assert capped.interval_seconds(table("1 minute")) == 2
    assert registry.interval_seconds(table("DOWNSTREAM")) is None
    assert target_lag_seconds("'2 hours'") == 7200
    with pytest.raises(SnowflakeError, match="TARGET_LAG"):
        target_lag_seconds("'soon'")


class RecordingEngine:
    """The engine a refresh runs its statements in, reduced to what the registry asks of it."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def run(self, statements: list[str], *, atomic: bool = False) -> list[tuple]:
        self.statements += statements
        return []

    def count_rows(self, table: str) -> int:
        return 1

    def exists(self, on) -> bool:
        return False


def created(registry: DynamicTables, name: str = "D.S.TOTALS", lag: str = "5 seconds") -> str:
    create = parse(f"CREATE DYNAMIC TABLE {name} TARGET_LAG = '{lag}' WAREHOUSE = WH AS SELECT 1 AS N")
    assert isinstance(create, exp.Create)
    registry.create(create, "CREATE ...", database="D", schema="S", role="SYSADMIN")
    return name


def history(registry: DynamicTables, arguments: str = "", database: str | None = "D", schema: str | None = "S") -> list[dict]:
    return registry.refresh_history(arguments, database, schema, visible=lambda name: True).to_pylist()


def test_every_refresh_is_in_the_refresh_history_with_its_trigger_and_completion_target():
    registry = DynamicTables(RecordingEngine())
    name = created(registry)
    registry.refresh(name, trigger="SCHEDULED")
    registry.refresh(name)  # ALTER DYNAMIC TABLE … REFRESH
    creation, scheduled, manual = reversed(history(registry))  # newest first, as RESULT_LIMIT keeps the latest
    assert [r["REFRESH_TRIGGER"] for r in (creation, scheduled, manual)] == ["CREATION", "SCHEDULED", "MANUAL"]
    assert {r["STATE"] for r in (creation, scheduled, manual)} == {"SUCCEEDED"}
    assert (creation["QUALIFIED_NAME"], creation["DATABASE_NAME"], creation["SCHEMA_NAME"], creation["NAME"]) == (name, "D", "S", "TOTALS")
    assert creation["COMPLETION_TARGET"] is None
    assert scheduled["COMPLETION_TARGET"] == creation["DATA_TIMESTAMP"] + timedelta(seconds=5)
    assert manual["DATA_TIMESTAMP"] >= scheduled["REFRESH_END_TIME"] >= scheduled["DATA_TIMESTAMP"]


def test_the_refresh_history_takes_snowflakes_arguments_and_refuses_others():
    registry = DynamicTables(RecordingEngine())
    created(registry, "D.S.ONE")
    created(registry, "D.OTHER.TWO")
    registry.refresh("D.S.ONE", trigger="SCHEDULED")
    assert [r["NAME"] for r in history(registry, "NAME => 'one'")] == ["ONE", "ONE"]  # unqualified, case-insensitive
    assert [r["NAME"] for r in history(registry, "NAME_PREFIX => 'D.OTHER'")] == ["TWO"]
    assert len(history(registry, "RESULT_LIMIT => 2")) == 2
    assert history(registry, "ERROR_ONLY => TRUE") == []
    with pytest.raises(SnowflakeError, match="DATA_TIMESTAMP_START"):
        history(registry, "DATA_TIMESTAMP_START => '2026-01-01'")
