"""How often the gateway refreshes a dynamic table, from its TARGET_LAG."""

from __future__ import annotations

import pytest

from widf_local.gateway.dynamic_tables import DynamicTable, DynamicTables, target_lag_seconds
from widf_local.gateway.errors import SnowflakeError


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
