"""Data contracts (JSON Schema, Draft 2020-12) and the file-level quality gates.

Validators are compiled once per container. A record that breaks its
route's contract is quarantined with a reason a person can act on: which
field, what was expected. A file whose share of bad records is over the gate
loads nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import jsonschema_rs

from widf_loader.pipeline_config import Gates, Route
from widf_loader.struct_contract import StructContract, admits_objects, struct_contract

MAX_REASONS_PER_RECORD = 3
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
# Root keywords that judge a record one named property at a time (or not at all). A contract made of
# these alone judges a record exactly as it judges the record cut down to the properties it names, and
# jsonschema-rs converts every Python object it is given: nested fields no contract names cost as much
# to convert as the validation itself.
_PROPERTY_WISE_KEYWORDS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "definitions",
        "title",
        "description",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "type",
        "required",
        "properties",
    }
)


class ContractBook:
    """One compiled validator per route with a contract."""

    def __init__(self, routes: tuple[Route, ...]):
        self._validators: dict[str, Any] = {
            route.name: jsonschema_rs.validator_for(dict(route.contract), validate_formats=True)
            for route in routes
            if route.contract is not None
        }
        self._named: dict[str, tuple[str, ...] | None] = {
            route.name: named_properties(route.contract) for route in routes if route.contract is not None
        }
        self._structs = {
            route.name: compiled
            for route in routes
            if route.contract is not None
            and (names := self._named[route.name])
            and (compiled := struct_contract(route.contract, names)) is not None
        }
        self._by_position: dict[str, Any] = {
            route.name: jsonschema_rs.validator_for(schema, validate_formats=True)
            for route in routes
            if route.contract is not None and (schema := by_position(route.contract, self._named[route.name])) is not None
        }

    def check(self, route: Route) -> Callable[[Any], bool] | None:
        """The route's compiled `is_valid`, or None when the route has no contract."""
        validator = self._validators.get(route.name)
        if validator is None:
            return None
        is_valid, names = validator.is_valid, self._named[route.name]
        if names is None:
            return is_valid

        def keeps_contract(record: Any) -> bool:
            if type(record) is not dict:
                return is_valid(record)
            return is_valid({name: record[name] for name in names if name in record})

        return keeps_contract

    def check_all(self, route: Route) -> Callable[[list[Any]], list[bool]] | None:
        """`check` over a list of records at once, or None when the route has no contract.

        jsonschema-rs spends most of a small record's time converting it. A contract msgspec can judge
        is judged by a Struct first (see widf_loader.struct_contract); else, since a tuple of the named
        values converts in half the time of a dict of them, when every record has every named
        property the values are judged by position (see by_position).
        """
        validator = self._validators.get(route.name)
        if validator is None:
            return None
        is_valid, names = validator.is_valid, self._named[route.name]
        if names is None:
            return lambda records: list(map(is_valid, records))
        one_by_one = self.check(route)
        assert one_by_one is not None  # the route has a validator
        if (compiled := self._structs.get(route.name)) is not None:
            accepts_all = compiled.accepts_all

            def check_by_struct(records: list[Any]) -> list[bool]:
                verdicts = accepts_all(records)
                if all(verdicts):
                    return verdicts
                return [verdict or one_by_one(r) for verdict, r in zip(verdicts, records, strict=True)]  # the last word

            return check_by_struct
        positional = self._by_position.get(route.name)
        if positional is None:
            return lambda records: list(map(one_by_one, records))
        values, is_valid_by_position = itemgetter(*positional_names(names)), positional.is_valid
        every_name = frozenset(names)

        def check_all(records: list[Any]) -> list[bool]:
            try:
                rows = list(map(values, records))
            except (KeyError, TypeError):  # a record lacks a named property, or is no object: sort them out
                return [is_valid_by_position(values(r)) if type(r) is dict and every_name <= r.keys() else one_by_one(r) for r in records]
            return list(map(is_valid_by_position, rows))

        return check_all

    def struct(self, route: Route) -> StructContract | None:
        """The route's contract as a Struct, when msgspec can judge it."""
        return self._structs.get(route.name)

    def violations(self, route: Route, record: Any) -> str | None:
        """None if the record keeps its route's contract, else a readable reason."""
        validator = self._validators.get(route.name)
        if validator is None or validator.is_valid(record):
            return None
        reasons = []
        for error in validator.iter_errors(record):
            where = "/".join(str(p) for p in error.instance_path) or "(record)"
            reasons.append(f"{where}: {error.message}")
            if len(reasons) == MAX_REASONS_PER_RECORD:
                break
        return f"contract '{route.contract_path}' of route '{route.name}': " + "; ".join(reasons)


def named_properties(contract: Any) -> tuple[str, ...] | None:
    """The only properties a contract looks at, when it judges them one by one; else None."""
    if not isinstance(contract, Mapping) or not contract.keys() <= _PROPERTY_WISE_KEYWORDS:
        return None
    properties, required = contract.get("properties", {}), contract.get("required", [])
    if not isinstance(properties, dict) or not isinstance(required, list):
        return None
    return tuple(dict.fromkeys([*properties, *required]))


def by_position(contract: Any, names: tuple[str, ...] | None) -> dict[str, Any] | None:
    """The contract as a schema for the tuple of a record's named values, in `names` order; else None.

    For a record that has every named property, `required` holds and `properties` judges each value
    on its own, so a record keeps the contract exactly when the tuple keeps `prefixItems` of the same
    subschemas. Everything else stays where it was (`$defs`, even `properties`), so references into
    the contract resolve as before; `type` must let an object through, and the draft must know
    prefixItems (2020-12, also the default).
    """
    if not names:
        return None
    draft = contract.get("$schema", DRAFT_2020_12)
    if not isinstance(draft, str) or draft.rstrip("#") != DRAFT_2020_12:
        return None
    if not admits_objects(contract):
        return None
    properties = contract.get("properties", {})
    return {**contract, "type": "array", "prefixItems": [properties.get(name, True) for name in positional_names(names)]}


def positional_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """The names whose values make the tuple: one name twice, as itemgetter of one name returns no tuple."""
    return names * 2 if len(names) == 1 else names


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str | None = None


def judge_file(gates: Gates, name: str, records: int, rejected: int, first_reason: str | None) -> GateDecision:
    """Whether a file loads, once all its records have been seen."""
    if records == 0:
        if gates.reject_empty_files:
            return GateDecision(False, f"{name}: the file holds no records (gates.reject_empty_files)")
        return GateDecision(True)
    ratio = rejected / records
    if ratio > gates.max_reject_ratio:
        return GateDecision(
            False,
            f"{name}: {rejected} of {records} records ({ratio:.0%}) were rejected, over the "
            f"{gates.max_reject_ratio:.0%} gate (gates.max_reject_ratio); first: {first_reason}",
        )
    return GateDecision(True)
