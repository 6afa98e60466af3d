"""The pipeline as the loader tests drive it, without Snowflake: its batches for a list of records or a
reader's chunks, the configurations they run under, and what those batches would load."""

from __future__ import annotations

from dataclasses import replace

import orjson

from widf_loader.config import ReadLimits
from widf_loader.events import FileRef
from widf_loader.pipeline import Pipeline, Tally
from widf_loader.pipeline_config import DEFAULT_CONFIG, Condition, PipelineConfig, Route, Target, read_pipeline_config
from widf_loader.warehouse import RecordArrayJson

REF = FileRef("b", "incoming/f.ndjson")


def run(pipeline: Pipeline, records, batch_rows: int, limits: ReadLimits | None = None) -> tuple[list, Tally]:
    tally = Tally()
    batches = list(pipeline.batches(REF, records, "L", limits or ReadLimits(), batch_rows, tally))
    return batches, tally


def no_contracts(config: PipelineConfig) -> PipelineConfig:
    return replace(config, routes=tuple(replace(r, contract=None, contract_path=None) for r in config.routes))


def two_tables() -> PipelineConfig:
    config = read_pipeline_config(DEFAULT_CONFIG)
    buys = Target("buys", "BUYS")
    purchases = replace(config.routes[0], target=buys)
    views = Route("views", buys, Condition(field="action", one_of=("page_view", 1)), None)
    return replace(config, routes=(views, purchases, *config.routes[1:]), targets=(*config.targets, buys))


CONFIGS = {
    "default": read_pipeline_config(DEFAULT_CONFIG),
    "no-contracts": no_contracts(read_pipeline_config(DEFAULT_CONFIG)),
    "two-tables": two_tables(),
    "one-route": replace(read_pipeline_config(DEFAULT_CONFIG), routes=read_pipeline_config(DEFAULT_CONFIG).routes[1:]),
}


def loaded(batches: list) -> dict:
    """What each statement's batches load, whatever their boundaries: the bound values, each array's elements read."""
    out: dict = {}
    for statement, rows in batches:
        context, elements = out.setdefault(statement, (set(), []))
        for row in rows:
            context.add(tuple(v for v in row if not isinstance(v, RecordArrayJson)))
            elements += [e for v in row if isinstance(v, RecordArrayJson) for e in orjson.loads(v.json)]
    return out


def ndjson(records: list, line_end: bytes = b"\n") -> bytes:
    return b"".join(orjson.dumps(r) + line_end for r in records)
