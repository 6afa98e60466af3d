"""Array bindings run as one statement, as they do in Snowflake.

The connector sends `executemany` as one request whose bindings hold a list of
values per placeholder. fakesnow executes such a batch row by row, parsing and
transforming the SQL once per row, so a 1,000-row batch costs a thousand
statements. Instead, the bound rows become an Arrow table registered in the
session's DuckDB connection, and the statement reads them in one pass:

    INSERT INTO t (a, b) SELECT ?, PARSE_JSON(?)      -- as sent, with 1,000 rows bound
    INSERT INTO t (a, b) SELECT b.c1, PARSE_JSON(b.c2) FROM <batch table> AS b

The loader's own inserts bind one value, a JSON array of records, and FLATTEN it; that array becomes
a registered table too (see flattened_array_statement).
"""

from __future__ import annotations

import base64
import binascii
import gc
import re
from typing import Any

import cramjam
import pyarrow as pa
from fakesnow.converter import from_binding
from sqlglot import exp

from widf_local.gateway.errors import SnowflakeError, unsupported
from widf_local.gateway.grants import parse
from widf_local.gateway.names import NAME, literal

Bindings = dict[str, dict[str, Any]]


def is_array_binding(bindings: Bindings | None) -> bool:
    if not bindings:
        return False
    return all(k.isdigit() for k in bindings) and any(isinstance(b.get("value"), list) for b in bindings.values())


def batch_table(bindings: Bindings) -> pa.Table:
    """Columns c1..cN of the bound values, converted as fakesnow converts single bindings."""
    columns = {}
    for position in range(1, len(bindings) + 1):
        binding = bindings[str(position)]
        columns[f"c{position}"] = [None if v is None else from_binding({**binding, "value": v}) for v in binding["value"]]
    return pa.table(columns)


def batch_statement(sql: str, width: int, table_name: str) -> str | None:
    """The statement over `table_name` instead of placeholders; None for shapes it does not handle."""
    if not isinstance(parsed := parse(sql), exp.Insert):
        return None
    statement = parsed.copy()  # the parse is kept by text: rewrite a copy
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


def flattened_array_statement(
    sql: str, bindings: Bindings | None, table_name: str
) -> tuple[str, Bindings, list[tuple[str, str | list[str]]]] | None:
    """A statement reading `r.value` from `TABLE(FLATTEN(INPUT => PARSE_JSON(...))) r` over a bound
    JSON array (or a UNION ALL of such SELECTs, an array each), rewritten to read a registered table
    instead (one row per element of the array, in a column VALUE): the new statement, the bindings
    without the arrays, and each table's name (`table_name`, numbered) with its array's text, or with
    PARSE_JSON's 'd' its elements already read (see last_value_of_each_key). An array is bound as text, or
    packed as the loader packs it: `DECOMPRESS_STRING(BASE64_DECODE_BINARY(?), 'SNAPPY')`, which fakesnow
    does not know. None for any other shape.

    fakesnow's FLATTEN is one generic macro (objects, arrays, SEQ and THIS on every row): 50-90 ms for a
    5,000-element array, where DuckDB's own UNNEST of the same array takes 15. The answer is the same:
    one row per element, in order, with the element as VALUE.
    """
    # Every bound statement comes through here: only a FLATTEN is worth parsing.
    if not bindings or "FLATTEN" not in sql.upper() or not all(k.isdigit() for k in bindings):
        return None
    if is_array_binding(bindings):  # executemany of one row, as the loader sends each batch
        if not all(isinstance(b.get("value"), list) and len(b["value"]) == 1 for b in bindings.values()):
            return None
        bindings = {k: {**b, "value": b["value"][0]} for k, b in bindings.items()}
    if not isinstance(parsed := parse(sql), exp.Insert):
        return None
    statement = parsed.copy()  # the parse is kept by text: rewrite a copy
    branches = union_all_branches(statement.expression)
    if not branches:
        return None
    placeholders = list(statement.find_all(exp.Placeholder, bfs=False))  # in textual order, as bound
    if len(placeholders) != len(bindings):
        return None
    arrays: list[tuple[str, str | list[str]]] = []
    positions = set()
    for number, source in enumerate(branches, start=1):
        found = flattened_array(source)
        if found is None:
            return None
        placeholder, packed, alias, duplicates_allowed = found
        position = next(i for i, p in enumerate(placeholders, start=1) if p is placeholder)
        bound = bindings.get(str(position), {})
        if bound.get("type") != "TEXT" or not isinstance(bound.get("value"), str):
            return None
        text = unpack_snappy(bound["value"]) if packed else bound["value"]
        if not text.lstrip().startswith("["):
            return None
        name = table_name if len(branches) == 1 else f"{table_name}_{number}"
        source.set("from_", exp.From(this=exp.alias_(exp.to_table(name), alias)))
        elements = last_value_of_each_key(text) if duplicates_allowed else None
        arrays.append((name.rsplit(".", 1)[-1], text if elements is None else elements))
        positions.add(position)
    rest = [bindings[str(i)] for i in range(1, len(bindings) + 1) if i not in positions]
    return statement.sql(dialect="snowflake"), {str(i): b for i, b in enumerate(rest, start=1)}, arrays


def union_all_branches(source: exp.Expr | None) -> list[exp.Select] | None:
    """The SELECTs of a query that is one SELECT or a UNION ALL of them; None for any other query."""
    if isinstance(source, exp.Select):
        return [source]
    if isinstance(source, exp.Union) and not source.args.get("distinct"):
        left, right = union_all_branches(source.left), union_all_branches(source.right)
        return left + right if left is not None and right is not None else None
    return None


def flattened_array(source: exp.Select) -> tuple[exp.Placeholder, bool, str, bool] | None:
    """A SELECT of `r.value` over `TABLE(FLATTEN(INPUT => PARSE_JSON(?)))` (or of the packed array): its array's
    placeholder, whether the array is packed, the FLATTEN's alias, and whether PARSE_JSON allows duplicate keys."""
    if source.args.get("joins") or source.args.get("where"):
        return None
    flatten = (source.args.get("from_") or source.args.get("from") or exp.From()).this
    if not (
        isinstance(flatten, exp.TableFromRows)
        and isinstance(explode := flatten.this, exp.Explode)
        and not explode.expressions  # PATH, OUTER, RECURSIVE or MODE: leave those to fakesnow
        and isinstance(kwarg := explode.this, exp.Kwarg)
        and kwarg.this.name.upper() == "INPUT"
        and isinstance(parse := kwarg.expression, exp.ParseJSON)
        and (alias := flatten.alias)
    ):
        return None
    parameter = parse.args.get("expression")
    if parameter is not None and not (isinstance(parameter, exp.Literal) and parameter.is_string and parameter.name in ("d", "s")):
        return None
    packed = isinstance(parse.this, exp.DecompressString)
    if packed:
        decode = parse.this.this
        method = parse.this.args.get("method")
        if not (isinstance(decode, exp.Base64DecodeBinary) and isinstance(method, exp.Literal) and method.name.upper() == "SNAPPY"):
            return None
        array = decode.this
    else:
        array = parse.this
    if not isinstance(array, exp.Placeholder):
        return None
    if any(c.table == alias and c.name.upper() != "VALUE" for c in source.find_all(exp.Column)):
        return None  # KEY, PATH, INDEX, SEQ or THIS: leave those to fakesnow
    return array, packed, alias, parameter is not None and parameter.name == "d"


def last_value_of_each_key(text: str) -> list[str] | None:
    """PARSE_JSON(..., 'd'): "If a JSON object contains a duplicate key, the returned object has a single instance
    of that key with the last value specified for that key" (Snowflake's PARSE_JSON page): the array's elements,
    each as JSON, read by orjson, which reads them so (DuckDB's JSON keeps both and reads the first). None, to be
    read as it is, for text that is no JSON array, which the engine refuses, and text with an integer beyond 64
    bits, which orjson would round. A whole array is parsed at once, its objects alive together: the collector
    is held off meanwhile, as it would walk them again and again (it doubles the time)."""
    import orjson

    encoded = text.encode()  # orjson reads bytes three times faster than str
    if b"0" * 20 in encoded.translate(_DIGITS_AS_ZERO):  # a run of 20 digits, found in C (a regex backtracks on each run)
        return None
    collecting = gc.isenabled()
    gc.disable()
    try:
        elements = orjson.loads(encoded)
    except orjson.JSONDecodeError:
        return None
    finally:
        if collecting:
            gc.enable()
    if not isinstance(elements, list):
        return None
    return [orjson.dumps(element).decode() for element in elements]


def unpack_snappy(text: str) -> str:
    """DECOMPRESS_STRING(BASE64_DECODE_BINARY(text), 'SNAPPY'); a text that is not one fails the statement
    (the wording and codes are the gateway's: the loader never sends such a text)."""
    try:
        binary = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise SnowflakeError(100033, f"The following string is not a legal base64-encoded value: '{text[:32]}'", "22000") from None
    try:
        return bytes(cramjam.snappy.decompress_raw(binary)).decode("utf-8")
    except (cramjam.DecompressionError, UnicodeDecodeError) as e:
        raise SnowflakeError(100170, f"Decompression failed: SNAPPY ({type(e).__name__})", "22000") from None


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
# Strings, quoted identifiers and comments are read whole, so that a `?` or `--` inside them is left alone.
# (`//` comments are not read: `PUT file:///tmp/x` writes its path unquoted.)
_TOKEN = re.compile(r"'(?:[^'\\]|''|\\.)*'|\"(?:[^\"]|\"\")*\"|/\*.*?\*/|--[^\n]*|\bIDENTIFIER\s*\(\s*\?\s*\)|\?", re.S | re.I)
_NEEDS_INLINING = re.compile(r"\bIDENTIFIER\s*\(\s*\?\s*\)", re.I)


def without_comments(sql: str) -> str:
    """The statement with its comments blanked out (the gateway's own parsers read statements by pattern)."""
    if "/*" not in sql and "--" not in sql:
        return sql
    return _TOKEN.sub(lambda m: " " if m.group(0).startswith(("/*", "--")) else m.group(0), sql)


def binds_identifiers(sql: str) -> bool:
    """`IDENTIFIER(?)`: a name bound as a value, which no engine can take as a parameter."""
    return bool(_NEEDS_INLINING.search(sql))


def inlined(sql: str, bindings: Bindings) -> str:
    """The statement with its single-row positional bindings written in, as Snowflake reads them: `IDENTIFIER(?)`
    as the bound name, any other `?` as a literal of the bound type. For the statements the gateway reads itself
    (stages, INFER_SCHEMA) and names bound with IDENTIFIER(?), as the connector's write_pandas sends them."""
    values = [bindings[str(position)] for position in range(1, len(bindings) + 1)] if bindings else []
    taken = iter(values)

    def replace(m: re.Match) -> str:
        token = m.group(0)
        if token.startswith(("/*", "--")):
            return " "
        if token == "?" or token.upper().startswith("IDENTIFIER"):
            bound = next(taken, None)
            if bound is None:
                raise SnowflakeError(1010, "SQL compilation error:\nBind variable ? not set.", "42601")
            return bound_identifier(bound) if token != "?" else bound_literal(bound)
        return token

    text = _TOKEN.sub(replace, sql)
    if next(taken, None) is not None:
        raise SnowflakeError(1010, f"SQL compilation error:\nmore bind values ({len(values)}) than bind variables", "42601")
    return text


def bound_identifier(bound: dict[str, Any]) -> str:
    value = bound.get("value")
    if not isinstance(value, str) or not NAME.fullmatch(value.strip()):
        raise SnowflakeError(2003, f"SQL compilation error:\ninvalid identifier '{value}'", "42000")
    return value.strip()


def bound_literal(bound: dict[str, Any]) -> str:
    value, kind = bound.get("value"), str(bound.get("type", "TEXT")).upper()
    if value is None:
        return "NULL"
    if kind == "TEXT":
        return literal(str(value))
    if kind in ("FIXED", "REAL") and re.fullmatch(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", str(value)):
        return str(value)
    if kind == "BOOLEAN":
        return "TRUE" if str(value).lower() in ("1", "true") else "FALSE"
    raise unsupported(f"a {kind} binding in a statement the gateway reads itself")
