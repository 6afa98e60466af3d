"""Which route takes a record: the first whose conditions hold, in file order.

The last route has no conditions, so every record has exactly one route.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from widf_loader.events import FileRef
from widf_loader.pipeline_config import Condition, Route

_MISSING = object()


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


def matches(condition: Condition, ref: FileRef, record: Any) -> bool:
    if condition.key_prefix is not None and not ref.key.startswith(condition.key_prefix):
        return False
    if condition.filename is not None and not fnmatchcase(ref.key.rsplit("/", 1)[-1], condition.filename):
        return False
    if condition.field is not None:
        value = field_value(record, condition.field)
        if condition.one_of is not None:
            return value in condition.one_of
        return value == condition.equals
    return True


def choose_route(routes: tuple[Route, ...], ref: FileRef, record: Any) -> Route:
    return next(route for route in routes if matches(route.when, ref, record))
