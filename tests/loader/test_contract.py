"""Contracts judge records exactly as jsonschema-rs judges the whole record, however they are checked."""

from __future__ import annotations

import jsonschema_rs
import pytest

from widf_loader.contract import ContractBook, named_properties
from widf_loader.pipeline_config import Condition, Route, Target

PROPERTY_WISE = {
    "type": "object",
    "required": ["id", "when"],
    "properties": {"id": {"type": "string", "minLength": 1}, "when": {"type": "string", "format": "date-time"}, "n": {"type": "integer"}},
}
WHOLE_RECORD = [
    {**PROPERTY_WISE, "additionalProperties": False},
    {**PROPERTY_WISE, "maxProperties": 3},
    {**PROPERTY_WISE, "not": {"required": ["nested"]}},
]
RECORDS = [
    {"id": "a", "when": "2026-11-27T10:00:00Z"},
    {"id": "a", "when": "2026-11-27T10:00:00Z", "n": 3, "nested": {"deep": [1, {"x": None}]}, "extra": "yes"},
    {"id": "a", "when": "yesterday"},
    {"id": "", "when": "2026-11-27T10:00:00Z"},
    {"id": "a", "when": "2026-11-27T10:00:00Z", "n": "three"},
    {"when": "2026-11-27T10:00:00Z"},
    [{"id": "a"}],
    42,
]


def route(contract: dict) -> Route:
    return Route("r", Target("t", "T"), Condition(), contract, "contract.json")


@pytest.mark.parametrize("contract", [PROPERTY_WISE, *WHOLE_RECORD], ids=["property-wise", "closed", "max-properties", "not"])
def test_the_compiled_check_agrees_with_validating_the_whole_record(contract):
    whole = jsonschema_rs.validator_for(contract, validate_formats=True)
    check = ContractBook((route(contract),)).check(route(contract))
    assert [check(r) for r in RECORDS] == [whole.is_valid(r) for r in RECORDS]


def test_only_contracts_that_judge_property_by_property_are_cut_down():
    assert named_properties(PROPERTY_WISE) == ("id", "when", "n")
    assert [named_properties(c) for c in WHOLE_RECORD] == [None, None, None]


@pytest.mark.parametrize(
    "contract",
    [
        PROPERTY_WISE,
        *WHOLE_RECORD,
        {"type": "object", "required": ["id"]},
        {"type": ["object", "null"], "properties": {"id": {"$ref": "#/$defs/id"}}, "$defs": {"id": {"type": "string", "minLength": 1}}},
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "string"}},
        },
        {"type": "array", "properties": {"id": {"type": "string"}}},
    ],
    ids=["property-wise", "closed", "max-properties", "not", "one-name", "ref-into-defs", "draft-07", "not-an-object"],
)
def test_checking_a_list_of_records_agrees_with_validating_each_whole_record(contract):
    whole = jsonschema_rs.validator_for(contract, validate_formats=True)
    check_all = ContractBook((route(contract),)).check_all(route(contract))
    complete = [r for r in RECORDS if isinstance(r, dict) and {"id", "when", "n"} <= r.keys()]
    without_n = [r for r in RECORDS if isinstance(r, dict) and "n" not in r]  # an optional property absent, valid or not
    for records in (RECORDS, complete, RECORDS[:1] * 3, without_n):  # some records lack a named property, none does, all do
        assert check_all(records) == [whole.is_valid(r) for r in records]


def test_the_shipped_contracts_judge_the_demos_events_together_as_they_judge_each_whole_record():
    """The default contracts name optional fields (page, amount, currency) that most events lack."""
    from widf_loader.pipeline_config import DEFAULT_CONFIG, read_pipeline_config
    from widf_local import samples

    config = read_pipeline_config(DEFAULT_CONFIG)
    book = ContractBook(config.routes)
    events = samples.sample_events(200, seed=5)
    broken = [{**events[0], "currency": "usd"}, {**events[1], "amount": -1}, {k: v for k, v in events[2].items() if k != "user_id"}]
    for contracted in (r for r in config.routes if r.contract is not None):
        whole = jsonschema_rs.validator_for(dict(contracted.contract), validate_formats=True)
        records = [*events, *broken]
        assert book.check_all(contracted)(records) == [whole.is_valid(r) for r in records]
