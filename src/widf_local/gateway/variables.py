"""Session variables: `SET name = <expr>`, `$name` and `IDENTIFIER($name)`.

fakesnow keeps a variable as the text of its expression, so
`SET me = (SELECT CURRENT_USER())` would be re-run wherever `$me` appears -
and the account statements that use variables most (`GRANT ROLE r TO USER
IDENTIFIER($me)`) never reach fakesnow at all. The gateway evaluates the
expression once, as Snowflake does, keeps the value in the session, and
substitutes it before any statement is dispatched: `$name` becomes a literal,
`IDENTIFIER($name)` or `IDENTIFIER('name')` becomes the identifier itself.
Substitution works on sqlglot's tokens, so text inside strings and comments is
never touched.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from widf_local.gateway.errors import SnowflakeError
from widf_local.gateway.names import NAME, literal

_UNSET = re.compile(r"^\s*UNSET\s+(?P<names>\(?[\w\s,]+\)?)\s*;?\s*$", re.I)
_DIALECT = sqlglot.Dialect.get_or_raise("snowflake")


def assignment(statement: exp.Expr | None) -> tuple[str, exp.Expr] | None:
    """`SET name = expr` -> (NAME, expr); None for anything else (including ALTER SESSION SET)."""
    if not isinstance(statement, exp.Set) or statement.args.get("unset"):
        return None
    items = statement.expressions
    if len(items) != 1 or not isinstance(items[0], exp.SetItem) or not isinstance(eq := items[0].this, exp.EQ):
        return None
    if not isinstance(eq.this, exp.Column | exp.Identifier):
        return None
    return eq.this.name.upper(), eq.expression


def unset_names(sql: str) -> list[str] | None:
    if not (m := _UNSET.match(sql)):
        return None
    return [n.strip().upper() for n in m["names"].strip("()").split(",") if n.strip()]


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
