"""Turn S3 events into `FileRef`s, whatever envelope they arrive in: a direct
S3 notification, an SQS message (possibly carrying an SNS notification), or
an EventBridge "Object Created" event.

S3 notifications carry URL-encoded keys (`+` for space, `%xx` for the rest);
they are decoded here and nowhere else. EventBridge events carry the key as
it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote_plus


class MalformedEvent(ValueError):
    """The event is not an S3 notification this loader understands."""


@dataclass(frozen=True)
class FileRef:
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    sequencer: str | None = None
    event_time: str | None = None
    event_name: str | None = None
    principal: str | None = None
    source_ip: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def file_id(ref: FileRef) -> str:
    """A file's identity: the object version, or its content hash when unversioned."""
    return f"{ref.bucket}/{ref.key}#{ref.version_id or ref.etag or 'unversioned'}"


def is_eventbridge(event: dict) -> bool:
    return event.get("source") == "aws.s3" and "detail-type" in event


def file_refs_from_eventbridge(event: dict) -> list[FileRef]:
    if event.get("detail-type") != "Object Created":
        return []
    try:
        detail, obj = event["detail"], event["detail"]["object"]
        return [
            FileRef(
                bucket=detail["bucket"]["name"],
                key=obj["key"],
                version_id=obj.get("version-id"),
                etag=obj.get("etag"),
                size=obj.get("size"),
                sequencer=obj.get("sequencer"),
                event_time=event.get("time"),
                event_name=f"ObjectCreated:{detail.get('reason', 'Unknown')}",
                principal=detail.get("requester"),
                source_ip=detail.get("source-ip-address"),
            )
        ]
    except (KeyError, TypeError) as e:
        raise MalformedEvent(f"EventBridge event lacks {e}; expected an S3 'Object Created' event") from None


def file_refs_from_event(event: dict) -> list[FileRef]:
    """A direct invocation: an S3 notification or an EventBridge event."""
    if is_eventbridge(event):
        return file_refs_from_eventbridge(event)
    return file_refs_from_s3_notification(event)


def is_sqs_batch(event: dict) -> bool:
    records = event.get("Records") or []
    return bool(records) and all(r.get("eventSource") == "aws:sqs" for r in records)


def file_ref_from_s3_record(record: dict) -> FileRef | None:
    """One S3 notification record; None for events that create nothing."""
    try:
        if not str(record["eventName"]).startswith("ObjectCreated:"):
            return None
        s3, obj = record["s3"], record["s3"]["object"]
        return FileRef(
            bucket=s3["bucket"]["name"],
            key=unquote_plus(obj["key"]),
            version_id=obj.get("versionId"),
            etag=obj.get("eTag"),
            size=obj.get("size"),
            sequencer=obj.get("sequencer"),
            event_time=record.get("eventTime"),
            event_name=record["eventName"],
            principal=(record.get("userIdentity") or {}).get("principalId"),
            source_ip=(record.get("requestParameters") or {}).get("sourceIPAddress"),
        )
    except (KeyError, TypeError) as e:
        raise MalformedEvent(f"S3 event record lacks {e}; expected an S3 event notification record") from None


def file_refs_from_s3_notification(notification: dict) -> list[FileRef]:
    """All created objects in a notification; a test event names none."""
    if notification.get("Event") == "s3:TestEvent":
        return []
    if not isinstance(notification.get("Records"), list):
        raise MalformedEvent("not an S3 event notification: no 'Records' list")
    return [ref for record in notification["Records"] if (ref := file_ref_from_s3_record(record))]


def file_refs_from_sqs_body(body: str) -> list[FileRef]:
    try:
        notification = json.loads(body)
    except json.JSONDecodeError as e:
        raise MalformedEvent(f"SQS message body is not JSON ({e})") from None
    if not isinstance(notification, dict):
        raise MalformedEvent("SQS message body is not an S3 event notification object")
    if notification.get("Type") == "Notification" and "Message" in notification:  # S3 -> SNS -> SQS
        return file_refs_from_sqs_body(notification["Message"])
    if is_eventbridge(notification):  # S3 -> EventBridge -> SQS
        return file_refs_from_eventbridge(notification)
    return file_refs_from_s3_notification(notification)
