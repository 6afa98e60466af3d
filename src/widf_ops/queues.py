"""The function's queues as the tools read and write them: how many messages they hold, which
keys the bucket's notification rules send to them, and the S3 notification a message carries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from widf_loader.events import FileRef
from widf_ops.arns import bucket_arn

WAITING = "ApproximateNumberOfMessages"
IN_FLIGHT = "ApproximateNumberOfMessagesNotVisible"


@dataclass(frozen=True)
class QueueDepth:
    """A queue's messages, as SQS counts them (approximately)."""

    waiting: int  # visible: ready to be received
    in_flight: int  # received, and neither deleted nor visible again yet

    @property
    def total(self) -> int:
        return self.waiting + self.in_flight


def queue_depth(sqs: Any, queue_url: str) -> QueueDepth:
    counts = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[WAITING, IN_FLIGHT])["Attributes"]
    return QueueDepth(int(counts[WAITING]), int(counts[IN_FLIGHT]))


@dataclass(frozen=True)
class KeyRule:
    """One notification rule's key filter: the keys it sends."""

    prefix: str = ""
    suffix: str = ""

    def matches(self, key: str) -> bool:
        return key.startswith(self.prefix) and key.endswith(self.suffix)

    @property
    def pattern(self) -> str:
        return f"{self.prefix}*{self.suffix}"


def landing_rules(notification: Mapping[str, Any], queue_arn: str) -> list[KeyRule]:
    """The key filters of the bucket's ObjectCreated notifications to this queue."""
    rules = []
    for configuration in notification.get("QueueConfigurations", []):
        creates = any(e.startswith("s3:ObjectCreated:") for e in configuration.get("Events", []))
        if configuration.get("QueueArn") != queue_arn or not creates:
            continue
        filters = {r["Name"].lower(): r["Value"] for r in configuration.get("Filter", {}).get("Key", {}).get("FilterRules", [])}
        rules.append(KeyRule(prefix=filters.get("prefix", ""), suffix=filters.get("suffix", "")))
    return rules


def s3_notification(ref: FileRef) -> str:
    """The S3 event notification of this object version, as S3 writes it (the key URL-encoded).

    Only what the ref carries is written: what it lacks is left out, as S3 leaves out the
    version of an object in an unversioned bucket.
    """
    obj = {"key": quote_plus(ref.key), "size": ref.size, "eTag": ref.etag, "versionId": ref.version_id, "sequencer": ref.sequencer}
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": ref.event_time,
        "eventName": ref.event_name,
        "userIdentity": {"principalId": ref.principal} if ref.principal else None,
        "requestParameters": {"sourceIPAddress": ref.source_ip} if ref.source_ip else None,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": ref.bucket, "arn": bucket_arn(ref.bucket)}, "object": _present(obj)},
    }
    return json.dumps({"Records": [_present(record)]})


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}
