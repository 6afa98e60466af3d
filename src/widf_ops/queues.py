"""The function's queues as the tools read them: how many messages they hold, and which
keys the bucket's notification rules send to them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
