"""Array bindings run as one statement, as they do in Snowflake.

The connector sends `executemany` as one request whose bindings hold a list of
values per placeholder. fakesnow executes such a batch row by row, parsing and
transforming the SQL once per row, so a 1,000-row batch costs a thousand
statements. Instead, the bound rows become an Arrow table registered in the
session's DuckDB connection, and the statement reads them in one pass:

    INSERT INTO t (a, b) SELECT ?, PARSE_JSON(?)      -- as sent, with 1,000 rows bound
    INSERT INTO t (a, b) SELECT b.c1, PARSE_JSON(b.c2) FROM <batch table> AS b
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import sqlglot
from fakesnow.converter import from_binding
from sqlglot import exp

Bindings = dict[str, dict[str, Any]]


def is_array_binding(bindings: Bindings | None) -> bool:
    return bool(bindings) and all(k.isdigit() for k in bindings) and any(isinstance(b.get("value"), list) for b in bindings.values())


def batch_table(bindings: Bindings) -> pa.Table:
    """Columns c1..cN of the bound values, converted as fakesnow converts single bindings."""
    columns = {}
    for position in range(1, len(bindings) + 1):
        binding = bindings[str(position)]
        columns[f"c{position}"] = [None if v is None else from_binding({**binding, "value": v}) for v in binding["value"]]
    return pa.table(columns)


def batch_statement(sql: str, width: int, table_name: str) -> str | None:
    """The statement over `table_name` instead of placeholders; None for shapes it does not handle."""
    try:
        statement = sqlglot.parse_one(sql, read="snowflake")
    except sqlglot.errors.ParseError:
        return None
    if not isinstance(statement, exp.Insert):
        return None
    source = statement.expression
    if isinstance(source, exp.Values) and len(source.expressions) == 1:
        source = exp.select(*[e.copy() for e in source.expressions[0].expressions])
    elif not isinstance(source, exp.Select) or source.args.get("from_") or source.args.get("from"):
        return None
    placeholders = list(source.find_all(exp.Placeholder, bfs=False))  # in textual order
    if len(placeholders) != width:
        return None
    for position, placeholder in enumerate(placeholders, start=1):
        placeholder.replace(exp.column(f"c{position}", table="b"))
    statement.set("expression", source.from_(exp.alias_(exp.to_table(table_name), "b")))
    return statement.sql(dialect="snowflake")
