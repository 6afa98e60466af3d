"""The stage statements' pure pieces: options, staged JSON records, the COPY's SELECT over the staged rows."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from widf_local.gateway.errors import SnowflakeError
from widf_local.gateway.stages import COLUMN, StagedFile, file_format, options, read_records, source_query


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
    assert read_records(array, "a.json.gz", strip=False, compression="AUTO").records == ['[{"a":1},{"a":2}]']


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
