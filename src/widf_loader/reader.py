"""Read an S3 object as a stream of JSON records.

Gzip is recognised by its magic bytes, not the key's suffix. A document that
starts with `[` is a JSON array, parsed incrementally; anything else is
NDJSON, one record per non-blank line. Nothing holds the whole object.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from typing import Any, BinaryIO

import ijson
import orjson
from botocore.exceptions import ClientError

from widf_loader.events import FileRef

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
CHUNK = 1 << 16


class UnreadableFile(ValueError):
    """The object is not a JSON array or NDJSON (optionally gzipped)."""


class ObjectGone(Exception):
    """The object was deleted (or replaced) between the event and the read."""


class _RawStream(io.RawIOBase):
    """Adapts botocore's StreamingBody (read(n) only) to Python's io stack."""

    def __init__(self, body: Any):
        self.body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_object(s3: Any, ref: FileRef) -> io.BufferedReader:
    extra = {"VersionId": ref.version_id} if ref.version_id else {}
    try:
        response = s3.get_object(Bucket=ref.bucket, Key=ref.key, **extra)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchVersion", "404"):
            raise ObjectGone(f"{ref.uri} no longer exists (deleted after the event)") from None
        raise
    return io.BufferedReader(_RawStream(response["Body"]), CHUNK)


def decompressed(stream: io.BufferedReader) -> io.BufferedReader:
    if stream.peek(2)[:2] == GZIP_MAGIC:
        return io.BufferedReader(gzip.GzipFile(fileobj=stream), CHUNK)  # type: ignore[arg-type]
    return stream


def _first_significant_byte(stream: io.BufferedReader) -> bytes:
    if stream.peek(3)[:3] == UTF8_BOM:
        stream.read(3)
    while True:
        head = stream.peek(CHUNK)
        if not head:
            return b""
        stripped = head.lstrip()
        if stripped:
            return stripped[:1]
        stream.read(len(head))


def iter_records(stream: BinaryIO, name: str) -> Iterator[Any]:
    """Records of a (possibly gzipped) JSON array or NDJSON stream."""
    try:
        buffered = decompressed(stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream, CHUNK))  # type: ignore[arg-type]
        first = _first_significant_byte(buffered)
        if first == b"[":
            yield from _array_records(buffered, name)
        elif first:
            yield from _ndjson_records(buffered, name)
    except (gzip.BadGzipFile, EOFError, OSError) as e:
        raise UnreadableFile(f"{name}: not a readable gzip stream ({e})") from None


def _array_records(stream: io.BufferedReader, name: str) -> Iterator[Any]:
    index = 0
    try:
        for index, record in enumerate(ijson.items(stream, "item", use_float=True)):  # noqa: B007
            yield record
    except ijson.JSONError as e:
        raise UnreadableFile(f"{name}: invalid JSON array after record {index} ({e})") from None


def _ndjson_records(stream: io.BufferedReader, name: str) -> Iterator[Any]:
    for line_number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise UnreadableFile(f"{name} line {line_number}: not valid JSON ({e})") from None
