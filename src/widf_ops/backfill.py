"""Backfill: objects that are already in S3 go through the function, exactly once.

The command cannot load them itself: Snowflake trusts only the function's IAM
role, and that is the point. So a backfill hands each object to the function
the way S3 would have - an S3 event notification on the function's queue - and
follows each file to its outcome in LOAD_HISTORY. Three choices keep it
exactly-once and resumable:

- the current *version* of every object is listed (ListObjectVersions), so a
  file's identity (`bucket/key#version`) is the one its S3 event would have had,
  and LOAD_HISTORY can tell which files are already settled;
- settled files are never sent; a file sent twice (a re-run while its message
  is still queued) is a duplicate delivery, which the ledger already absorbs;
- only keys the bucket's own notification rules send to the function's queue
  are backfilled: those are the files the function is meant to load.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from widf_loader.config import ConfigError
from widf_loader.events import FileRef, file_id
from widf_loader.outcomes import FINAL_STATUSES, LoadStatus
from widf_ops.durations import parse_duration
from widf_ops.queues import KeyRule, landing_rules, s3_notification

# A distinct event name: an S3 name would claim S3 sent it, and the loader
# accepts every `ObjectCreated:*` record, so no change to events.py is needed.
BACKFILL_EVENT_NAME = "ObjectCreated:Backfill"
SQS_BATCH_LIMIT = 10  # SendMessageBatch takes at most ten entries
LEDGER_CHUNK = 500  # FILE_IDs per ledger query
_BUCKET = re.compile(r"(?=.{3,63}$)[a-z0-9][a-z0-9.-]*[a-z0-9]")


class BackfillError(ConfigError):
    """A backfill cannot start as asked; the message says what to do."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_s3_url(text: str) -> S3Location:
    """`s3://bucket/prefix` (the prefix may be empty)."""
    if not text.startswith("s3://"):
        raise BackfillError(f"'{text}' is not an S3 URL: write s3://BUCKET/PREFIX, e.g. s3://my-landing-bucket/incoming/2024/.")
    bucket, _, prefix = text.removeprefix("s3://").partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise BackfillError(f"'{bucket}' in {text} is not an S3 bucket name (3-63 lower-case letters, digits, dots and hyphens).")
    return S3Location(bucket, prefix)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), or a duration back from now (see durations)."""
    now = now or datetime.now(UTC)
    if (back := parse_duration(text)) is not None:
        return now - back
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BackfillError(
            f"--since '{text}' is neither a date (2024-05-01, 2024-05-01T12:00:00+02:00) nor a duration (30m, 12h, 7d; a bare number is minutes)."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- which keys the function loads: the bucket's notification rules ------------


def read_landing_rules(s3: Any, bucket: str, queue_arn: str) -> list[KeyRule]:
    rules = landing_rules(s3.get_bucket_notification_configuration(Bucket=bucket), queue_arn)
    if not rules:
        raise BackfillError(
            f"s3://{bucket} sends no ObjectCreated notifications to the function's queue, so which keys the function loads "
            "is unknown: run `widf-loader aws deploy` to restore them, then backfill."
        )
    return rules


# -- what exists, and what is left to load --------------------------------------


def current_objects(s3: Any, location: S3Location) -> Iterator[dict[str, Any]]:
    """The current version of every object under the prefix (a deleted key's delete marker hides it)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=location.bucket, Prefix=location.prefix):
        for version in page.get("Versions", []):
            if version.get("IsLatest"):
                yield version


def file_ref(bucket: str, version: Mapping[str, Any]) -> FileRef:
    version_id = version.get("VersionId")
    modified: datetime = version["LastModified"]
    return FileRef(
        bucket=bucket,
        key=version["Key"],
        # An unversioned bucket lists "null"; its S3 events carry no version, so neither does the ref.
        version_id=None if version_id in (None, "null") else version_id,
        etag=str(version.get("ETag", "")).strip('"') or None,
        size=int(version.get("Size", 0)),
        event_time=modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{modified.microsecond // 1000:03d}Z",
        event_name=BACKFILL_EVENT_NAME,
    )


@dataclass
class Inventory:
    """What is under the prefix, sorted into what will be sent and why the rest will not."""

    location: S3Location
    listed: int = 0
    not_landing: int = 0  # keys the notification rules never send to the function
    older: int = 0  # last modified before --since
    settled: list[FileRef] = field(default_factory=list)  # with a FINAL_STATUSES row already
    to_send: list[FileRef] = field(default_factory=list)
    earlier_attempts: Counter = field(default_factory=Counter)  # (file id, status) -> rows already in LOAD_HISTORY

    @property
    def bytes_to_send(self) -> int:
        return sum(ref.size or 0 for ref in self.to_send)

    @property
    def settled_by_status(self) -> Counter:
        """Files already settled, by their final status."""
        return Counter(status for (_, status), rows in self.earlier_attempts.items() if rows and status in FINAL_STATUSES)


def take_inventory(s3: Any, location: S3Location, rules: Sequence[KeyRule], since: datetime | None, ledger: Ledger) -> Inventory:
    inventory = Inventory(location)
    candidates = []
    for version in current_objects(s3, location):
        inventory.listed += 1
        if not any(rule.matches(version["Key"]) for rule in rules):
            inventory.not_landing += 1
        elif since is not None and version["LastModified"] < since:
            inventory.older += 1
        else:
            candidates.append(file_ref(location.bucket, version))
    inventory.earlier_attempts = ledger.attempts([file_id(ref) for ref in candidates])
    for ref in candidates:
        settled = any(inventory.earlier_attempts[(file_id(ref), status)] for status in FINAL_STATUSES)
        (inventory.settled if settled else inventory.to_send).append(ref)
    return inventory


# -- LOAD_HISTORY, read by the administrator ------------------------------------


@dataclass(frozen=True)
class LedgerRow:
    file_id: str
    status: LoadStatus
    rows_loaded: int
    reason: str | None


class Ledger:
    """LOAD_HISTORY as the backfill reads it: by FILE_ID, in chunks, values bound."""

    def __init__(self, connection: Any, table: str):
        self.connection = connection
        self.table = table  # a validated, qualified name: database.schema.table

    def rows(self, file_ids: Sequence[str]) -> Iterator[LedgerRow]:
        for start in range(0, len(file_ids), LEDGER_CHUNK):
            chunk = file_ids[start : start + LEDGER_CHUNK]
            placeholders = ", ".join(["%s"] * len(chunk))
            sql = f"SELECT FILE_ID, STATUS, ROWS_LOADED, REASON FROM {self.table} WHERE FILE_ID IN ({placeholders}) ORDER BY FINISHED_AT"
            with self.connection.cursor() as cursor:
                for row in cursor.execute(sql, tuple(chunk)).fetchall():
                    yield LedgerRow(row[0], LoadStatus(row[1]), int(row[2] or 0), row[3])

    def attempts(self, file_ids: Sequence[str]) -> Counter:
        return Counter((row.file_id, row.status) for row in self.rows(file_ids))


# -- handing files to the function ---------------------------------------------


def notification_body(ref: FileRef, principal: str) -> str:
    """The S3 event notification S3 would have sent for this object version (see file_ref).

    The sequencer and source IP are left out: only S3 can assign a sequencer,
    and no request to attribute remains. The principal names who ran the backfill.
    """
    return s3_notification(replace(ref, event_name=BACKFILL_EVENT_NAME, sequencer=None, source_ip=None, principal=principal))


def send_to_queue(sqs: Any, queue_url: str, refs: Sequence[FileRef], principal: str) -> None:
    for start in range(0, len(refs), SQS_BATCH_LIMIT):
        batch = refs[start : start + SQS_BATCH_LIMIT]
        entries = [{"Id": str(i), "MessageBody": notification_body(ref, principal)} for i, ref in enumerate(batch)]
        if failed := sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed"):
            first = failed[0]
            raise BackfillError(
                f"The queue refused {len(failed)} message(s), first {batch[int(first['Id'])].uri}: {first.get('Message', first.get('Code'))}."
            )


# -- following each file to its outcome ------------------------------------------


class Unfinished(StrEnum):
    """A backfilled file with no outcome in LOAD_HISTORY when the backfill stopped following it."""

    PENDING = "PENDING"  # sent, and no outcome in time
    NOT_SENT = "NOT_SENT"


@dataclass(frozen=True)
class Outcome:
    ref: FileRef
    status: LoadStatus | Unfinished  # a final status, SKIPPED, or FAILED once its retries are used up
    rows_loaded: int = 0
    reason: str | None = None


def outcome_of(ref: FileRef, rows: Iterable[LedgerRow], earlier: Counter, failures_until_dead: int | None) -> Outcome | None:
    """The file's outcome from its new LOAD_HISTORY rows; None while it may still load."""
    new: Counter = Counter()
    last_failure = None
    for row in rows:
        new[row.status] += 1
        if row.status in FINAL_STATUSES:
            return Outcome(ref, row.status, row.rows_loaded, row.reason)
        if row.status == LoadStatus.FAILED:
            last_failure = row.reason
    fid = file_id(ref)
    if new[LoadStatus.SKIPPED] > earlier[(fid, LoadStatus.SKIPPED)]:
        return Outcome(ref, LoadStatus.SKIPPED, reason="the object version no longer exists")
    failures = new[LoadStatus.FAILED] - earlier[(fid, LoadStatus.FAILED)]
    if failures_until_dead is not None and failures >= failures_until_dead:
        return Outcome(ref, LoadStatus.FAILED, reason=last_failure)
    return None


@dataclass
class Follow:
    """How a backfill sends and waits."""

    concurrency: int = 100  # files sent and not yet finished, at most
    stall_seconds: float = 600  # give up waiting when no file finished for this long
    poll_seconds: float = 1.0
    failures_until_dead: int | None = None  # the queue's maxReceiveCount: FAILED this often, the message is in the DLQ


def run_backfill(
    inventory: Inventory,
    send: Callable[[Sequence[FileRef]], None],
    ledger: Ledger,
    follow: Follow,
    on_sent: Callable[[Sequence[FileRef]], None] = lambda refs: None,
    on_outcome: Callable[[Outcome], None] = lambda outcome: None,
) -> list[Outcome]:
    """Send the files, at most `concurrency` unfinished at a time, and collect each one's outcome."""
    waiting = list(reversed(inventory.to_send))
    in_flight: dict[str, FileRef] = {}
    outcomes: list[Outcome] = []
    last_progress = time.monotonic()
    while waiting or in_flight:
        if room := follow.concurrency - len(in_flight):
            batch = [waiting.pop() for _ in range(min(room, len(waiting)))]
            if batch:
                send(batch)
                in_flight.update((file_id(ref), ref) for ref in batch)
                on_sent(batch)
        rows: dict[str, list[LedgerRow]] = {}
        for row in ledger.rows(list(in_flight)):
            rows.setdefault(row.file_id, []).append(row)
        finished = [
            o
            for fid, ref in in_flight.items()
            if (o := outcome_of(ref, rows.get(fid, []), inventory.earlier_attempts, follow.failures_until_dead))
        ]
        for outcome in finished:
            del in_flight[file_id(outcome.ref)]
            outcomes.append(outcome)
            on_outcome(outcome)
        if finished:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > follow.stall_seconds:
            break
        if in_flight and not finished:
            time.sleep(follow.poll_seconds)  # LOAD_HISTORY cannot push; poll it, as `aws logs --follow` polls
    unfinished = [*in_flight.values(), *reversed(waiting)]
    for ref in unfinished:
        outcomes.append(Outcome(ref, Unfinished.PENDING if file_id(ref) in in_flight else Unfinished.NOT_SENT))
    return outcomes
