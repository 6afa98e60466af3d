"""Array-bound INSERTs become one statement over the bound rows, and names bound with IDENTIFIER(?) are
written in (the gateway's binding rewrites).

The statements are written out as clients send them; that the loader's own statements take the fast
path is shown live, through the stack (tests/local/test_gateway_admin.py).
"""

from __future__ import annotations

import base64

import pytest

from widf_local.gateway.binding import (
    batch_statement,
    batch_table,
    binds_identifiers,
    flattened_array_statement,
    inlined,
    is_array_binding,
    unpack_snappy,
    without_comments,
)
from widf_local.gateway.errors import SnowflakeError

# COMPRESS('Snowflake', 'SNAPPY') = 0920536E6F77666C616B65, from Snowflake's documentation of COMPRESS
SNOWFLAKE_SNAPPY = base64.b64encode(bytes.fromhex("0920536E6F77666C616B65")).decode()
PACKED_ARRAY = "PARSE_JSON(DECOMPRESS_STRING(BASE64_DECODE_BINARY(?), 'SNAPPY'))"


def snappy(text: str) -> str:
    import cramjam

    return base64.b64encode(bytes(cramjam.snappy.compress_raw(text.encode()))).decode()


def test_insert_select_reads_the_batch_table_in_placeholder_order():
    sql = batch_statement("INSERT INTO t (a, b, c) SELECT ?, PARSE_JSON(?), CURRENT_USER()", 2, "batch_1")
    assert sql == "INSERT INTO t (a, b, c) SELECT b.c1, PARSE_JSON(b.c2), CURRENT_USER() FROM batch_1 AS b"


def test_insert_values_becomes_a_select_over_the_batch():
    assert batch_statement("INSERT INTO t (a, b) VALUES (?, ?)", 2, "x") == "INSERT INTO t (a, b) SELECT b.c1, b.c2 FROM x AS b"


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
    statement, bindings, arrays = flattened_array_statement(sql, text_bindings("ctx", " [[0, {}, 1]]"), "flat_1")
    assert statement == "INSERT INTO t (a, b, c) SELECT ?, r.value[1], TRY_CAST(CAST(r.value[2] AS VARCHAR) AS INT) FROM flat_1 AS r"
    assert bindings == text_bindings("ctx") and arrays == [("flat_1", " [[0, {}, 1]]")]


def test_a_union_all_of_flattens_reads_an_elements_table_each():
    """Several files' batches in one insert, as the loader sends a batch of small files: each SELECT binds its own file's
    context and array."""
    one = f"SELECT ?, r.value[1] FROM TABLE(FLATTEN(INPUT => {PACKED_ARRAY})) r"
    sql = f"INSERT INTO t (a, b) {one} UNION ALL {one} UNION ALL {one}"
    rewritten = flattened_array_statement(
        sql, text_bindings("f1", snappy("[[0, 1]]"), "f2", snappy("[[0, 2]]"), "f3", snappy("[[0, 3]]")), "temp.main.flat"
    )
    assert rewritten is not None
    statement, bindings, arrays = rewritten
    assert statement == (
        "INSERT INTO t (a, b) SELECT ?, r.value[1] FROM temp.main.flat_1 AS r UNION ALL SELECT ?, r.value[1] FROM temp.main.flat_2 AS r "
        "UNION ALL SELECT ?, r.value[1] FROM temp.main.flat_3 AS r"
    )
    assert bindings == text_bindings("f1", "f2", "f3")
    assert arrays == [("flat_1", "[[0, 1]]"), ("flat_2", "[[0, 2]]"), ("flat_3", "[[0, 3]]")]
    assert (
        flattened_array_statement(sql.replace("UNION ALL", "UNION", 1), text_bindings("f1", "[1]", "f2", "[2]", "f3", "[3]"), "x") is None
    )


@pytest.mark.parametrize(
    "sql",
    [
        # a target table's batch: the file's context bound once, `[index, record, typed...]` elements packed
        "INSERT INTO RAW_DATA (SOURCE_FILE, PAYLOAD, RECORD_INDEX, LOAD_ID, AMOUNT, LOADED_BY) "
        f"SELECT ?, r.value[1], r.value[0], ?, TRY_CAST(r.value[2]::VARCHAR AS NUMBER(12,2)), CURRENT_USER() FROM TABLE(FLATTEN(INPUT => {PACKED_ARRAY})) r",
        # a quarantine batch: `[index, route, reason, raw]` elements packed
        "INSERT INTO REJECTED_RECORDS (SOURCE_FILE, RECORD_INDEX, ROUTE, REASON, LOAD_ID, REJECTED_BY) "
        f"SELECT ?, r.value[0], r.value[1]::VARCHAR, r.value[2]::VARCHAR, ?, CURRENT_USER() FROM TABLE(FLATTEN(INPUT => {PACKED_ARRAY})) r",
    ],
)
def test_a_packed_array_is_unpacked_into_the_elements_table(sql):
    rewritten = flattened_array_statement(sql, text_bindings("s3://b/k", "load-1", snappy('[[0, {"a": 1}, "1.5"]]')), "flat_2")
    assert rewritten is not None
    statement, bindings, arrays = rewritten
    assert statement.endswith("FROM flat_2 AS r") and bindings == text_bindings("s3://b/k", "load-1")
    assert arrays == [("flat_2", '[[0, {"a": 1}, "1.5"]]')]


def test_snappy_is_unpacked_as_snowflakes_decompress_string_reads_it():
    assert unpack_snappy(SNOWFLAKE_SNAPPY) == "Snowflake"
    with pytest.raises(SnowflakeError):
        unpack_snappy("not base64!")
    with pytest.raises(SnowflakeError):
        unpack_snappy(base64.b64encode(b"not snappy").decode())


def test_flatten_shapes_it_does_not_answer_for_are_left_to_fakesnow():
    sql = "INSERT INTO t (a) SELECT r.value FROM TABLE(FLATTEN(INPUT => PARSE_JSON(?))) r"
    assert flattened_array_statement(sql, text_bindings('{"an": "object"}'), "x") is None  # FLATTEN of an object: key/value rows
    assert flattened_array_statement(sql.replace("r.value", "r.index"), text_bindings("[1]"), "x") is None
    assert flattened_array_statement(sql.replace("r.value FROM", "r.this FROM"), text_bindings("[1]"), "x") is None
    assert (
        flattened_array_statement(sql.replace("INPUT => PARSE_JSON(?)", "INPUT => PARSE_JSON(?), OUTER => TRUE"), text_bindings("[1]"), "x")
        is None
    )
    assert flattened_array_statement(sql + " WHERE r.value > 1", text_bindings("[1]"), "x") is None
    assert flattened_array_statement(sql, {"1": {"type": "FIXED", "value": "1"}}, "x") is None
    assert flattened_array_statement(sql, {"1": {"type": "TEXT", "value": ["[1]", "[2]"]}}, "x") is None  # two rows bound


def test_an_executemany_of_one_row_is_flattened_as_one_statement():
    sql = "INSERT INTO t (a, b) SELECT ?, r.value FROM TABLE(FLATTEN(INPUT => PARSE_JSON(?))) r"
    bindings = {"1": {"type": "TEXT", "value": ["ctx"]}, "2": {"type": "TEXT", "value": ["[1, 2]"]}}
    assert flattened_array_statement(sql, bindings, "x") == (
        "INSERT INTO t (a, b) SELECT ?, r.value FROM x AS r",
        {"1": {"type": "TEXT", "value": "ctx"}},
        [("x", "[1, 2]")],
    )


# As the connector's write_pandas sends them (pandas_tools.py), each with its names bound.
WRITE_PANDAS_STAGE = (
    "CREATE TEMP STAGE /* Python:snowflake.connector.pandas_tools.write_pandas() */ identifier(?) "
    "FILE_FORMAT=(TYPE=PARQUET COMPRESSION=auto BINARY_AS_TEXT=FALSE)"
)
WRITE_PANDAS_COPY = (
    'COPY INTO identifier(?) /* Python:snowflake.connector.pandas_tools.write_pandas() */ ("A") '
    'FROM (SELECT $1:"A"::TEXT FROM \'@"S"\') FILE_FORMAT=(TYPE=PARQUET COMPRESSION=auto) PURGE=TRUE ON_ERROR=?'
)


def text(value: str) -> dict:
    return {"type": "TEXT", "value": value}


def test_bound_names_are_written_in_as_names_and_other_values_as_literals():
    assert binds_identifiers(WRITE_PANDAS_STAGE) and not binds_identifiers("SELECT ? FROM t")
    assert inlined(WRITE_PANDAS_STAGE, {"1": text('"DB"."S"."SNOWPARK_TEMP_STAGE_X"')}) == (
        'CREATE TEMP STAGE   "DB"."S"."SNOWPARK_TEMP_STAGE_X" FILE_FORMAT=(TYPE=PARQUET COMPRESSION=auto BINARY_AS_TEXT=FALSE)'
    )
    copy = inlined(WRITE_PANDAS_COPY, {"1": text('"T"'), "2": text("abort_statement")})
    assert copy.startswith('COPY INTO "T"   ("A")') and copy.endswith("PURGE=TRUE ON_ERROR='abort_statement'")
    assert inlined(
        "SELECT ?, ?, ?, '?' -- ?\n", {"1": text("it's"), "2": {"type": "FIXED", "value": "42"}, "3": {"type": "TEXT", "value": None}}
    ) == ("SELECT 'it''s', 42, NULL, '?'  \n")


def test_a_bound_name_that_is_no_identifier_is_refused_before_it_reaches_sql():
    with pytest.raises(SnowflakeError, match="invalid identifier 'T; DROP TABLE X'"):
        inlined("DROP TABLE IF EXISTS identifier(?)", {"1": text("T; DROP TABLE X")})
    with pytest.raises(SnowflakeError, match="Bind variable"):
        inlined("SELECT ?, ?", {"1": text("one")})


def test_comments_are_blanked_but_not_inside_strings():
    assert without_comments("PUT 'file:///tmp/a--b' @s /* x */ -- y") == "PUT 'file:///tmp/a--b' @s    "


def test_parse_json_d_keeps_the_last_value_of_a_duplicate_key_and_the_strict_default_leaves_the_text():
    """Snowflake's PARSE_JSON page: 'd' — "the returned object has a single instance of that key with the last value"."""
    sql = "INSERT INTO t (v) SELECT r.value FROM TABLE(FLATTEN(INPUT => PARSE_JSON(?, 'd'))) r"
    _, _, arrays = flattened_array_statement(sql, text_bindings('[{"a": 1, "b": 0, "a": 2}]'), "flat_1")
    assert arrays == [("flat_1", ['{"a":2,"b":0}'])]  # its elements, read already
    _, _, arrays = flattened_array_statement(sql.replace(", 'd'", ", 's'"), text_bindings('[{"a": 1, "a": 2}]'), "flat_1")
    assert arrays == [("flat_1", '[{"a": 1, "a": 2}]')]
    big = '[{"a": 123456789012345678901234, "a": 1}]'  # orjson would round the integer: left to the engine
    assert flattened_array_statement(sql, text_bindings(big), "flat_1")[2] == [("flat_1", big)]
    assert flattened_array_statement(sql.replace("'d'", "'x'"), text_bindings("[1]"), "flat_1") is None


def test_a_statement_rewritten_again_reads_its_own_table_not_the_last_ones():
    """The parse of a statement is kept by its text (clients send the same one per batch): each rewrite works on a copy."""
    flatten = "INSERT INTO t (a, b) SELECT ?, r.value[1] FROM TABLE(FLATTEN(INPUT => PARSE_JSON(?))) r"
    first, _, _ = flattened_array_statement(flatten, text_bindings("ctx", "[[0, 1]]"), "flat_1")
    second, _, _ = flattened_array_statement(flatten, text_bindings("ctx", "[[0, 2]]"), "flat_2")
    assert first.endswith("FROM flat_1 AS r") and second.endswith("FROM flat_2 AS r")
    batched = "INSERT INTO t (a, b) SELECT ?, PARSE_JSON(?)"
    assert batch_statement(batched, 2, "x") == "INSERT INTO t (a, b) SELECT b.c1, PARSE_JSON(b.c2) FROM x AS b"
    assert batch_statement(batched, 2, "y") == "INSERT INTO t (a, b) SELECT b.c1, PARSE_JSON(b.c2) FROM y AS b"
