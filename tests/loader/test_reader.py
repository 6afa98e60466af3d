"""Objects are read as streams of records: JSON array or NDJSON, gzip by magic bytes."""

from __future__ import annotations

import gzip
import io

import orjson
import pytest

from widf_loader.config import ReadLimits
from widf_loader.reader import LimitExceeded, UnreadableFile, check_record, iter_records, nesting_depth

RECORDS = [{"id": 1, "nested": {"a": [1, 2]}}, {"id": 2, "amount": 12.5}, {"id": 3, "text": "café"}]


def read(data: bytes) -> list:
    return list(iter_records(io.BytesIO(data), "s3://b/k"))


@pytest.mark.parametrize(
    "data",
    [
        b'[{"id": 1, "nested": {"a": [1, 2]}}, {"id": 2, "amount": 12.5}, {"id": 3, "text": "caf\xc3\xa9"}]',
        b'{"id": 1, "nested": {"a": [1, 2]}}\n{"id": 2, "amount": 12.5}\n\n{"id": 3, "text": "caf\xc3\xa9"}\n',
        b'\xef\xbb\xbf  \n [{"id": 1, "nested": {"a": [1, 2]}},{"id": 2, "amount": 12.5},{"id": 3, "text": "caf\xc3\xa9"}]',
    ],
    ids=["array", "ndjson", "bom-and-whitespace"],
)
def test_formats_yield_the_same_records(data):
    assert read(data) == RECORDS
    assert read(gzip.compress(data)) == RECORDS


def test_empty_object_has_no_records():
    assert read(b"") == []
    assert read(b"  \n ") == []


def test_bad_ndjson_line_names_the_line():
    with pytest.raises(UnreadableFile, match=r"s3://b/k line 2: not valid JSON"):
        read(b'{"ok": 1}\n{"broken": \n')


def test_truncated_array_is_an_error():
    with pytest.raises(UnreadableFile, match="invalid JSON array"):
        read(b'[{"ok": 1}, {"broken": ')


def test_truncated_gzip_is_an_error():
    with pytest.raises(UnreadableFile, match="gzip"):
        read(gzip.compress(b'{"ok": 1}\n' * 1000)[:-20])


def test_gzip_bomb_stops_at_the_decompressed_limit():
    bomb = gzip.compress(b'{"a": 1}\n' * 200_000)  # ~1.8 MB of text in a few KB
    with pytest.raises(LimitExceeded, match=r"decompresses to more than 100000 bytes \(WIDF_MAX_DECOMPRESSED_BYTES"):
        list(iter_records(io.BytesIO(bomb), "s3://b/bomb.json.gz", ReadLimits(max_decompressed_bytes=100_000)))


def test_gzip_bomb_is_refused_by_its_compression_ratio():
    bomb = gzip.compress(b" " * (200 * 1024 * 1024))  # 200 MiB of nothing in ~200 KiB
    with pytest.raises(LimitExceeded, match=r"refused as a gzip bomb"):
        list(iter_records(io.BytesIO(bomb), "s3://b/bomb.json.gz", ReadLimits(), compressed_size=len(bomb)))


def test_an_overlong_ndjson_line_names_the_line_and_limit():
    data = b'{"ok": 1}\n{"big": "' + b"x" * 5000 + b'"}\n'
    with pytest.raises(LimitExceeded, match=r"line 2: record is over the 1000-byte limit"):
        list(iter_records(io.BytesIO(data), "s3://b/k", ReadLimits(max_record_bytes=1000)))


def test_records_deeper_than_the_limit_are_refused():
    deep = {"a": [[[[{"b": [[1]]}]]]]}
    check_record({"flat": [1, 2, 3]}, orjson.dumps({"flat": [1, 2, 3]}), 0, "s3://b/k", ReadLimits(max_depth=3))
    with pytest.raises(LimitExceeded, match=r"record 4: nested deeper than 5 levels"):
        check_record(deep, orjson.dumps(deep), 4, "s3://b/k", ReadLimits(max_depth=5))


def test_a_large_record_in_an_array_is_refused_by_size():
    payload = orjson.dumps({"x": "y" * 2000})
    with pytest.raises(LimitExceeded, match=r"record 0: \d+ bytes, over the 1000-byte limit"):
        check_record({"x": "y" * 2000}, payload, 0, "s3://b/k", ReadLimits(max_record_bytes=1000))


def test_nesting_depth_counts_containers():
    assert nesting_depth(1) == 0
    assert nesting_depth({"a": 1}) == 1
    assert nesting_depth([{"a": [1]}, 2]) == 3


def test_an_integer_beyond_64_bits_is_refused_naming_its_line():
    lines = [b'{"n": 18446744073709551615, "text": "12345678901234567890123"}'] * 3 + [b'{"n": 18446744073709551616}']
    with pytest.raises(UnreadableFile, match=r"line 4: integer 18446744073709551616\.\.\. is beyond 64 bits"):
        read(b"\n".join(lines) + b"\n")


def test_twenty_digits_within_64_bits_or_inside_strings_are_kept():
    data = b'{"n": 18446744073709551615}\n{"n": -9223372036854775808, "s": "123456789012345678901234567890"}'
    assert read(data) == [{"n": 2**64 - 1}, {"n": -(2**63), "s": "123456789012345678901234567890"}]
