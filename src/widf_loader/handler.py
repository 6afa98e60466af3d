"""AWS Lambda entry point: wiring only.

SQS batches answer with `batchItemFailures`, so only failed messages return to
the queue; a direct invocation (S3 or EventBridge) raises, so Lambda retries it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.config import Config

from widf_loader import events
from widf_loader.config import LoaderSettings
from widf_loader.pipeline import FileOutcome, Pipeline
from widf_loader.pipeline_config import load_pipeline_config
from widf_loader.retry import with_retries
from widf_loader.warehouse import Warehouse

log = logging.getLogger("widf_loader")
if not logging.getLogger().handlers:
    logging.basicConfig(format="%(levelname)s %(name)s %(message)s")
log.setLevel(logging.INFO)
logging.getLogger("snowflake.connector").setLevel(logging.WARNING)


class Runtime:
    """What a warm container keeps between invocations: settings, clients, one Snowflake connection."""

    def __init__(self) -> None:
        self.settings = LoaderSettings.from_env()
        self.pipeline = Pipeline(load_pipeline_config())  # a bad configuration stops the container here
        self.s3 = boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))
        self.warehouse = Warehouse(self.settings)

    def load(self, ref: events.FileRef, seconds_left: Callable[[], float]) -> FileOutcome:
        try:
            outcome = with_retries(
                lambda: self.pipeline.load_file(ref, s3=self.s3, warehouse=self.warehouse, settings=self.settings),
                seconds_left=seconds_left,
                on_retry=lambda error: self.warehouse.reset(),
            )
        except Exception as e:
            log.error("FAILED %s: %s", ref.uri, " ".join(str(e).split()))
            raise
        log.info(
            "%s %s rows=%d rejected=%d load_id=%s%s",
            outcome.status, ref.uri, outcome.rows_loaded, outcome.rows_rejected, outcome.load_id,
            f" reason={outcome.reason}" if outcome.reason else "",
        )  # fmt: skip
        return outcome


@cache
def runtime() -> Runtime:
    return Runtime()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    def seconds_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    if events.is_sqs_batch(event):

        def load_message(record: SQSRecord) -> None:
            for ref in events.file_refs_from_sqs_body(record.body):
                runtime().load(ref, seconds_left)

        return process_partial_response(event=event, record_handler=load_message, processor=BatchProcessor(event_type=EventType.SQS), context=context)
    outcomes = [runtime().load(ref, seconds_left) for ref in events.file_refs_from_event(event)]
    return {"files": len(outcomes), "rows_loaded": sum(o.rows_loaded for o in outcomes)}
