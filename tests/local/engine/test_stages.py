"""The stage statements' pure pieces: options, staged JSON and Parquet records, the types INFER_SCHEMA gives
Parquet columns, MATCH_BY_COLUMN_NAME, the COPY's SELECT over the staged rows."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from widf_local.gateway.errors import SnowflakeError
from widf_local.gateway.stages import (
    COLUMN,
    StagedFile,
    file_format,
    matched_by_name,
    options,
    parquet_type,
    read_parquet_records,
    read_records,
    source_query,
)


def staged(path: Path, data: bytes) -> StagedFile:
    path.write_bytes(data)
    return StagedFile(path.name, path, len(data), hashlib.md5(data).hexdigest(), datetime.now(UTC))


def test_options_are_read_with_lists_strings_and_nested_formats():
    found = options(
        " FILES = ('a.json', 'b''s.json') PATTERN = '.*[.]json' FILE_FORMAT = (TYPE = JSON STRIP_OUTER_ARRAY = TRUE) FORCE=TRUE",
        {"FILES", "PATTERN", "FILE_FORMAT", "FORCE"},
        "COPY INTO",
    )
    assert found["PATTERN"] == "'.*[.]json'" and found["FORCE"] == "TRUE"
    assert file_format(found["FILE_FORMAT"], "COPY INTO") == {"TYPE": "JSON", "STRIP_OUTER_ARRAY": "TRUE"}


def test_an_option_the_gateway_does_not_implement_fails_by_name():
    with pytest.raises(SnowflakeError, match="Unsupported statement in the local gateway: COPY INTO ... VALIDATION_MODE"):
        options("VALIDATION_MODE = RETURN_ERRORS", {"FILES"}, "COPY INTO")


def test_records_are_the_documents_of_a_file_or_the_elements_of_its_outer_array(tmp_path):
    array = staged(tmp_path / "a.json.gz", gzip.compress(b'[{"a": 1}, {"a": 2}]'))
    assert read_records(array, "a.json.gz", strip=True, compression="AUTO").records == ['{"a":1}', '{"a":2}']
    assert [json.loads(r) for r in read_records(array, "a.json.gz", strip=False, compression="AUTO").records] == [[{"a": 1}, {"a": 2}]]


def test_a_file_of_one_document_a_line_gives_its_lines_and_any_other_its_documents(tmp_path):
    """The lines as they are (the engine parses them), when every line is one JSON document; a document across
    lines, or two on one, are read document by document."""
    lines = staged(tmp_path / "c.ndjson", b'{"a": 1}\n\n  {"b": [2, 3]}  \n')
    assert read_records(lines, "c.ndjson", strip=False, compression="NONE").records == ['{"a": 1}', '  {"b": [2, 3]}  ']
    spread = staged(tmp_path / "d.json", b'{"a":\n 1} {"b": 2}\n')
    load = read_records(spread, "d.json", strip=False, compression="NONE")
    assert (load.records, load.parsed, load.errors) == (['{"a":1}', '{"b":2}'], 2, 0)


def test_a_bad_line_costs_one_record_and_parsing_resumes_on_the_next(tmp_path):
    ndjson = staged(tmp_path / "b.ndjson", b'{"a": 1}\n{"a": 2,,}\n  {"a": 3}\n')
    load = read_records(ndjson, "b.ndjson", strip=True, compression="NONE")
    assert (load.records, load.parsed, load.errors) == (['{"a":1}', '{"a":3}'], 3, 1)
    assert (load.first_error_line, load.first_error_character) == (2, 9)
    assert load.first_error and load.first_error.startswith("Error parsing JSON: ")


def test_the_copy_select_reads_the_staged_column_and_leaves_strings_alone():
    query = "SELECT $1:a::int, '$1 @x', METADATA$FILENAME FROM @db.s.stage/in (FILE_FORMAT => 'f') t"
    assert source_query(query, "temp.main.v") == f"SELECT {COLUMN}1:a::int, '$1 @x', METADATA$FILENAME FROM temp.main.v t"
    with pytest.raises(SnowflakeError, match=r"only \$1"):
        source_query("SELECT $2 FROM @s", "temp.main.v")


def parquet(path: Path, columns: dict) -> StagedFile:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer, compression="gzip")  # as write_pandas writes its chunks
    return staged(path, buffer.getvalue())


def test_a_parquet_row_is_one_object_of_its_columns(tmp_path):
    from decimal import Decimal

    when = datetime(2026, 12, 1, 9, 30)
    load = read_parquet_records(
        parquet(tmp_path / "file0.txt", {"A": ["x", None], "N": [1, 2], "T": [when, when], "D": [Decimal("1.50"), Decimal("2")]}),
        "s/file0.txt",
    )
    assert (load.parsed, load.errors) == (2, 0)
    assert load.records == [
        '{"A":"x","N":1,"T":"2026-12-01T09:30:00","D":1.5}',
        '{"A":null,"N":2,"T":"2026-12-01T09:30:00","D":2}',
    ]


def test_a_file_that_is_not_parquet_is_one_error_of_that_file(tmp_path):
    load = read_parquet_records(staged(tmp_path / "f.parquet", b'{"a": 1}'), "s/f.parquet")
    assert (load.records, load.parsed, load.errors) == ([], 1, 1)
    assert load.first_error and load.first_error.startswith("Error parsing the Parquet file: ")


def test_parquet_columns_get_the_types_infer_schema_gives_them():
    import pyarrow as pa

    assert [parquet_type(t) for t in (pa.int64(), pa.float64(), pa.string(), pa.bool_(), pa.timestamp("ns"), pa.decimal128(10, 2))] == [
        "NUMBER(38, 0)",
        "REAL",
        "TEXT",
        "BOOLEAN",
        "TIMESTAMP_NTZ",
        "NUMBER(10, 2)",
    ]
    assert parquet_type(pa.timestamp("us", tz="UTC")) == "TIMESTAMP_TZ"


def test_match_by_column_name_keeps_the_fields_named_like_columns():
    names = ["SOURCE_FILE", "payload"]
    record = '{"source_file": "s3://b/k", "payload": {"a": 1}, "extra": 2}'
    assert matched_by_name(record, names, case_sensitive=False) == '{"SOURCE_FILE":"s3://b/k","payload":{"a":1}}'
    assert matched_by_name(record, names, case_sensitive=True) == '{"payload":{"a":1}}'
    assert matched_by_name("[1, 2]", names, case_sensitive=False) == "{}"
