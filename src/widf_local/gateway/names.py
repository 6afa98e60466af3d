"""Snowflake identifiers and literals: how names are resolved and written back."""

from __future__ import annotations

import re

PART = r"(?:\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_$]*)"
NAME = re.compile(rf"{PART}(?:\.{PART})*")
_PLAIN = re.compile(r"[A-Z_][A-Z0-9_$]*")


def normalise(name: str) -> str:
    """Snowflake identifier resolution: unquoted folds to upper case, quoted is kept."""
    if name.startswith('"') and name.endswith('"'):
        return name[1:-1].replace('""', '"')
    return name.upper()


def parts(name: str) -> list[str]:
    """`db.schema."Mixed"` -> ['DB', 'SCHEMA', 'Mixed']."""
    return [normalise(p) for p in re.findall(PART, name)]


def qualified(name: str, *context: str | None) -> str:
    """A name completed with the current database and schema, as a dotted key."""
    given = parts(name)
    missing = [c for c in context[: max(0, len(context) + 1 - len(given))] if c]
    return ".".join([*missing, *given])


def written(name: str) -> str:
    """A resolved name as SQL text: plain when it can be, quoted otherwise."""
    return name if _PLAIN.fullmatch(name) else '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def unquote_literal(value: str) -> str:
    return value[1:-1].replace("''", "'") if value.startswith("'") else value


def like(pattern: str | None) -> re.Pattern | None:
    """SHOW ... LIKE '<pattern>': case-insensitive, % and _ wildcards."""
    if pattern is None:
        return None
    text = unquote_literal(pattern)
    return re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in text), re.I | re.S)
