"""AWS Lambda entry point: wiring only.

SQS batches answer with `batchItemFailures`, so only failed messages return to
the queue; a direct invocation (S3 or EventBridge) raises, so Lambda retries it.
"""

from __future__ import annotations

import gc
import os

from widf_loader.config import LoaderSettings, refuse_secrets

# First of all, before the heavy imports: a function given a Snowflake secret or a connection of its own fails
# its init here, with one line naming what it was given and why it is refused; Lambda reports the exception as
# the init error, and no event is handled.
refuse_secrets(os.environ, files=True)

# A cold start's imports (the Snowflake connector, boto3, Powertools) make tens of thousands of objects
# that live as long as the container and free almost nothing, yet the collector would walk them over and
# over while they load and on every full collection after. So: no collection while they load, then
# gc.freeze() moves them out of the collector's sight. The cold start this is part of is measured by
# `make bench` (docs/performance.md).
gc.disable()

import uuid
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.config import Config

from widf_loader import events, observe
from widf_loader.pipeline import FileOutcome, Pipeline
from widf_loader.pipeline_config import load_pipeline_config
from widf_loader.retry import with_retries
from widf_loader.warehouse import Warehouse

observe.route_library_logs()
gc.freeze()
gc.enable()


class Runtime:
    """What a warm container keeps between invocations: settings, clients, one Snowflake connection."""

    def __init__(self) -> None:
        self.settings = LoaderSettings.from_env()
        self.pipeline = Pipeline(load_pipeline_config())  # a bad configuration stops the container here
        self.s3 = boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))
        self.warehouse = Warehouse(self.settings)

    def load(self, ref: events.FileRef, seconds_left: Callable[[], float]) -> FileOutcome:
        with observe.file_context(ref):
            try:
                outcome = with_retries(lambda: self.attempt(ref), seconds_left=seconds_left, on_retry=lambda error: self.warehouse.reset())
            except Exception as e:
                observe.file_failed(ref, e)
                raise
            observe.file_settled(outcome)
            return outcome

    def attempt(self, ref: events.FileRef) -> FileOutcome:
        load_id = str(uuid.uuid4())
        observe.attempt_started(load_id)
        with self.warehouse.tagged(observe.query_tag(ref, load_id)):
            return self.pipeline.load_file(ref, s3=self.s3, warehouse=self.warehouse, settings=self.settings, load_id=load_id)


@cache
def runtime() -> Runtime:
    return Runtime()


@observe.instrumented
def lambda_handler(event: dict[str, Any], context: Any) -> Mapping[str, object]:
    def seconds_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    if events.is_sqs_batch(event):

        def load_message(record: SQSRecord) -> None:
            for ref in events.file_refs_from_sqs_body(record.body):
                runtime().load(ref, seconds_left)

        return process_partial_response(
            event=event, record_handler=load_message, processor=BatchProcessor(event_type=EventType.SQS), context=context
        )
    outcomes = [runtime().load(ref, seconds_left) for ref in events.file_refs_from_event(event)]
    return {"files": len(outcomes), "rows_loaded": sum(o.rows_loaded for o in outcomes)}
