"""Every `--since` reads a duration the same way: a number and a unit, and a bare number is minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from widf_cli.aws import duration_seconds
from widf_ops.backfill import parse_since
from widf_ops.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        (" 30 ", timedelta(minutes=30)),
    ],
)
def test_a_duration_is_a_number_and_a_unit_and_a_bare_number_is_minutes(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5x", "1.5h", "m", "-3m", "2024-05-01", "1234567"])
def test_anything_else_is_no_duration(text):
    assert parse_duration(text) is None


def test_aws_logs_and_backfill_take_a_bare_number_alike():
    now = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
    assert duration_seconds("30") == duration_seconds("30m") == 1800
    assert parse_since("30", now) == parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("20240501", now) == datetime(2024, 5, 1, tzinfo=UTC)  # eight digits: an ISO date, not minutes
