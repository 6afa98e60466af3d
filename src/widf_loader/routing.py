"""Which route takes a record: the first whose conditions hold, in file order.

The last route has no conditions, so every record has exactly one route.
Conditions on the file (key prefix, file name) are decided once per file;
only conditions on record fields are evaluated per record.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

from widf_loader.events import FileRef
from widf_loader.pipeline_config import Condition, Route

_MISSING = object()
_SCALARS = (str, int, float, bool)
RecordTest = Callable[[Any], bool]


def field_value(record: Any, path: str) -> Any:
    """The value at a dotted path (`device.os`), or a marker when any part is absent."""
    value = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def field_or_none(record: Any, path: str) -> Any:
    value = field_value(record, path)
    return None if value is _MISSING else value


def file_matches(condition: Condition, ref: FileRef) -> bool:
    if condition.key_prefix is not None and not ref.key.startswith(condition.key_prefix):
        return False
    return condition.filename is None or fnmatchcase(ref.key.rsplit("/", 1)[-1], condition.filename)


def record_test(condition: Condition) -> RecordTest | None:
    """A predicate over records for the condition's field part; None when it has none."""
    if condition.field is None:
        return None
    path, one_of, equals = condition.field, condition.one_of, condition.equals
    if "." not in path:  # the common case, kept to one dict lookup
        if one_of is not None:
            return lambda record: type(record) is dict and record.get(path, _MISSING) in one_of
        return lambda record: type(record) is dict and record.get(path, _MISSING) == equals
    if one_of is not None:
        return lambda record: field_value(record, path) in one_of
    return lambda record: field_value(record, path) == equals


def routes_for_file(routes: tuple[Route, ...], ref: FileRef) -> list[tuple[RecordTest | None, Route]]:
    """The routes that can take records of this file, each with its per-record test."""
    return [(record_test(route.when), route) for route in routes if file_matches(route.when, ref)]


def by_one_field(candidates: list[tuple[RecordTest | None, Route]]) -> tuple[str, dict[Any, int], int] | None:
    """The candidates as one dict lookup, when they allow it: (field, {value: position}, fallback position).

    That is when every route before the first unconditional one tests the same top-level field
    for (one of) some scalar values. A dict lookup finds a value by hash and ==, as the tests
    compare by ==, and the first route to name a value keeps it.
    """
    field: str | None = None
    positions: dict[Any, int] = {}
    for position, (test, route) in enumerate(candidates):
        if test is None:
            return (field, positions, position) if field is not None else None
        when = route.when
        values = when.one_of if when.one_of is not None else (when.equals,)
        if when.field is None or "." in when.field or field not in (None, when.field) or not all(type(v) in _SCALARS for v in values):
            return None
        field = when.field
        for value in values:
            positions.setdefault(value, position)
    return None


def choose(candidates: list[tuple[RecordTest | None, Route]], record: Any) -> Route:
    for test, route in candidates:
        if test is None or test(record):
            return route
    raise AssertionError("the last route takes every record")  # guaranteed by pipeline_config


def choose_route(routes: tuple[Route, ...], ref: FileRef, record: Any) -> Route:
    return choose(routes_for_file(routes, ref), record)
