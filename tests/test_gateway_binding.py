"""Array-bound INSERTs become one statement over the bound rows."""

from __future__ import annotations

from widf_loader.local.gateway.binding import batch_statement, batch_table, is_array_binding
from widf_loader.warehouse import reject_statement


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
