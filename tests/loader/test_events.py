"""S3 notifications, direct or wrapped in SQS, become FileRefs with decoded keys."""

from __future__ import annotations

import json

import pytest

from widf_loader.events import (
    FileRef,
    MalformedEvent,
    file_refs_from_event,
    file_refs_from_s3_notification,
    file_refs_from_sqs_body,
    is_sqs_batch,
)


def s3_record(key: str, event_name: str = "ObjectCreated:Put", **obj) -> dict:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": "2026-11-27T10:00:00.000Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "198.51.100.7"},
        "s3": {"bucket": {"name": "landing"}, "object": {"key": key, "size": 42, "eTag": "abc", "sequencer": "0055", **obj}},
    }


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
    assert ref.uri == f"s3://landing/{decoded}"


def test_event_context_is_captured():
    [ref] = file_refs_from_s3_notification({"Records": [s3_record("incoming/a.json", versionId="v1")]})
    assert ref == FileRef(
        bucket="landing",
        key="incoming/a.json",
        version_id="v1",
        etag="abc",
        size=42,
        sequencer="0055",
        event_time="2026-11-27T10:00:00.000Z",
        event_name="ObjectCreated:Put",
        principal="AWS:AIDAEXAMPLE",
        source_ip="198.51.100.7",
    )


def test_several_records_in_one_notification_all_count():
    refs = file_refs_from_s3_notification({"Records": [s3_record("incoming/a.json"), s3_record("incoming/b.json")]})
    assert [r.key for r in refs] == ["incoming/a.json", "incoming/b.json"]


def test_test_event_and_removals_name_no_files():
    assert file_refs_from_sqs_body(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "landing"})) == []
    assert file_refs_from_s3_notification({"Records": [s3_record("incoming/a.json", "ObjectRemoved:Delete")]}) == []


def test_sqs_wrapped_notification():
    assert [r.key for r in file_refs_from_sqs_body(json.dumps({"Records": [s3_record("incoming/x+y.json")]}))] == ["incoming/x y.json"]


@pytest.mark.parametrize("body", ["not json", "[1, 2]", json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}), json.dumps({"hello": 1})])
def test_malformed_bodies_get_a_clear_error(body):
    with pytest.raises(MalformedEvent):
        file_refs_from_sqs_body(body)


def test_sqs_batches_are_told_apart_from_direct_events():
    assert is_sqs_batch({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]})
    assert not is_sqs_batch({"Records": [s3_record("incoming/a.json")]})


def test_sns_envelope_inside_sqs_is_unwrapped():
    inner = json.dumps({"Records": [s3_record("incoming/via+sns.json")]})
    body = json.dumps({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": inner})
    assert [r.key for r in file_refs_from_sqs_body(body)] == ["incoming/via sns.json"]


EVENTBRIDGE = {
    "version": "0",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "123456789012",
    "time": "2026-11-27T10:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:s3:::landing"],
    "detail": {
        "version": "0",
        "bucket": {"name": "landing"},
        "object": {"key": "incoming/dt=2026-11-27/a b+c.json", "size": 7, "etag": "e1", "version-id": "v9", "sequencer": "0A"},
        "request-id": "R",
        "requester": "123456789012",
        "source-ip-address": "203.0.113.5",
        "reason": "PutObject",
    },
}


def test_eventbridge_object_created_keeps_its_key_as_is():
    [ref] = file_refs_from_event(EVENTBRIDGE)
    assert ref == FileRef(
        bucket="landing", key="incoming/dt=2026-11-27/a b+c.json", version_id="v9", etag="e1", size=7, sequencer="0A",
        event_time="2026-11-27T10:00:00Z", event_name="ObjectCreated:PutObject", principal="123456789012", source_ip="203.0.113.5",
    )  # fmt: skip
    assert [r.key for r in file_refs_from_sqs_body(json.dumps(EVENTBRIDGE))] == [ref.key]


def test_eventbridge_events_other_than_object_created_name_no_files():
    assert file_refs_from_event({**EVENTBRIDGE, "detail-type": "Object Deleted"}) == []


def test_direct_invocation_with_s3_records():
    assert [r.key for r in file_refs_from_event({"Records": [s3_record("incoming/x.json")]})] == ["incoming/x.json"]
