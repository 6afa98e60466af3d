"""S3 notifications, direct or wrapped in SQS (and SNS), and EventBridge's "Object Created" become FileRefs
with decoded keys. The events are AWS's documented examples (tests/events/); the builders below vary them
for what the examples do not show."""

from __future__ import annotations

import copy
import json

import pytest

from helpers import aws_event
from widf_loader.events import (
    FileRef,
    MalformedEvent,
    file_refs_from_event,
    file_refs_from_s3_notification,
    file_refs_from_sqs_body,
    is_sqs_batch,
)

S3_PUT = aws_event("s3_put")
EVENTBRIDGE = aws_event("eventbridge_object_created")
# What S3_PUT names, however it arrives: its key is URL-encoded, `test%2Fkey`.
DOCUMENTED_REF = FileRef(
    bucket="amzn-s3-demo-bucket",
    key="test/key",
    etag="0123456789abcdef0123456789abcdef",  # pragma: allowlist secret (the documented etag)
    size=1024,
    sequencer="0A1B2C3D4E5F678901",  # pragma: allowlist secret (the documented sequencer)
    event_time="1970-01-01T00:00:00.000Z",
    event_name="ObjectCreated:Put",
    principal="EXAMPLE",
    source_ip="127.0.0.1",
)


def s3_record(key: str, event_name: str = "ObjectCreated:Put", **obj) -> dict:
    """The documented record of s3_put.json, for another (encoded) key, event or object fields."""
    record = copy.deepcopy(S3_PUT["Records"][0])
    record["eventName"] = event_name
    record["s3"]["object"].update(key=key, **obj)
    return record


def eventbridge(**obj) -> dict:
    """The documented "Object Created" event, with other object fields."""
    event = copy.deepcopy(EVENTBRIDGE)
    event["detail"]["object"].update(obj)
    return event


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("incoming/plain.json", "incoming/plain.json"),
        ("incoming/with+spaces+here.json", "incoming/with spaces here.json"),
        ("incoming/a%2Bplus.json", "incoming/a+plus.json"),
        ("incoming/caf%C3%A9+%E2%9C%93.json", "incoming/café ✓.json"),
        ("incoming/dt%3D2026-11-27/part%3D1.json", "incoming/dt=2026-11-27/part=1.json"),
        ("incoming/100%25.ndjson", "incoming/100%.ndjson"),
    ],
)
def test_keys_are_url_decoded_once(encoded, decoded):
    [ref] = file_refs_from_s3_notification({"Records": [s3_record(encoded)]})
    assert ref.key == decoded
    assert ref.uri == f"s3://amzn-s3-demo-bucket/{decoded}"


def test_event_context_is_captured():
    assert file_refs_from_s3_notification(S3_PUT) == [DOCUMENTED_REF]
    [versioned] = file_refs_from_s3_notification({"Records": [s3_record("incoming/a.json", versionId="v1")]})
    assert versioned.version_id == "v1"  # a versioned bucket's notification names the version


def test_several_records_in_one_notification_all_count():
    refs = file_refs_from_s3_notification({"Records": [s3_record("incoming/a.json"), s3_record("incoming/b.json")]})
    assert [r.key for r in refs] == ["incoming/a.json", "incoming/b.json"]


def test_test_event_and_removals_name_no_files():
    assert file_refs_from_sqs_body(json.dumps(aws_event("s3_test_event"))) == []
    assert file_refs_from_s3_notification({"Records": [s3_record("incoming/a.json", "ObjectRemoved:Delete")]}) == []


def test_sqs_wrapped_notification():
    [message] = aws_event("sqs_s3")["Records"]
    assert json.loads(message["body"]) == S3_PUT  # the same notification, as the message's body
    assert file_refs_from_sqs_body(message["body"]) == [DOCUMENTED_REF]


@pytest.mark.parametrize(
    "body", ["not json", "[1, 2]", json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}), json.dumps({"hello": 1})]
)
def test_malformed_bodies_get_a_clear_error(body):
    with pytest.raises(MalformedEvent):
        file_refs_from_sqs_body(body)


def test_sqs_batches_are_told_apart_from_direct_events():
    assert is_sqs_batch(aws_event("sqs_s3")) and is_sqs_batch(aws_event("sqs_sns_s3"))
    assert not is_sqs_batch(S3_PUT) and not is_sqs_batch(EVENTBRIDGE)


def test_sns_envelope_inside_sqs_is_unwrapped():
    [message] = aws_event("sqs_sns_s3")["Records"]
    envelope = json.loads(message["body"])
    assert envelope["Type"] == "Notification" and json.loads(envelope["Message"]) == S3_PUT
    assert file_refs_from_sqs_body(message["body"]) == [DOCUMENTED_REF]


def test_eventbridge_object_created_keeps_its_key_as_is():
    [ref] = file_refs_from_event(EVENTBRIDGE)
    assert ref == FileRef(
        bucket="amzn-s3-demo-bucket1",
        key="example-key",
        version_id="IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        etag="b1946ac92492d2347c6235b4d2611184",  # pragma: allowlist secret (the documented etag)
        size=5,
        sequencer="617f08299329d189",  # pragma: allowlist secret (the documented sequencer)
        event_time="2021-11-12T00:00:00Z",
        event_name="ObjectCreated:PutObject",
        principal="123456789012",
        source_ip="1.2.3.4",
    )
    assert file_refs_from_sqs_body(json.dumps(EVENTBRIDGE)) == [ref]  # S3 -> EventBridge -> SQS
    [odd] = file_refs_from_event(eventbridge(key="incoming/dt=2026-11-27/a b+c%2F.json"))
    assert odd.key == "incoming/dt=2026-11-27/a b+c%2F.json"  # not URL-decoded: EventBridge sends it as it is


def test_eventbridge_events_other_than_object_created_name_no_files():
    assert file_refs_from_event({**EVENTBRIDGE, "detail-type": "Object Deleted"}) == []


def test_direct_invocation_with_s3_records():
    assert file_refs_from_event(S3_PUT) == [DOCUMENTED_REF]
