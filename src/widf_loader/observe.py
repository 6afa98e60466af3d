"""What the loader tells the people who run it, in the forms AWS and Snowflake read.

- Logs: one JSON object per line (Powertools Logger). Every line written while
  a file is being loaded carries that file's `file_id` and the attempt's
  `load_id`, so one CloudWatch Logs Insights filter finds a file's whole story.
- Metrics: CloudWatch embedded metric format (Powertools Metrics), printed once
  per invocation; CloudWatch turns them into metrics without any API call.
- Snowflake: a QUERY_TAG naming the file and the load id rides on every
  statement of a load (see `query_tag`), so QUERY_HISTORY links back here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial, wraps
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from widf_loader.events import FileRef, file_id
from widf_loader.outcomes import FINAL_STATUSES, LoadStatus
from widf_loader.pipeline import FileOutcome

SERVICE = "widf-loader"
NAMESPACE = "WidfLoader"
QUERY_TAG_MAX_CHARS = 2000  # Snowflake's limit for QUERY_TAG
FILE_KEYS = ("file_id", "load_id")

# The level comes from POWERTOOLS_LOG_LEVEL / LOG_LEVEL / Lambda's log-level control (INFO by default).
# ensure_ascii=False: a key with non-ASCII characters stays searchable as written.
logger = Logger(
    service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE,
    utc=True,
    json_serializer=partial(json.dumps, separators=(",", ":"), ensure_ascii=False, default=str),
)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE, service=SERVICE)


def route_library_logs() -> None:
    """The loader's modules and the connector log through the standard library: give them the same JSON handler
    (and so the same file_id / load_id keys). Call after they are imported."""
    logging.getLogger("widf_loader")
    copy_config_to_registered_loggers(source_logger=logger, include={"widf_loader"})
    logging.getLogger("snowflake")
    copy_config_to_registered_loggers(source_logger=logger, include={"snowflake"}, log_level=logging.WARNING)


@contextmanager
def file_context(ref: FileRef) -> Iterator[None]:
    """Every log line inside names this file; the keys go when the file is done."""
    logger.append_keys(file_id=file_id(ref))
    try:
        yield
    finally:
        logger.remove_keys(FILE_KEYS)


def attempt_started(load_id: str) -> None:
    """Each attempt at a file has its own load id (and LOAD_HISTORY row); later lines name the latest."""
    logger.append_keys(load_id=load_id)


def query_tag(ref: FileRef, load_id: str) -> str:
    """JSON, so QUERY_HISTORY can be filtered with `PARSE_JSON(QUERY_TAG):file_id`."""
    tag = {"app": SERVICE, "file_id": file_id(ref), "load_id": load_id}
    text = json.dumps(tag, separators=(",", ":"), ensure_ascii=False)
    if len(text) > QUERY_TAG_MAX_CHARS:  # an S3 key may be 1024 bytes; keep the tag valid JSON within the limit
        tag["file_id"] = tag["file_id"][: QUERY_TAG_MAX_CHARS - (len(text) - len(tag["file_id"])) - 3] + "..."
        text = json.dumps(tag, separators=(",", ":"), ensure_ascii=False)
    return text


def batch_query_tag(refs: Sequence[FileRef], load_ids: Sequence[str]) -> str:
    """A batch loaded together: every file's load id, and the file ids while they fit Snowflake's limit."""
    tag: dict[str, object] = {"app": SERVICE, "load_ids": list(load_ids), "file_ids": [file_id(ref) for ref in refs]}
    text = json.dumps(tag, separators=(",", ":"), ensure_ascii=False)
    if len(text) > QUERY_TAG_MAX_CHARS:
        tag["file_ids"] = len(refs)
        text = json.dumps(tag, separators=(",", ":"), ensure_ascii=False)
    return text


def latency_ms(event_time: str | None, now: datetime | None = None) -> float | None:
    """From the S3 event (the object's arrival) to now, in milliseconds; None when the event has no time."""
    if not event_time:
        return None
    try:
        arrived = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    except ValueError:
        return None
    if arrived.tzinfo is None:
        arrived = arrived.replace(tzinfo=UTC)
    return max(0.0, ((now or datetime.now(UTC)) - arrived).total_seconds() * 1000)


def file_settled(outcome: FileOutcome) -> None:
    """One log line and the metrics for a file's outcome (called after its commit)."""
    ref = outcome.ref
    logger.info(
        f"{outcome.status} {ref.uri}" + (f": {outcome.reason}" if outcome.reason else ""),
        extra={
            "status": outcome.status,
            "rows_loaded": outcome.rows_loaded,
            "rows_rejected": outcome.rows_rejected,
            "load_id": outcome.load_id,
        },
    )
    metric = {LoadStatus.LOADED: "FilesLoaded", LoadStatus.REJECTED: "FilesRejected"}.get(outcome.status, "FilesSkipped")
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    if outcome.status not in FINAL_STATUSES:
        return  # a duplicate or a vanished object moved nothing
    metrics.add_metric(name="RowsLoaded", unit=MetricUnit.Count, value=outcome.rows_loaded)
    metrics.add_metric(name="RowsRejected", unit=MetricUnit.Count, value=outcome.rows_rejected)
    if ref.size is not None:
        metrics.add_metric(name="BytesRead", unit=MetricUnit.Bytes, value=ref.size)
    if (latency := latency_ms(ref.event_time)) is not None:
        metrics.add_metric(name="LoadLatency", unit=MetricUnit.Milliseconds, value=latency)


def file_failed(ref: FileRef, error: BaseException) -> None:
    logger.error(
        f"{LoadStatus.FAILED} {ref.uri}: {' '.join(str(error).split())}",
        extra={"status": LoadStatus.FAILED, "error_type": type(error).__name__},
    )
    metrics.add_metric(name="FilesFailed", unit=MetricUnit.Count, value=1)


def instrumented(handler: Callable[[dict, Any], Any]) -> Callable[[dict, Any], Any]:
    """The Lambda handler with its request id on every log line and its metrics printed at the end, even when it raises."""

    @wraps(handler)
    def run(event: dict, context: Any) -> Any:
        logger.clear_state()  # a warm container must not carry the last invocation's keys
        if request_id := getattr(context, "aws_request_id", None):  # no context: invoked outside Lambda (a probe, a test)
            logger.append_keys(function_request_id=request_id)
        try:
            return handler(event, context)
        finally:
            if metrics.metric_set:  # an invocation that moved no file (an s3:TestEvent) prints no empty record
                metrics.flush_metrics()

    return run
