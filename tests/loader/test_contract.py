"""Contracts judge records exactly as jsonschema-rs judges the whole record, however they are checked."""

from __future__ import annotations

import json

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


# Values on both sides of every keyword msgspec judges (see widf_loader.struct_contract), and of the types.
EDGE_VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    0.5,
    -0.0,
    2**53,
    2**53 + 1,
    -(2**60),
    1e300,
    "",
    "a",
    "ab",
    "é",
    "USD",
    "usd",
    "US",
    "USD\n",
]
EDGE_VALUES += ["2026-11-27T10:00:00Z", "2026-11-27T10:00:00", "2026-02-30T10:00:00Z", "purchase", "view", [], [1], {}, {"a": 1}]
STRUCT_CONTRACTS = {
    "shipped-event": "event.schema.json",
    "shipped-purchase": "purchase.schema.json",
    "every-keyword": {
        "type": "object",
        "required": ["s", "n"],
        "properties": {
            "s": {"type": "string", "minLength": 1, "maxLength": 2, "title": "annotations are no constraint"},
            "n": {"type": "number", "minimum": 0, "exclusiveMaximum": 2**53},
            "i": {"type": ["integer", "null"], "exclusiveMinimum": -1, "maximum": 1},
            "either": {"type": ["string", "integer", "boolean"], "minLength": 2, "minimum": 1},
            "e": {"enum": ["purchase", "view"]},
            "k": {"type": "integer", "const": 1},
            "t": {"type": "string", "format": "date-time"},
            "p": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "anything": True,
            "list": {"type": "array"},
            "map": {"type": "object"},
        },
    },
}


@pytest.mark.parametrize("contract", list(STRUCT_CONTRACTS.values()), ids=list(STRUCT_CONTRACTS))
def test_a_contract_judged_by_its_struct_agrees_with_jsonschema_rs_on_every_edge_value(contract):
    """Each named property takes every edge value in turn, in records with and without the others."""
    from widf_loader.pipeline_config import DEFAULT_CONFIG
    from widf_loader.struct_contract import struct_contract

    if isinstance(contract, str):
        contract = json.loads((DEFAULT_CONFIG.parent / "contracts" / contract).read_text())
    names = named_properties(contract)
    assert names is not None and struct_contract(contract, names) is not None, "the contract is not judged by a Struct"
    base = {"event_id": "e", "user_id": "u", "action": "purchase", "timestamp": "2026-11-27T10:00:00Z", "amount": 1, "s": "a", "n": 1}
    records = [dict(base), {}, []]
    for name in names:
        records += [{**base, name: value} for value in EDGE_VALUES]
        records += [{name: value} for value in EDGE_VALUES]
    whole = jsonschema_rs.validator_for(contract, validate_formats=True)
    check_all = ContractBook((route(contract),)).check_all(route(contract))
    expected = [whole.is_valid(r) for r in records]
    assert 0 < sum(expected) < len(records)  # the records fall on both sides
    for size in (1, 7, len(records)):  # a chunk at a time, as the pipeline judges them
        assert sum((check_all(records[i : i + size]) for i in range(0, len(records), size)), []) == expected


@pytest.mark.parametrize(
    "contract",
    [
        {"type": "object", "properties": {"n": {"minimum": 0}}},  # a bound with no type: judged by jsonschema-rs
        {"type": "object", "properties": {"n": {"type": "number", "minimum": 2**60}}},  # a bound no float holds exactly
        {"type": "object", "properties": {"n": {"type": "number", "multipleOf": 0.1}}},
        {"type": "object", "properties": {"o": {"type": "object", "properties": {"x": {"type": "string"}}}}},
        {"type": "object", "properties": {"e": {"enum": ["a", 1]}}},
        {"type": "object", "properties": {"n": False}},
        {"type": "object", "properties": {"s": {"type": "string", "const": 1}}},  # nothing is valid: no Literal says so
    ],
)
def test_a_contract_msgspec_cannot_judge_exactly_is_left_to_jsonschema_rs(contract):
    from widf_loader.struct_contract import struct_contract

    assert struct_contract(contract, named_properties(contract)) is None


def shipped(name: str) -> dict:
    from widf_loader.pipeline_config import DEFAULT_CONFIG

    return json.loads((DEFAULT_CONFIG.parent / "contracts" / name).read_text())


LOOSE = {"type": "object", "properties": {name: True for name in ("s", "n", "i", "e", "k", "t", "p", "list")}}
# (the fallback route's contract, which reads every record, and another route's, judged from what the fallback read)
ROUTE_PAIRS = {
    "shipped": (shipped("event.schema.json"), shipped("purchase.schema.json")),
    "stricter-types": (LOOSE, {**STRUCT_CONTRACTS["every-keyword"], "properties": {**STRUCT_CONTRACTS["every-keyword"]["properties"]}}),
    "looser-than-the-fallback": (
        {"type": "object", "required": ["n"], "properties": {"n": {"type": "number", "maximum": 1}, "s": {"type": "string"}}},
        {"type": "object", "properties": {"n": {"type": "number", "minimum": 0}, "s": {"type": "string", "format": "date-time"}}},
    ),
}
for pair in ROUTE_PAIRS.values():  # the other route names no property the fallback does not read
    pair[1]["properties"] = {k: v for k, v in pair[1]["properties"].items() if k in pair[0]["properties"]}


@pytest.mark.parametrize("pair", list(ROUTE_PAIRS.values()), ids=list(ROUTE_PAIRS))
def test_a_route_judged_from_the_fallbacks_structs_vouches_only_for_records_jsonschema_rs_accepts(pair):
    """Another route's records are judged from the Structs the fallback's contract read them into, not read again:
    wherever that judge vouches for a record, jsonschema-rs accepts it; on the shipped contracts, one at a time, it
    is exact."""
    import orjson

    from widf_loader.struct_contract import struct_contract

    fallback_contract, contract = pair
    fallback, mine = (struct_contract(c, named_properties(c)) for c in pair)
    assert fallback is not None and mine is not None
    judge = mine.judge_of_structs_read_by(fallback)
    assert judge is not None
    base = {"event_id": "e", "user_id": "u", "action": "purchase", "timestamp": "2026-11-27T10:00:00Z", "amount": 1, "s": "ab", "n": 1}
    records = [dict(base), {}]
    for name in named_properties(contract):
        records += [{**base, name: value} for value in EDGE_VALUES]
        records += [{k: v for k, v in base.items() if k != name}]
    structs = fallback.read_texts([orjson.dumps(r) for r in records])
    read = [(record, struct) for record, struct in zip(records, structs, strict=True) if struct is not None]
    whole = jsonschema_rs.validator_for(contract, validate_formats=True)
    expected = [whole.is_valid(record) for record, _ in read]
    assert 0 < sum(expected) < len(read)  # the records the fallback read fall on both sides
    for size in (1, 7, len(read)):  # a chunk at a time, as the pipeline judges them
        chunks = [[struct for _, struct in read[i : i + size]] for i in range(0, len(read), size)]
        verdicts = sum((judge(chunk, fallback.verdicts(chunk)) for chunk in chunks), [])
        assert not [record for (record, _), verdict, valid in zip(read, verdicts, expected, strict=True) if verdict and not valid]
        if size == 1:  # in a chunk, a format one record breaks sends back all that have the property
            assert verdicts == expected if pair is ROUTE_PAIRS["shipped"] else sum(verdicts) >= sum(expected) // 2


def test_a_route_naming_a_property_the_fallback_does_not_read_or_of_another_draft_is_read_again():
    from widf_loader.struct_contract import struct_contract

    fallback = {"type": "object", "properties": {"a": {"type": "string"}}}
    for contract in (
        {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {"a": {"type": "string"}}},
    ):
        mine = struct_contract(contract, named_properties(contract))
        assert mine is not None and mine.judge_of_structs_read_by(struct_contract(fallback, ("a",))) is None
