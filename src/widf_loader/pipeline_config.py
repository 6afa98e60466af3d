"""The pipeline configuration: targets, routes, contracts, gates, enrichment.

One TOML file a data engineer reads and reviews in a pull request (path in
WIDF_PIPELINE_CONFIG; the default ships in `widf_loader/defaults/`). It is
checked completely at start-up; every problem is reported as
`file:line: what is wrong`, and the function does not start with a bad one.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from widf_loader.config import ConfigError, identifier

DEFAULT_CONFIG = Path(__file__).resolve().parent / "defaults" / "pipeline.toml"
_COLUMN_TYPE = re.compile(
    r"^(VARCHAR(\(\d{1,8}\))?|STRING|TEXT|NUMBER(\(\d{1,2}(,\s*\d{1,2})?\))?|INTEGER|FLOAT|BOOLEAN|DATE|"
    r"TIMESTAMP_(NTZ|LTZ|TZ)|VARIANT)$",
    re.I,
)
_FIELD_PATH = re.compile(r"^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*$")
_HOOK = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class PipelineConfigError(ConfigError):
    """The pipeline configuration is invalid; the message names the file and line."""


@dataclass(frozen=True)
class TypedColumn:
    """A column of a target table, filled from a field of the record."""

    name: str
    field: str  # dotted path into the record
    type: str


@dataclass(frozen=True)
class Target:
    name: str
    table: str
    columns: tuple[TypedColumn, ...] = ()


@dataclass(frozen=True)
class Condition:
    """All given parts must hold; a route without conditions matches everything."""

    key_prefix: str | None = None
    filename: str | None = None  # glob, matched against the key's last part
    field: str | None = None
    equals: Any = None
    one_of: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Route:
    name: str
    target: Target
    when: Condition
    contract: Mapping[str, Any] | None  # the JSON Schema document, or None
    contract_path: str | None = None


@dataclass(frozen=True)
class Gates:
    max_reject_ratio: float = 0.1
    reject_empty_files: bool = True


@dataclass(frozen=True)
class Enrichment:
    hooks: tuple[str, ...] = ()
    time_budget_seconds: float = 5.0


@dataclass(frozen=True)
class PipelineConfig:
    routes: tuple[Route, ...]
    gates: Gates = Gates()
    enrichment: Enrichment = Enrichment()
    rejected_records_table: str = "REJECTED_RECORDS"
    quarantine_prefix: str | None = None
    source: str = "(built in)"
    targets: tuple[Target, ...] = field(default=())

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.table for t in self.targets))


def load_pipeline_config(env: Mapping[str, str] | None = None) -> PipelineConfig:
    env = os.environ if env is None else env
    return read_pipeline_config(Path(env.get("WIDF_PIPELINE_CONFIG") or DEFAULT_CONFIG))


def read_pipeline_config(path: Path) -> PipelineConfig:
    try:
        text = path.read_text()
    except OSError as e:
        raise PipelineConfigError(f"{path}: cannot read the pipeline configuration ({e.strerror}).") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PipelineConfigError(f"{path}: not valid TOML: {e}") from None
    return _Parser(path, text).config(document)


class _Parser:
    """Builds a PipelineConfig, naming the line of whatever it refuses."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def fail(self, problem: str, near: str | None = None) -> PipelineConfigError:
        line = next((i for i, text in enumerate(self.lines, 1) if near and near in text), None)
        return PipelineConfigError(f"{self.path}{f':{line}' if line else ''}: {problem}")

    def known_keys(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        if unknown := sorted(set(table) - allowed):
            raise self.fail(f"unknown setting '{unknown[0]}' in {where} (allowed: {', '.join(sorted(allowed))})", unknown[0])

    def identifier(self, value: Any, what: str) -> str:
        try:
            return identifier(str(value), what)
        except ConfigError as e:
            raise self.fail(str(e), str(value)) from None

    def config(self, doc: Mapping[str, Any]) -> PipelineConfig:
        self.known_keys(doc, {"gates", "quarantine", "enrichment", "targets", "routes"}, "the file")
        targets = {name: self.target(name, spec) for name, spec in (doc.get("targets") or {}).items()}
        if not targets:
            raise self.fail("no [targets.NAME] table is defined; a route needs somewhere to load")
        routes = tuple(self.route(i, spec, targets) for i, spec in enumerate(doc.get("routes") or []))
        if not routes:
            raise self.fail("no [[routes]] are defined")
        if routes[-1].when != Condition():
            raise self.fail(
                f"the last route ('{routes[-1].name}') must have no 'when': it is the default for records no other route takes",
                f"'{routes[-1].name}'",
            )
        return PipelineConfig(
            routes=routes,
            gates=self.gates(doc.get("gates") or {}),
            enrichment=self.enrichment(doc.get("enrichment") or {}),
            source=str(self.path),
            targets=tuple(targets.values()),
            **self.quarantine(doc.get("quarantine") or {}),
        )

    def target(self, name: str, spec: Mapping[str, Any]) -> Target:
        self.known_keys(spec, {"table", "columns"}, f"[targets.{name}]")
        if "table" not in spec:
            raise self.fail(f"[targets.{name}] needs a table", f"[targets.{name}]")
        columns = []
        for column, definition in (spec.get("columns") or {}).items():
            if not isinstance(definition, Mapping) or set(definition) != {"field", "type"}:
                raise self.fail(f'column {column} of [targets.{name}] must be {{ field = "...", type = "..." }}', column)
            if not _FIELD_PATH.match(str(definition["field"])):
                raise self.fail(f"'{definition['field']}' is not a field path (name or name.name)", str(definition["field"]))
            if not _COLUMN_TYPE.match(str(definition["type"])):
                raise self.fail(
                    f"'{definition['type']}' is not a column type this loader writes (VARCHAR, NUMBER(p,s), FLOAT, BOOLEAN, DATE, TIMESTAMP_*, VARIANT)",
                    str(definition["type"]),
                )
            columns.append(TypedColumn(self.identifier(column, "column"), str(definition["field"]), str(definition["type"]).upper()))
        return Target(name=name, table=self.identifier(spec["table"], f"table of [targets.{name}]"), columns=tuple(columns))

    def route(self, index: int, spec: Mapping[str, Any], targets: Mapping[str, Target]) -> Route:
        name = str(spec.get("name") or f"route {index + 1}")
        self.known_keys(spec, {"name", "when", "target", "contract"}, f"route '{name}'")
        target_name = spec.get("target")
        if target_name not in targets:
            raise self.fail(f"route '{name}' goes to unknown target '{target_name}' (defined: {', '.join(targets)})", f"{target_name}")
        contract, contract_path = self.contract(spec.get("contract"), name)
        return Route(
            name=name,
            target=targets[str(target_name)],
            when=self.condition(spec.get("when") or {}, name),
            contract=contract,
            contract_path=contract_path,
        )

    def condition(self, when: Mapping[str, Any], route: str) -> Condition:
        self.known_keys(when, {"key_prefix", "filename", "field", "equals", "in"}, f"the 'when' of route '{route}'")
        if ("equals" in when or "in" in when) != ("field" in when):
            raise self.fail(f"route '{route}': 'field' goes with 'equals' or 'in'", f"{route}")
        if "field" in when and not _FIELD_PATH.match(str(when["field"])):
            raise self.fail(f"'{when['field']}' is not a field path", str(when["field"]))
        one_of = when.get("in")
        return Condition(
            key_prefix=when.get("key_prefix"),
            filename=when.get("filename"),
            field=when.get("field"),
            equals=when.get("equals"),
            one_of=tuple(one_of) if one_of is not None else None,
        )

    def contract(self, reference: Any, route: str) -> tuple[Mapping[str, Any] | None, str | None]:
        if reference is None:
            return None, None
        import jsonschema_rs
        import orjson

        path = (self.path.parent / str(reference)).resolve()
        try:
            schema = orjson.loads(path.read_bytes())
        except OSError as e:
            raise self.fail(f"route '{route}': cannot read contract {reference} ({e.strerror})", str(reference)) from None
        except orjson.JSONDecodeError as e:
            raise self.fail(f"route '{route}': contract {reference} is not JSON ({e})", str(reference)) from None
        try:
            jsonschema_rs.validator_for(schema, validate_formats=True)
        except Exception as e:  # noqa: BLE001 - the validator's own schema errors have no common base we can name
            raise self.fail(
                f"route '{route}': contract {reference} does not compile: {' '.join(str(e).split())[:300]}", str(reference)
            ) from None
        return schema, str(reference)

    def gates(self, spec: Mapping[str, Any]) -> Gates:
        self.known_keys(spec, {"max_reject_ratio", "reject_empty_files"}, "[gates]")
        ratio = spec.get("max_reject_ratio", Gates.max_reject_ratio)
        if not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
            raise self.fail(f"gates.max_reject_ratio must be between 0 and 1, not {ratio!r}", "max_reject_ratio")
        return Gates(max_reject_ratio=float(ratio), reject_empty_files=bool(spec.get("reject_empty_files", True)))

    def enrichment(self, spec: Mapping[str, Any]) -> Enrichment:
        self.known_keys(spec, {"hooks", "time_budget_seconds"}, "[enrichment]")
        hooks = tuple(str(h) for h in spec.get("hooks") or ())
        if bad := [h for h in hooks if not _HOOK.match(h)]:
            raise self.fail(f"enrichment hook '{bad[0]}' is not module:function", bad[0])
        budget = spec.get("time_budget_seconds", Enrichment.time_budget_seconds)
        if not isinstance(budget, int | float) or budget <= 0:
            raise self.fail(f"enrichment.time_budget_seconds must be positive, not {budget!r}", "time_budget_seconds")
        return Enrichment(hooks=hooks, time_budget_seconds=float(budget))

    def quarantine(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        self.known_keys(spec, {"rejected_records_table", "copy_rejected_files_to"}, "[quarantine]")
        prefix = spec.get("copy_rejected_files_to") or None
        if prefix is not None and (not str(prefix).endswith("/") or str(prefix).startswith("/")):
            raise self.fail(
                f"quarantine.copy_rejected_files_to must be a key prefix like 'quarantine/', not {prefix!r}", "copy_rejected_files_to"
            )
        return {
            "rejected_records_table": self.identifier(
                spec.get("rejected_records_table", "REJECTED_RECORDS"), "quarantine.rejected_records_table"
            ),
            "quarantine_prefix": prefix,
        }
