"""Replay the dead-letter queue: its messages go back to the function's queue, bodies unchanged.

A receive / send / delete loop rather than SQS StartMessageMoveTask: it works
on every SQS (the local stack's moto has no move task) and reports exactly what
moved. A message leaves the DLQ only after the function's queue accepted its
copy; if the command dies in between, the message is in both queues, which is
a duplicate delivery - harmless, the ledger loads a file once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from widf_loader.events import MalformedEvent, file_refs_from_sqs_body
from widf_ops.queues import queue_depth

RECEIVE_LIMIT = 10  # ReceiveMessage and SendMessageBatch take at most ten
# While a message is being moved it is hidden from other DLQ readers; if the
# command dies, it reappears in the DLQ after this long.
MOVE_VISIBILITY_SECONDS = 120


@dataclass
class Replay:
    moved: int = 0
    refused: list[str] = field(default_factory=list)  # why the queue refused messages (they stay in the DLQ)


@dataclass(frozen=True)
class Peek:
    waiting: int  # approximate, as SQS counts
    in_flight: int
    files: list[str]  # the files named by the first few messages


def message_attributes(message: dict[str, Any]) -> dict[str, Any]:
    """The message's own attributes in the shape SendMessage takes (receive adds list fields it refuses)."""
    keep = ("DataType", "StringValue", "BinaryValue")
    return {name: {k: v for k, v in value.items() if k in keep} for name, value in message.get("MessageAttributes", {}).items()}


def move_batch(sqs: Any, source_url: str, target_url: str, messages: list[dict[str, Any]], replay: Replay) -> int:
    entries = []
    for i, message in enumerate(messages):
        entry = {"Id": str(i), "MessageBody": message["Body"]}
        if attributes := message_attributes(message):
            entry["MessageAttributes"] = attributes
        entries.append(entry)
    answer = sqs.send_message_batch(QueueUrl=target_url, Entries=entries)
    replay.refused += [f"{f.get('Code')}: {f.get('Message', '')}".strip() for f in answer.get("Failed", [])]
    sent = [messages[int(s["Id"])] for s in answer.get("Successful", [])]
    if sent:
        sqs.delete_message_batch(
            QueueUrl=source_url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(sent)]
        )
    return len(sent)


def replay_dead_letters(
    sqs: Any, dlq_url: str, queue_url: str, limit: int | None = None, on_moved: Callable[[int], None] = lambda n: None
) -> Replay:
    """Move up to `limit` messages (all that can be received when None) from the DLQ to the queue."""
    replay = Replay()
    while limit is None or replay.moved < limit:
        wanted = RECEIVE_LIMIT if limit is None else min(RECEIVE_LIMIT, limit - replay.moved)
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=wanted,
            WaitTimeSeconds=1,  # a long poll asks every SQS server, so an empty answer means empty
            VisibilityTimeout=MOVE_VISIBILITY_SECONDS,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        moved = move_batch(sqs, dlq_url, queue_url, messages, replay)
        replay.moved += moved
        on_moved(moved)
        if not moved:  # the queue refuses everything: stop rather than spin
            break
    return replay


def files_named(body: str) -> list[str]:
    try:
        return [ref.uri for ref in file_refs_from_sqs_body(body)]
    except MalformedEvent:
        return ["(not an S3 event)"]


def peek(sqs: Any, dlq_url: str) -> Peek:
    """How many messages wait, and which files the first few name; nothing moves.

    The peeked messages are received with a visibility timeout of zero, so
    they are at once visible again (their receive count grows; a DLQ has no
    redrive of its own, so nothing follows from that).
    """
    depth = queue_depth(sqs, dlq_url)
    messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=RECEIVE_LIMIT, WaitTimeSeconds=1, VisibilityTimeout=0).get(
        "Messages", []
    )
    files = [uri for m in messages for uri in files_named(m["Body"])]
    return Peek(depth.waiting, depth.in_flight, files)
