"""Transient errors are retried inside the time left; others fail at once."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from snowflake.connector.errors import DatabaseError, OperationalError, ProgrammingError

from widf_loader.retry import is_transient, with_retries


def flaky(failures: list[BaseException]):
    calls = []

    def attempt():
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "done"

    return attempt, calls


def test_transient_failures_are_retried_until_success():
    attempt, calls = flaky([OperationalError("connection reset"), OperationalError("again")])
    assert with_retries(attempt, seconds_left=lambda: 300, first_delay=0) == "done"
    assert len(calls) == 3


def test_a_permanent_error_is_not_retried():
    attempt, calls = flaky([ProgrammingError("SQL compilation error")])
    with pytest.raises(ProgrammingError):
        with_retries(attempt, seconds_left=lambda: 300, first_delay=0)
    assert len(calls) == 1


def test_no_retry_when_the_deadline_is_near():
    attempt, calls = flaky([OperationalError("connection reset")])
    with pytest.raises(OperationalError):
        with_retries(attempt, seconds_left=lambda: 5, reserve_seconds=10, first_delay=0)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ClientError({"Error": {"Code": "SlowDown"}}, "GetObject"), True),
        (ClientError({"Error": {"Code": "AccessDenied"}}, "GetObject"), False),
        (DatabaseError(msg="lock wait", errno=625), True),
        (DatabaseError(msg="no such table", errno=2003), False),
        (ValueError("bad data"), False),
    ],
)
def test_what_counts_as_transient(error, transient):
    assert is_transient(error) is transient
