"""Data contracts (JSON Schema, Draft 2020-12) and the file-level quality gates.

Validators are compiled once per container. A record that breaks its
route's contract is quarantined with a reason a person can act on: which
field, what was expected. A file whose share of bad records is over the gate
loads nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from widf_loader.pipeline_config import Gates, Route

MAX_REASONS_PER_RECORD = 3
# Root keywords that judge a record one named property at a time (or not at all). A contract made of
# these alone judges a record exactly as it judges the record cut down to the properties it names, and
# jsonschema-rs converts every Python object it is given: nested fields no contract names cost as much
# to convert as the validation itself.
_PROPERTY_WISE_KEYWORDS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "definitions", "title", "description", "examples", "default",
     "deprecated", "readOnly", "writeOnly", "type", "required", "properties"}
)  # fmt: skip


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

