"""What one attempt at one file comes to: a status, stored as LOAD_HISTORY.STATUS (so the values are the
column's strings, and stay so)."""

from __future__ import annotations

from enum import StrEnum


class LoadStatus(StrEnum):
    LOADED = "LOADED"  # the file's rows are in: the file is settled
    REJECTED = "REJECTED"  # a gate or an unreadable file: settled, with nothing loaded
    SKIPPED_DUPLICATE = "SKIPPED_DUPLICATE"  # another delivery of the file settled it
    SKIPPED = "SKIPPED"  # the object version no longer exists
    FAILED = "FAILED"  # an error: the event is retried


# Outcomes that settle a file: a later delivery of it is a duplicate.
FINAL_STATUSES = (LoadStatus.LOADED, LoadStatus.REJECTED)
