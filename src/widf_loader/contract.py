"""Data contracts (JSON Schema, Draft 2020-12) and the file-level quality gates.

Validators are compiled once per container. A record that breaks its
route's contract is quarantined with a reason a person can act on: which
field, what was expected. A file whose share of bad records is over the gate
loads nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from widf_loader.pipeline_config import Gates, Route

MAX_REASONS_PER_RECORD = 3


class ContractBook:
    """One compiled validator per route with a contract."""

    def __init__(self, routes: tuple[Route, ...]):
        self._validators: dict[str, Any] = {
            route.name: jsonschema_rs.validator_for(dict(route.contract), validate_formats=True)
            for route in routes
            if route.contract is not None
        }

    def check(self, route: Route) -> Callable[[Any], bool] | None:
        """The route's compiled `is_valid`, or None when the route has no contract."""
        validator = self._validators.get(route.name)
        return validator.is_valid if validator is not None else None

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

