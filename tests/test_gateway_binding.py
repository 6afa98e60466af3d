"""Array-bound INSERTs become one statement over the bound rows."""

from __future__ import annotations

import base64
import os

import pytest

from widf_local.gateway.binding import batch_statement, batch_table, flattened_array_statement, is_array_binding, unpack_snappy
from widf_local.gateway.errors import SnowflakeError
from widf_loader.pipeline import BATCH_BYTES, SNOWFLAKE_BINARY_MAX_BYTES
from widf_loader.pipeline_config import TypedColumn
from widf_loader.warehouse import insert_rows_statement, packed_records, reject_statement


def test_insert_select_reads_the_batch_table_in_placeholder_order():
    sql = batch_statement("INSERT INTO t (a, b, c) SELECT ?, PARSE_JSON(?), CURRENT_USER()", 2, "batch_1")
    assert sql == "INSERT INTO t (a, b, c) SELECT b.c1, PARSE_JSON(b.c2), CURRENT_USER() FROM batch_1 AS b"


def test_insert_values_becomes_a_select_over_the_batch():
    assert batch_statement("INSERT INTO t (a, b) VALUES (?, ?)", 2, "x") == "INSERT INTO t (a, b) SELECT b.c1, b.c2 FROM x AS b"


def test_the_loaders_quarantine_insert_is_rewritten():
    assert batch_statement(reject_statement("REJECTED_RECORDS"), 7, "x").endswith("FROM x AS b")


def test_other_shapes_are_left_to_fakesnow():
    assert batch_statement("INSERT INTO t SELECT ? FROM s", 1, "x") is None
    assert batch_statement("UPDATE t SET a = ?", 1, "x") is None
    assert batch_statement("INSERT INTO t (a) SELECT ?", 2, "x") is None  # binding count disagrees


def test_bound_columns_keep_their_types():
    bindings = {"1": {"type": "TEXT", "value": ["a", "b"]}, "2": {"type": "FIXED", "value": ["1", None]}}
    assert is_array_binding(bindings)
    assert batch_table(bindings).to_pydict() == {"c1": ["a", "b"], "c2": [1, None]}
    assert not is_array_binding({"1": {"type": "TEXT", "value": "a"}})


def text_bindings(*values: str) -> dict:
    return {str(i): {"type": "TEXT", "value": v} for i, v in enumerate(values, start=1)}


def test_flatten_over_a_bound_array_reads_the_elements_table_instead():
    sql = "INSERT INTO t (a, b, c) SELECT ?, r.value[1], TRY_CAST(r.value[2]::VARCHAR AS INT) FROM TABLE(FLATTEN(INPUT => PARSE_JSON(?))) r"
    statement, bindings, array = flattened_array_statement(sql, text_bindings("ctx", " [[0, {}, 1]]"), "flat_1")
    assert statement == "INSERT INTO t (a, b, c) SELECT ?, r.value[1], TRY_CAST(CAST(r.value[2] AS VARCHAR) AS INT) FROM flat_1 AS r"
    assert bindings == text_bindings("ctx") and array == " [[0, {}, 1]]"


def test_the_loaders_inserts_take_the_elements_table():
    typed = (TypedColumn("AMOUNT", "amount", "NUMBER(12,2)"), TypedColumn("DEVICE", "device", "VARIANT"))
    for sql in (insert_rows_statement("RAW_DATA"), insert_rows_statement("PURCHASES", typed)):
        rewritten = flattened_array_statement(sql, text_bindings(*["x"] * 10, packed_records(b'[[0, {"a": 1}]]')), "flat_2")
        assert rewritten is not None and rewritten[0].endswith("FROM flat_2 AS r") and len(rewritten[1]) == 10
        assert rewritten[2] == '[[0, {"a": 1}]]'


def test_packed_records_are_snappy_as_snowflakes_compress_writes_it():
    # COMPRESS('Snowflake', 'SNAPPY') = 0920536E6F77666C616B65, from Snowflake's documentation of COMPRESS
    assert packed_records(b"Snowflake") == base64.b64encode(bytes.fromhex("0920536E6F77666C616B65")).decode()
    assert unpack_snappy(packed_records(b"Snowflake")) == "Snowflake"
    with pytest.raises(SnowflakeError):
        unpack_snappy("not base64!")
    with pytest.raises(SnowflakeError):
        unpack_snappy(base64.b64encode(b"not snappy").decode())


def test_flatten_shapes_it_does_not_answer_for_are_left_to_fakesnow():
    sql = "INSERT INTO t (a) SELECT r.value FROM TABLE(FLATTEN(INPUT => PARSE_JSON(?))) r"
    assert flattened_array_statement(sql, text_bindings('{"an": "object"}'), "x") is None  # FLATTEN of an object: key/value rows
    assert flattened_array_statement(sql.replace("r.value", "r.index"), text_bindings("[1]"), "x") is None
    assert flattened_array_statement(sql.replace("r.value FROM", "r.this FROM"), text_bindings("[1]"), "x") is None
    assert flattened_array_statement(sql.replace("INPUT => PARSE_JSON(?)", "INPUT => PARSE_JSON(?), OUTER => TRUE"), text_bindings("[1]"), "x") is None
    assert flattened_array_statement(sql + " WHERE r.value > 1", text_bindings("[1]"), "x") is None
    assert flattened_array_statement(sql, {"1": {"type": "FIXED", "value": "1"}}, "x") is None
    assert flattened_array_statement(sql, {"1": {"type": "TEXT", "value": ["[1]", "[2]"]}}, "x") is None  # two rows bound


def test_an_executemany_of_one_row_is_flattened_as_one_statement():
    sql = "INSERT INTO t (a, b) SELECT ?, r.value FROM TABLE(FLATTEN(INPUT => PARSE_JSON(?))) r"
    bindings = {"1": {"type": "TEXT", "value": ["ctx"]}, "2": {"type": "TEXT", "value": ["[1, 2]"]}}
    assert flattened_array_statement(sql, bindings, "x") == ("INSERT INTO t (a, b) SELECT ?, r.value FROM x AS r", {"1": {"type": "TEXT", "value": "ctx"}}, "[1, 2]")


def test_a_full_batch_packs_into_one_snowflake_binary_however_badly_it_compresses():
    noise = base64.b85encode(os.urandom(BATCH_BYTES))[: BATCH_BYTES - 4]  # no quote, no backslash: JSON as it is
    array = b'["' + noise + b'"]'
    assert len(array) == BATCH_BYTES
    assert len(base64.b64decode(packed_records(array))) <= SNOWFLAKE_BINARY_MAX_BYTES
