"""Routing, contracts, enrichment and gates, on one file at a time (no Snowflake needed)."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

import enrichment_hooks
from helpers import REPOSITORY, TESTS
from widf_loader.config import ReadLimits
from widf_loader.enrich import EnrichmentBudgetExceeded
from widf_loader.events import FileRef
from widf_loader.pipeline import Pipeline, Tally
from widf_loader.pipeline_config import DEFAULT_CONFIG, read_pipeline_config
from widf_local import samples

TYPED = TESTS / "configs" / "typed_purchases.toml"
ORIGINAL_DEMO_EVENTS = TESTS / "fixtures" / "original_demo_events.json"
STRICT = REPOSITORY / "examples" / "strict-contracts" / "pipeline.toml"


def plan(config_path: Path, events: list, key: str = "incoming/f.json", **changes):
    config = read_pipeline_config(config_path)
    if changes:
        from dataclasses import replace

        config = replace(config, **changes)
    return Pipeline(config).plan(io.BytesIO(orjson.dumps(events)), FileRef("b", key), ReadLimits())


def with_bad_purchases(count: int) -> tuple[list[dict], int, int]:
    """Sample events where one purchase has a negative amount and another none; returns their indices."""
    events = samples.sample_events(count, seed=4)
    negative, missing = [i for i, e in enumerate(events) if e["action"] == "purchase"][:2]
    events[negative] = {**events[negative], "amount": -5}
    events[missing] = {k: v for k, v in events[missing].items() if k != "amount"}
    return events, negative, missing


def test_default_configuration_loads_every_sample_event():
    tally, gate = plan(DEFAULT_CONFIG, samples.sample_events(20))
    assert gate.passed and tally.per_table == {"RAW_DATA": 20} and tally.rejected == 0


def test_the_original_demos_events_load_by_default_with_no_rejection():
    events = orjson.loads(ORIGINAL_DEMO_EVENTS.read_bytes())
    assert [e["action"] for e in events].count("purchase") == 4 and not any("currency" in e for e in events)
    tally, gate = plan(DEFAULT_CONFIG, events)
    assert gate.passed and tally.per_table == {"RAW_DATA": 20} and (tally.rejected, tally.rejections) == (0, [])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "usd"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": 978}, "currency"),
        ({"amount": -0.01}, "amount"),
        ({"amount": "12.50"}, "amount"),
        ({"timestamp": "17/01/2026"}, "timestamp"),
    ],
)
def test_an_optional_field_is_checked_when_present(change, field):
    events = orjson.loads(ORIGINAL_DEMO_EVENTS.read_bytes())
    purchase = next(i for i, e in enumerate(events) if e["action"] == "purchase")
    events[purchase] = {**events[purchase], **change}
    tally, gate = plan(DEFAULT_CONFIG, events)
    [(index, route, reason)] = tally.rejections
    assert (index, route, gate.passed) == (purchase, "purchases", True)
    assert reason.startswith(f"contract 'contracts/purchase.schema.json' of route 'purchases': {field}: "), reason


def test_a_page_view_with_a_currency_is_checked_too():
    events = orjson.loads(ORIGINAL_DEMO_EVENTS.read_bytes())
    events[0] = {**events[0], "currency": "dollars"}
    tally, _ = plan(DEFAULT_CONFIG, events)
    assert [(i, route) for i, route, _ in tally.rejections] == [(0, "events")]
    assert "currency: " in tally.rejections[0][2]


def test_the_strict_example_refuses_what_the_default_accepts():
    events = orjson.loads(ORIGINAL_DEMO_EVENTS.read_bytes())
    tally, gate = plan(STRICT, events)
    purchases = [i for i, e in enumerate(events) if e["action"] == "purchase"]
    assert [i for i, _, _ in tally.rejections] == purchases
    assert all('"currency" is a required property' in reason for _, _, reason in tally.rejections)
    assert not gate.passed and "4 of 20 records (20%) were rejected, over the 1% gate" in gate.reason


def test_the_strict_example_loads_events_that_keep_its_promises():
    events = [{**e, "currency": "EUR"} if e["action"] == "purchase" else e for e in orjson.loads(ORIGINAL_DEMO_EVENTS.read_bytes())]
    tally, gate = plan(STRICT, events)
    assert gate.passed and (tally.per_table, tally.rejected) == ({"RAW_DATA": 20}, 0)
    events[1] = {**events[1], "page": "home"}  # a page must be a path
    tally, gate = plan(STRICT, events)
    assert [(i, route) for i, route, _ in tally.rejections] == [(1, "events")] and not gate.passed


def test_bad_purchases_are_quarantined_with_a_reason_naming_the_field():
    events, negative, missing = with_bad_purchases(40)
    tally, gate = plan(DEFAULT_CONFIG, events)
    assert gate.passed and tally.per_table == {"RAW_DATA": 38}
    reasons = {index: reason for index, _, reason in tally.rejections}
    assert "amount: -5 is less than the minimum of 0" in reasons[negative]
    assert '"amount" is a required property' in reasons[missing]


def test_over_the_reject_gate_the_whole_file_is_refused():
    events = samples.sample_events(10, seed=4)
    for index in (3, 7):
        del events[index]["user_id"]
    tally, gate = plan(DEFAULT_CONFIG, events)
    assert not gate.passed
    assert "2 of 10 records (20%) were rejected, over the 10% gate (gates.max_reject_ratio); first: record 3:" in gate.reason


def test_an_empty_file_is_refused():
    tally, gate = plan(DEFAULT_CONFIG, [])
    assert not gate.passed and "holds no records" in gate.reason


def test_routes_by_field_key_prefix_and_filename_with_typed_columns():
    events = samples.sample_events(12, seed=8)
    tally, _ = plan(TYPED, events)
    purchases = sum(e["action"] == "purchase" for e in events)
    assert tally.per_table == {"PURCHASES": purchases, "RAW_DATA": len(events) - purchases}

    pipeline = Pipeline(read_pipeline_config(TYPED))
    purchase = next(e for e in events if e["action"] == "purchase")
    [(statement, [row])] = list(pipeline.batches(FileRef("b", "k"), [purchase], "L", ReadLimits(), 10, Tally()))
    assert statement.startswith("INSERT INTO PURCHASES") and "TRY_CAST(r.value[3]::VARCHAR AS NUMBER(18,2))" in statement
    [[index, record, *typed]] = orjson.loads(row[-1].json)  # the batch's records, one JSON array
    assert index == 0 and {k: record[k] for k in purchase} == purchase  # enriched, otherwise as read
    assert typed == [purchase["user_id"], str(purchase["amount"]), purchase["device"]["os"]]
    from widf_loader.routing import choose_route

    late = FileRef("b", "incoming/late/x.ndjson")
    assert choose_route(pipeline.config.routes, late, {"action": "page_view"}).name == "late files"
    assert choose_route(pipeline.config.routes, FileRef("b", "incoming/late/x.json"), {"action": "page_view"}).name == "everything else"


def test_a_hook_enriches_and_its_api_is_asked_once_per_user_per_file():
    enrichment_hooks.LOOKUPS.clear()
    events = samples.sample_events(30, seed=6)
    pipeline = Pipeline(read_pipeline_config(TYPED))
    tally = Tally()
    batches = list(pipeline.batches(FileRef("b", "incoming/f.json"), events, "L", ReadLimits(), 1000, tally))
    payloads = [element[1] for _, rows in batches for row in rows for element in orjson.loads(row[-1].json)]
    assert {p["region"] for p in payloads} <= {"emea", "amer"} and all(p["source_key"] == "incoming/f.json" for p in payloads)
    assert sorted(enrichment_hooks.LOOKUPS) == sorted({e["user_id"] for e in events})
    assert tally.records == 30


def test_a_hook_that_raises_rejects_the_record_with_its_message():
    from dataclasses import replace

    config = read_pipeline_config(DEFAULT_CONFIG)
    config = replace(
        config,
        enrichment=replace(config.enrichment, hooks=("enrichment_hooks:refuse_mobile",)),
        gates=replace(config.gates, max_reject_ratio=1.0),
    )
    events = samples.sample_events(20, seed=3)
    tally, _ = Pipeline(config).plan(io.BytesIO(orjson.dumps(events)), FileRef("b", "k"), ReadLimits())
    mobile = [i for i, e in enumerate(events) if e["device"]["type"] == "mobile"]
    assert [i for i, _, _ in tally.rejections] == mobile
    assert all("enrichment hook 'enrichment_hooks:refuse_mobile': mobile events are not loaded" in why for _, _, why in tally.rejections)


def test_a_slow_hook_cannot_eat_the_deadline():
    from dataclasses import replace

    config = read_pipeline_config(DEFAULT_CONFIG)
    config = replace(config, enrichment=replace(config.enrichment, hooks=("enrichment_hooks:slow",), time_budget_seconds=0.2))
    with pytest.raises(EnrichmentBudgetExceeded, match=r"enrichment hooks took over 0.2s"):
        Pipeline(config).plan(io.BytesIO(orjson.dumps(samples.sample_events(50))), FileRef("b", "k"), ReadLimits())


def test_routing_by_one_fields_value_takes_the_route_the_conditions_name():
    from widf_loader.pipeline_config import Condition, PipelineConfig, Route, Target
    from widf_loader.routing import choose_route

    targets = [Target(name, name) for name in ("BUYS", "RETURNS", "OTHER")]
    routes = (
        Route("buys", targets[0], Condition(field="action", equals="purchase"), None),
        Route("returns", targets[1], Condition(field="action", one_of=("refund", 1, True, "purchase")), None),
        Route("rest", targets[2], Condition(), None),
    )
    pipeline = Pipeline(PipelineConfig(routes=routes, targets=tuple(targets)))
    actions = ["purchase", "refund", 1, 1.0, True, False, 0, None, ["purchase"], {"a": 1}, "PURCHASE"]
    records = [{"action": a} for a in actions] + [{"other": 1}, ["purchase"], "purchase", 42]
    tally = Tally()
    for _ in pipeline.batches(FileRef("b", "k"), records, "L", ReadLimits(), 1000, tally):
        pass
    expected: dict[str, int] = {}
    for record in records:
        table = choose_route(routes, FileRef("b", "k"), record).target.table
        expected[table] = expected.get(table, 0) + 1
    assert tally.per_table == expected == {"BUYS": 1, "RETURNS": 4, "OTHER": 10}
