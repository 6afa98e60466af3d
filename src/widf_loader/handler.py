"""AWS Lambda entry point: wiring only.

An SQS batch's small files load together (widf_loader.together), the rest one by one;
the batch answers with `batchItemFailures`, so only the messages of failed files return
to the queue. A direct invocation (S3 or EventBridge) raises, so Lambda retries it.
"""

from __future__ import annotations

import gc
import os

from widf_loader.config import LoaderSettings, refuse_secrets

# First of all, before the heavy imports: a function given a Snowflake secret or a connection of its own fails
# its init here, with one line naming what it was given and why it is refused; Lambda reports the exception as
# the init error, and no event is handled.
refuse_secrets(os.environ, files=True)

# A cold start's imports (the Snowflake connector, botocore, Powertools) make tens of thousands of objects
# that live as long as the container and free almost nothing, yet the collector would walk them over and
# over while they load and on every full collection after. So: no collection while they load, then
# gc.freeze() moves them out of the collector's sight. The cold start this is part of is measured by
# `make bench` (docs/performance.md).
gc.disable()

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from widf_loader import events, observe
from widf_loader.pipeline import FileOutcome, Pipeline
from widf_loader.pipeline_config import load_pipeline_config
from widf_loader.retry import is_transient, with_retries
from widf_loader.together import load_together
from widf_loader.warehouse import Warehouse

log = logging.getLogger(__name__)
observe.route_library_logs()
gc.freeze()
gc.enable()


class Runtime:
    """What a warm container keeps between invocations: settings, clients, one Snowflake connection."""

    def __init__(self) -> None:
        self.settings = LoaderSettings.from_env()
        self.pipeline = Pipeline(load_pipeline_config())  # a bad configuration stops the container here
        self.warehouse = Warehouse(self.settings)
        # The Snowflake login waits on the network; botocore's import and the S3 client's setup are the
        # cold start's largest piece of Python work. Done side by side, the login costs a cold start
        # nothing (`make bench`: cold_start_s) - hence botocore is imported here, not with the modules above.
        # botocore's own session, not boto3's: the same client, without boto3's import of s3transfer.
        self.warehouse.connect_ahead()
        gc.disable()  # botocore's long-lived objects too, as the imports' above
        try:
            import botocore.session
            from botocore.config import Config

            config = Config(retries={"mode": "standard", "max_attempts": 5})
            self.s3 = botocore.session.get_session().create_client("s3", config=config)
        finally:
            gc.freeze()
            gc.enable()

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

    def load_batch(self, files: Sequence[tuple[str, events.FileRef]], seconds_left: Callable[[], float]) -> dict[str, Exception]:
        """Every (message id, file) of an SQS batch loaded once; the error of each message with a failed file."""
        failures: dict[str, Exception] = {}
        settled = self.load_together([ref for _, ref in files]) if len(files) > 1 else {}
        for position, (message_id, ref) in enumerate(files):
            if (outcome := settled.get(position)) is not None:
                with observe.file_context(ref):
                    observe.attempt_started(outcome.load_id)
                    observe.file_settled(outcome)
                continue
            try:
                self.load(ref, seconds_left)
            except Exception as e:  # noqa: BLE001 - whatever failed the file fails its message alone
                failures.setdefault(message_id, e)
        return failures

    def load_together(self, refs: Sequence[events.FileRef]) -> dict[int, FileOutcome]:
        """The outcomes of the files loaded together, by position; any failure leaves them all to load one by one."""
        load_ids = [str(uuid.uuid4()) for _ in refs]
        try:
            with self.warehouse.tagged(observe.batch_query_tag(refs, load_ids)):
                return load_together(self.pipeline, refs, load_ids, s3=self.s3, warehouse=self.warehouse, settings=self.settings).outcomes
        except Exception as e:  # noqa: BLE001 - rolled back, nothing of the batch kept: one by one, each file meets its own error
            log.warning("loading the batch's small files together failed, loading them one by one: %s", e)
            if is_transient(e):
                self.warehouse.reset()
            return {}


@cache
def runtime() -> Runtime:
    return Runtime()


def files_of_messages(messages: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[str, events.FileRef]], dict[str, Exception]]:
    """The (message id, file) pairs an SQS batch names, and the error of each message that names none readably."""
    files: list[tuple[str, events.FileRef]] = []
    failures: dict[str, Exception] = {}
    for message in messages:
        try:
            files += [(message["messageId"], ref) for ref in events.file_refs_from_sqs_body(message["body"])]
        except Exception as e:  # noqa: BLE001 - a message that names no file readably fails alone
            failures[message["messageId"]] = e
    return files, failures


@observe.instrumented
def lambda_handler(event: dict[str, Any], context: Any) -> Mapping[str, object]:
    def seconds_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    if events.is_sqs_batch(event):
        files, failures = files_of_messages(event["Records"])
        if files:  # an s3:TestEvent alone needs no settings, nor a connection
            failures |= runtime().load_batch(files, seconds_left)

        def settled(record: SQSRecord) -> None:
            if (error := failures.get(record.message_id)) is not None:
                raise error

        return process_partial_response(
            event=event, record_handler=settled, processor=BatchProcessor(event_type=EventType.SQS), context=context
        )
    outcomes = [runtime().load(ref, seconds_left) for ref in events.file_refs_from_event(event)]
    return {"files": len(outcomes), "rows_loaded": sum(o.rows_loaded for o in outcomes)}
