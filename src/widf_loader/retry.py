"""The one retry policy: transient errors are retried with backoff, inside the
time the invocation has left; anything else fails at once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError
from snowflake.connector.errors import DatabaseError, InterfaceError, OperationalError

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_S3_CODES = {
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "Throttling",
    "ThrottlingException",
    "503",
    "500",
}
# Snowflake: lock wait timeout / too many lock waiters, and a session that expired under us.
TRANSIENT_SNOWFLAKE_ERRNOS = {625, 390112, 390114}


def is_transient(error: BaseException) -> bool:
    if isinstance(error, (OperationalError, InterfaceError, BotoConnectionError, ReadTimeoutError, ConnectionError, TimeoutError)):
        return True
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code") in TRANSIENT_S3_CODES
    if isinstance(error, DatabaseError):
        return error.errno in TRANSIENT_SNOWFLAKE_ERRNOS
    return False


def with_retries(
    attempt: Callable[[], T],
    *,
    seconds_left: Callable[[], float],
    reserve_seconds: float = 10.0,
    first_delay: float = 0.5,
    max_attempts: int = 5,
    on_retry: Callable[[BaseException], None] = lambda e: None,
) -> T:
    """Run attempt(); retry transient failures while at least reserve_seconds would remain."""
    delay = first_delay
    for number in range(1, max_attempts + 1):
        try:
            return attempt()
        except Exception as e:
            if number == max_attempts or not is_transient(e) or seconds_left() - delay < reserve_seconds:
                raise
            log.warning("transient failure (attempt %d of %d), retrying in %.1fs: %s", number, max_attempts, delay, e)
            on_retry(e)
            time.sleep(delay)  # backoff between attempts, not synchronisation
            delay = min(delay * 2, 8.0)
    raise AssertionError("unreachable")
