"""AWS Lambda entry point: wiring only.

SQS batches answer with `batchItemFailures` so only failed messages return to
the queue; a direct S3 invocation raises, so Lambda retries it.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from widf_loader import events
from widf_loader.config import LoaderSettings
from widf_loader.pipeline import FileOutcome, load_file
from widf_loader.warehouse import Warehouse

log = logging.getLogger("widf_loader")
if not logging.getLogger().handlers:
    logging.basicConfig(format="%(levelname)s %(name)s %(message)s")
log.setLevel(logging.INFO)
logging.getLogger("snowflake.connector").setLevel(logging.WARNING)


class Runtime:
    """What a warm container keeps between invocations."""

    def __init__(self) -> None:
        self.settings = LoaderSettings.from_env()
        self.s3 = boto3.client("s3")
        self.warehouse = Warehouse(self.settings)

    def load(self, ref: events.FileRef) -> FileOutcome:
        try:
            outcome = load_file(ref, s3=self.s3, warehouse=self.warehouse, batch_rows=self.settings.batch_rows)
        except Exception as e:
            log.error("FAILED %s: %s", ref.uri, e)
            raise
        log.info("%s %s rows=%d load_id=%s %s", outcome.status, ref.uri, outcome.rows_loaded, outcome.load_id, outcome.reason or "")
        return outcome


@cache
def runtime() -> Runtime:
    return Runtime()


def load_sqs_message(record: SQSRecord) -> None:
    for ref in events.file_refs_from_sqs_body(record.body):
        runtime().load(ref)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if events.is_sqs_batch(event):
        return process_partial_response(
            event=event, record_handler=load_sqs_message, processor=BatchProcessor(event_type=EventType.SQS), context=context
        )
    outcomes = [runtime().load(ref) for ref in events.file_refs_from_s3_notification(event)]
    return {"files": len(outcomes), "rows_loaded": sum(o.rows_loaded for o in outcomes)}
