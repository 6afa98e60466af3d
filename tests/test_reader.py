"""Objects are read as streams of records: JSON array or NDJSON, gzip by magic bytes."""

from __future__ import annotations

import gzip
import io

import pytest

from widf_loader.reader import UnreadableFile, iter_records

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
