"""Session variables: `SET name = <expr>`, `SET (a, b) = (x, y)`, `UNSET`, `$name` and `IDENTIFIER($name)`.

fakesnow keeps a variable as the text of its expression, so
`SET me = (SELECT CURRENT_USER())` would be re-run wherever `$me` appears -
and the account statements that use variables most (`GRANT ROLE r TO USER
IDENTIFIER($me)`) never reach fakesnow at all. The gateway evaluates the
expression once, as Snowflake does, keeps the value in the session, and
substitutes it before any statement is dispatched: `$name` becomes a literal,
`IDENTIFIER($name)` or `IDENTIFIER('name')` becomes the identifier itself.
Substitution works on sqlglot's tokens, so text inside strings and comments is
never touched.

A variable may have any legal name, the names of functions too: the Variables
page itself sets `(current_user, current_warehouse)`. So `SET` is read from
its tokens, never from sqlglot's tree, where `current_user` is the function.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot.tokens import Token, TokenType

from widf_local.gateway.errors import SnowflakeError
from widf_local.gateway.names import NAME, literal

_UNSET = re.compile(r"^\s*UNSET\s+(?P<names>\(?[\w\s,$]+\)?)\s*;?\s*$", re.I)
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DIALECT = sqlglot.Dialect.get_or_raise("snowflake")
# SET's usage notes: names up to 256 characters, string values up to 16 KB, CURRENT and PUBLIC reserved.
MAX_NAME_LENGTH = 256
MAX_VALUE_BYTES = 16 * 1024
RESERVED_NAMES = frozenset({"CURRENT", "PUBLIC"})


def compilation_error(message: str) -> SnowflakeError:
    return SnowflakeError(2, f"SQL compilation error:\n{message}")


def assignments(sql: str) -> list[tuple[str, str]] | None:
    """`SET name = expr` or `SET (a, b) = (x, y)` -> [(NAME, expression text)]; None for any other statement."""
    if not re.match(r"^\s*SET\b", sql, re.I):
        return None
    try:
        tokens = [t for t in _DIALECT.tokenize(sql) if t.token_type != TokenType.SEMICOLON]
    except sqlglot.errors.TokenError:
        return None
    if len(tokens) < 4 or tokens[0].token_type != TokenType.SET:
        return None
    if tokens[1].token_type == TokenType.L_PAREN:
        close = next((i for i, t in enumerate(tokens) if t.token_type == TokenType.R_PAREN), None)
        if close is None or close + 2 >= len(tokens) or tokens[close + 1].token_type != TokenType.EQ:
            return None
        names = [variable_name(group) for group in _split(tokens[2:close])]
        values = tokens[close + 2 :]
        if values[0].token_type != TokenType.L_PAREN or values[-1].token_type != TokenType.R_PAREN or not _encloses(values):
            raise compilation_error(f"SET ({', '.join(names)}) needs a parenthesised list of {len(names)} expressions.")
        expressions = [_text(sql, group) for group in _split(values[1:-1])]
    else:
        if tokens[2].token_type != TokenType.EQ:
            return None
        names, expressions = [variable_name([tokens[1]])], [_text(sql, tokens[3:])]
    if len(names) != len(expressions):
        raise compilation_error(f"SET names {len(names)} variables but gives {len(expressions)} expressions: the numbers must match.")
    return list(zip(names, expressions, strict=True))


def variable_name(tokens: list[Token]) -> str:
    """A variable's name: any identifier, keywords and function names included; case-insensitive."""
    text = tokens[0].text if len(tokens) == 1 else ""
    if len(tokens) != 1 or not (tokens[0].token_type == TokenType.IDENTIFIER or _PLAIN_NAME.fullmatch(text)):
        raise compilation_error(f"invalid variable name '{' '.join(t.text for t in tokens)}'")
    name = text.upper()
    if len(name) > MAX_NAME_LENGTH:
        raise compilation_error(f"The variable name '{name[:40]}...' is longer than {MAX_NAME_LENGTH} characters.")
    if name in RESERVED_NAMES:
        raise compilation_error(f"The variable name '{name}' is reserved by Snowflake and cannot be used.")
    return name


def checked_value(name: str, value: Any) -> Any:
    """A value within SET's size limit (16 KB for strings and binary), in Snowflake's words when it is not."""
    size = len(value.encode()) if isinstance(value, str) else len(value) if isinstance(value, bytes | bytearray) else 0
    if size > MAX_VALUE_BYTES:
        raise SnowflakeError(
            2,
            f"Assignment to '{name}' not done because value exceeds size limit for variables. "
            f"Its size is {size}; the limit is {MAX_VALUE_BYTES} (internal storage size in bytes).",
            "22000",
        )
    return value


def _split(tokens: list[Token]) -> list[list[Token]]:
    """Tokens split at the commas outside parentheses."""
    groups: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.token_type == TokenType.COMMA and depth == 0:
            groups.append([])
            continue
        depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(token.token_type, 0)
        groups[-1].append(token)
    if any(not group for group in groups):
        raise compilation_error("SET has an empty name or expression in its list.")
    return groups


def _encloses(tokens: list[Token]) -> bool:
    """The first parenthesis closes at the last token."""
    depth = 0
    for i, token in enumerate(tokens):
        depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(token.token_type, 0)
        if depth == 0:
            return i == len(tokens) - 1
    return False


def _text(sql: str, tokens: list[Token]) -> str:
    return sql[tokens[0].start : tokens[-1].end + 1]


def unset_names(sql: str) -> list[str] | None:
    if not (m := _UNSET.match(sql)):
        return None
    return [n.strip().upper() for n in m["names"].strip().strip("()").split(",") if n.strip()]


def as_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return literal(value.isoformat())
    return literal(str(value))


def as_identifier(value: Any) -> str:
    text = str(value)
    if not NAME.fullmatch(text):
        raise SnowflakeError(2025, f"SQL compilation error:\ninvalid identifier '{text}'")
    return text


def inline(sql: str, variables: dict[str, Any]) -> str:
    """The statement with every session variable replaced by its value."""
    if "$" not in sql and "IDENTIFIER" not in sql.upper():
        return sql
    try:
        tokens = _DIALECT.tokenize(sql)
    except sqlglot.errors.TokenError:
        return sql
    edits: list[tuple[int, int, str]] = []  # (start, end inclusive, replacement)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        identifier_call = token.text.upper() == "IDENTIFIER" and i + 3 < len(tokens) and tokens[i + 1].token_type == TokenType.L_PAREN
        if identifier_call and tokens[i + 2].token_type in (TokenType.STRING,) and tokens[i + 3].token_type == TokenType.R_PAREN:
            edits.append((token.start, tokens[i + 3].end, as_identifier(tokens[i + 2].text)))
            i += 4
            continue
        if identifier_call and i + 4 < len(tokens) and _is_variable(tokens, i + 2) and tokens[i + 4].token_type == TokenType.R_PAREN:
            edits.append((token.start, tokens[i + 4].end, as_identifier(_value(variables, tokens[i + 3].text))))
            i += 5
            continue
        if _is_variable(tokens, i):
            edits.append((token.start, tokens[i + 1].end, as_literal(_value(variables, tokens[i + 1].text))))
            i += 2
            continue
        i += 1
    for start, end, replacement in reversed(edits):
        sql = sql[:start] + replacement + sql[end + 1 :]
    return sql


def _is_variable(tokens: list, i: int) -> bool:
    """`$name`: a PARAMETER token directly followed by a name (`$1` is a column position, not a variable)."""
    return (
        i + 1 < len(tokens)
        and tokens[i].token_type == TokenType.PARAMETER
        and tokens[i].text == "$"
        and tokens[i + 1].start == tokens[i].end + 1
        and tokens[i + 1].token_type != TokenType.NUMBER
        and re.fullmatch(r"[A-Za-z_]\w*", tokens[i + 1].text) is not None
    )


def _value(variables: dict[str, Any], name: str) -> Any:
    key = name.upper()
    if key not in variables:
        raise SnowflakeError(2211, f"SQL compilation error:\nSession variable '${key}' does not exist", "42000")
    return variables[key]
