"""Read an S3 object as a stream of JSON records, within limits.

Gzip is recognised by its magic bytes, not the key's suffix. A document that
starts with `[` is a JSON array, parsed incrementally; anything else is
NDJSON, one record per non-blank line. Nothing holds the whole object, and
every limit breach names the file, the place and the limit.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

import ijson
import orjson
from botocore.exceptions import ClientError

from widf_loader.config import ReadLimits
from widf_loader.events import FileRef

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_LIMITS = ReadLimits()
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# More than this many times its compressed size is not JSON, it is a gzip bomb (JSON compresses ~10-50x).
MAX_COMPRESSION_RATIO = 1000
MIN_DECOMPRESSED_ALLOWANCE = 64 * 1024 * 1024
# Twenty digits in a row can only be an integer beyond 64 bits (or a string of digits). Finding them
# by mapping every digit to "0" and searching for a run keeps the check in C, at ~0.8 ns a byte.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_TWENTY_DIGITS = b"0" * 20
# Every fifth byte of twenty digits in a row is four digits in a row: a megabyte whose every fifth
# byte holds no four digits in a row holds no 20-digit run, and that fifth costs half the time.
_FOUR_DIGITS = b"0" * 4
# An exponent of three digits or more (1e400 is beyond a double: orjson refuses it, a parser that skips a value
# would not) is "e000" once digits are "0" and "E" and "+" are "e" ("1E+400" is "0ee000"); the 20-digit run too.
_DIGITS_AS_ZERO_EXPONENTS_AS_E = bytes.maketrans(b"123456789E+", b"000000000ee")
_LONG_EXPONENT = b"e000"
# Stripped of all else, a JSON text's brackets (with the newlines between texts): at most its depth, counted in C.
ALL_BUT_BRACKETS = bytes(b for b in range(256) if b not in b"[{\n")
CHUNK = 1 << 16
NDJSON_CHUNK = 1 << 20
# Records handed on at a time: enough to spread the per-step costs, few enough to stay in the CPU's
# caches and to leave the garbage collector few live objects to walk. A speed choice only: any size loads
# the same records in the same order.
RECORDS_PER_CHUNK = 64
# Lines handed on at a time, unparsed (see Lines): no objects to keep in the caches, so more lines to spread the steps over.
LINES_PER_CHUNK = 256


class UnreadableFile(ValueError):
    """The object is not a JSON array or NDJSON (optionally gzipped), or breaks a limit."""


class LimitExceeded(UnreadableFile):
    """The object, a record, or the decompressed stream is larger or deeper than allowed."""


class ObjectGone(Exception):
    """The object (version) no longer exists: deleted after the event was sent."""


class _RawStream(io.RawIOBase):
    """Adapts botocore's StreamingBody (read(n) only) to Python's io stack."""

    def __init__(self, body: Any):
        self.body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]  # typeshed's Buffer; io passes a memoryview
        data = self.body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Bounded(io.RawIOBase):
    """Counts what passes through and stops at a limit: a gzip bomb ends here."""

    def __init__(self, inner: io.BufferedIOBase, limit: int, name: str):
        self.inner, self.limit, self.name, self.count = inner, limit, name, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]  # typeshed's Buffer; io passes a memoryview
        data = self.inner.read(len(buffer))
        self.count += len(data)
        if self.count > self.limit:
            raise LimitExceeded(
                f"{self.name}: decompresses to more than {self.limit} bytes (WIDF_MAX_DECOMPRESSED_BYTES, or "
                f"{MAX_COMPRESSION_RATIO}x its compressed size): refused as a gzip bomb"
            )
        buffer[: len(data)] = data
        return len(data)


def open_object(s3: Any, ref: FileRef, limits: ReadLimits) -> io.BufferedReader:
    extra = {"VersionId": ref.version_id} if ref.version_id else {}
    try:
        response = s3.get_object(Bucket=ref.bucket, Key=ref.key, **extra)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchVersion", "404"):
            raise ObjectGone(f"{ref.uri} no longer exists (deleted after the event)") from None
        raise
    size = int(response.get("ContentLength") or 0)
    if size > limits.max_object_bytes:
        response["Body"].close()
        raise LimitExceeded(f"{ref.uri}: object is {size} bytes, over the {limits.max_object_bytes}-byte limit (WIDF_MAX_OBJECT_BYTES)")
    return io.BufferedReader(_RawStream(response["Body"]), CHUNK)


def decompressed(stream: io.BufferedReader, name: str, limits: ReadLimits, compressed_size: int | None = None) -> io.BufferedReader:
    if stream.peek(2)[:2] == GZIP_MAGIC:
        limit = limits.max_decompressed_bytes
        if compressed_size:
            limit = min(limit, max(compressed_size * MAX_COMPRESSION_RATIO, MIN_DECOMPRESSED_ALLOWANCE))
        gunzip = gzip.GzipFile(fileobj=stream)
        return io.BufferedReader(_Bounded(gunzip, limit, name), CHUNK)
    return stream


def _skip_to_first_significant_byte(stream: io.BufferedReader, name: str) -> bytes:
    head = stream.peek(4)[:4]
    if head[:2] in UTF16_BOMS or (len(head) >= 2 and (head[0] == 0 or head[1] == 0)):
        raise UnreadableFile(f"{name}: looks like UTF-16 or UTF-32 text; JSON files must be UTF-8")
    if head[:3] == UTF8_BOM:
        stream.read(3)
    while head := stream.peek(CHUNK):
        if stripped := head.lstrip():
            stream.read(len(head) - len(stripped))
            return stripped[:1]
        stream.read(len(head))
    return b""


class Lines:
    """Consecutive NDJSON lines, not yet parsed: one record each, valid UTF-8, within the limits, with no
    integer beyond 64 bits and no exponent that could overflow a double (all screened a megabyte at a time).

    A consumer that can judge records on their text (widf_loader.pipeline) takes them as they are, and
    each record's own text is what it loads; any other takes `parts()`, the records as the reader parses
    them, which skips blank lines and names a bad line as it would have.
    """

    __slots__ = ("first_line", "name", "texts")

    def __init__(self, texts: list[bytes], first_line: int, name: str):
        self.texts = texts  # each line with its newline
        self.first_line = first_line  # the line number before the first
        self.name = name

    def __len__(self) -> int:
        return len(self.texts)

    def parts(self) -> Iterator[list[Any]]:
        """The lines' records, in lists, as the reader parses them; after the records before it, an error for a bad line."""
        return _parse_lines(self.texts, self.first_line, self.name, None, False)


class Records:
    """A file's records, in file order: iterate for one at a time, or take `chunks()`, lists of them.

    A list per step lets the pipeline do its per-record work in list comprehensions and C-level
    maps instead of resuming a generator for every record.
    """

    def __init__(self, chunks: Callable[[bool], Iterator[list[Any] | Lines]]):
        self._chunks = chunks

    def __iter__(self) -> Iterator[Any]:
        for chunk in self.chunks():
            yield from chunk

    def chunks(self, lines: bool = False) -> Iterator[list[Any]]:
        """Lists of consecutive records; with `lines`, NDJSON's clean lines come as Lines instead, unparsed."""
        return self._chunks(lines)  # type: ignore[return-value]  # Lines only when asked for


def record_chunks(records: Iterable[Any], size: int = RECORDS_PER_CHUNK, lines: bool = False) -> Iterator[list[Any] | Lines]:
    """Lists of consecutive records: the reader's own chunks (with `lines`, see Records.chunks), or any iterable's in slices."""
    if isinstance(records, Records):
        return records.chunks(lines)
    iterator = iter(records)
    return iter(lambda: list(islice(iterator, size)), [])


def iter_records(stream: io.BufferedIOBase, name: str, limits: ReadLimits = DEFAULT_LIMITS, compressed_size: int | None = None) -> Records:
    """Records of a (possibly gzipped) JSON array or NDJSON stream, read once."""
    return Records(lambda lines: _chunks(stream, name, limits, compressed_size, lines))


def _chunks(
    stream: io.BufferedIOBase, name: str, limits: ReadLimits, compressed_size: int | None, lines: bool
) -> Iterator[list[Any] | Lines]:
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream, CHUNK)
    try:
        text = decompressed(buffered, name, limits, compressed_size)
        first = _skip_to_first_significant_byte(text, name)
        if first == b"[":
            yield from _array_chunks(text, name)
        elif first:
            yield from _ndjson_chunks(text, name, limits, lines)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise UnreadableFile(f"{name}: not a readable gzip stream ({e})") from None


def _array_chunks(stream: io.BufferedReader, name: str) -> Iterator[list[Any]]:
    # The records before a broken one are handed on before the error: the pipeline meets the
    # errors in file order, as it would one record at a time.
    chunk: list[Any] = []
    index, error = -1, None
    try:
        for index, record in enumerate(ijson.items(stream, "item", use_float=True)):  # noqa: B007 - `index` names the failing record below
            chunk.append(record)
            if len(chunk) == RECORDS_PER_CHUNK:
                yield chunk
                chunk = []
    except ijson.JSONError as e:
        detail = " ".join(str(e).split()[:4])
        error = UnreadableFile(f"{name}: invalid JSON array after record {index + 1} ({detail})")
    except UnicodeDecodeError as e:
        error = UnreadableFile(f"{name}: record {index + 1} is not valid UTF-8 ({e.reason})")
    if chunk:
        yield chunk
    if error is not None:
        raise error from None


def _ndjson_chunks(stream: io.BufferedReader, name: str, limits: ReadLimits, as_lines: bool = False) -> Iterator[list[Any] | Lines]:
    """One record per line, a megabyte at a time; a line longer than the limit is never held whole.

    Lines are found by BytesIO's memchr rather than bytes.split, which compares byte by byte. The
    length and 64-bit checks run once per megabyte, in C; only a megabyte that could hold an
    overlong line or a 20-digit run pays for them line by line. Otherwise a chunk of lines is parsed
    by one C-level map, and only a chunk where that fails (a blank line, bad JSON) is parsed again
    line by line, to skip the blank lines and name the bad one. With `as_lines`, a megabyte that is
    also valid UTF-8 with no exponent of three digits or more comes as Lines, its lines unparsed.
    """
    carry, line_number, limit, loads = b"", 0, limits.max_record_bytes, orjson.loads
    while chunk := stream.read(NDJSON_CHUNK):
        text = carry + chunk
        end = text.rfind(b"\n") + 1
        carry = text[end:]
        if len(carry) > limit:
            complete_lines = text.count(b"\n")
            raise LimitExceeded(
                f"{name} line {line_number + complete_lines + 1}: record is over the {limit}-byte limit (WIDF_MAX_RECORD_BYTES)"
            )
        may_be_too_long = end > limit
        if as_lines and not may_be_too_long and may_load_as_written(complete := text[:end]):
            texts = list(io.BytesIO(complete))
            for start in range(0, len(texts), LINES_PER_CHUNK):
                yield Lines(texts[start : start + LINES_PER_CHUNK], line_number + start, name)
            line_number += len(texts)
            continue
        may_overflow = _FOUR_DIGITS in text[::5].translate(_DIGITS_AS_ZERO) and _TWENTY_DIGITS in text.translate(_DIGITS_AS_ZERO)
        lines = io.BytesIO(text[:end])
        while part := list(islice(lines, RECORDS_PER_CHUNK)):
            records = None
            if not (may_be_too_long or may_overflow):
                try:
                    records = list(map(loads, part))
                except orjson.JSONDecodeError:
                    pass
            if records is None:
                yield from _parse_lines(part, line_number, name, limit if may_be_too_long else None, may_overflow)
            else:
                yield records
            line_number += len(part)
    if carry and not carry.isspace():
        yield [_parse_line(carry, name, line_number + 1)]


def may_load_as_written(text: bytes) -> bool:
    """Whether complete lines' records may be loaded as written: valid UTF-8 (a parser that skips a value need
    not check it), no 20-digit run and no exponent of three digits or more."""
    if not text.isascii():
        try:
            text.decode()
        except UnicodeDecodeError:
            return False
    screened = text.translate(_DIGITS_AS_ZERO_EXPONENTS_AS_E)
    return _LONG_EXPONENT not in screened and _TWENTY_DIGITS not in screened


def _parse_lines(lines: list[bytes], line_number: int, name: str, limit: int | None, may_overflow: bool) -> Iterator[list[Any]]:
    """The records of these lines (which follow line `line_number`), each line checked on its own.

    The records before a bad line are handed on before its error, so errors come in file order.
    """
    records: list[Any] = []
    try:
        for line in lines:
            line_number += 1
            if limit is not None and len(line) - 1 > limit:
                raise LimitExceeded(f"{name} line {line_number}: record is over the {limit}-byte limit (WIDF_MAX_RECORD_BYTES)")
            if line and not line.isspace():
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as e:
                    raise UnreadableFile(f"{name} line {line_number}: not valid JSON ({e})") from None
                if may_overflow:
                    _refuse_overflow_in_line(line, name, line_number)
                records.append(record)
    except UnreadableFile:
        if records:
            yield records
        raise
    if records:
        yield records


def _parse_line(line: bytes, name: str, line_number: int) -> Any:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise UnreadableFile(f"{name} line {line_number}: not valid JSON ({e})") from None
    _refuse_overflow_in_line(line, name, line_number)
    return record


def _refuse_overflow_in_line(line: bytes, name: str, line_number: int) -> None:
    # orjson turns an integer beyond 64 bits into a rounded float; refuse it rather than change the data.
    if _TWENTY_DIGITS in line.translate(_DIGITS_AS_ZERO):
        _refuse_overflowing_integers(line, name, f"line {line_number}")


def _refuse_overflowing_integers(text: bytes, name: str, where: str) -> None:
    def integer(digits: str) -> int:
        if not -(2**63) <= (value := int(digits)) < 2**64:
            raise UnreadableFile(f"{name} {where}: integer {digits[:24]}... is beyond 64 bits; send it as a string")
        return value

    json.loads(text, parse_int=integer)


def check_record(record: Any, payload: bytes, index: int, name: str, limits: ReadLimits) -> None:
    """Size and nesting limits on one record and its serialised form."""
    if len(payload) > limits.max_record_bytes:
        raise LimitExceeded(
            f"{name} record {index}: {len(payload)} bytes, over the {limits.max_record_bytes}-byte limit (WIDF_MAX_RECORD_BYTES)"
        )
    # Each level of nesting costs at least two bytes, and counting brackets is C-fast and bounds the
    # depth from above: walk the record only when it could really be too deep.
    if (
        len(payload) > 2 * limits.max_depth
        and payload.count(b"{") + payload.count(b"[") > limits.max_depth
        and nesting_depth(record) > limits.max_depth
    ):
        raise LimitExceeded(f"{name} record {index}: nested deeper than {limits.max_depth} levels (WIDF_MAX_DEPTH)")


def nesting_depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node)
    return deepest
