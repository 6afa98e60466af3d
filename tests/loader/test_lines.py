"""NDJSON judged in its lines (widf_loader.lines) loads what parsing every record loads: the same records,
rejections and errors, whatever the lines hold."""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import replace

import orjson
import pytest
from test_pipeline_chunks import CONFIGS, mixed_records

from widf_loader.config import ReadLimits
from widf_loader.events import FileRef
from widf_loader.pipeline import Pipeline, Tally
from widf_loader.pipeline_config import DEFAULT_CONFIG, read_pipeline_config
from widf_loader.reader import LineChunk, UnreadableFile, iter_records
from widf_loader.warehouse import RecordArrayJson
from widf_local import samples

REF = FileRef("b", "incoming/f.ndjson")


def loaded(pipeline: Pipeline, data: bytes, *, by_lines: bool, limits: ReadLimits | None = None) -> tuple[list, Tally]:
    """The batches, each record array read back as values, and the tally: by the lines, or with every record parsed."""
    if not by_lines:
        pipeline.line_judge = lambda *args: None  # type: ignore[method-assign]  # the parsed path, for comparison
    tally = Tally()
    batches = pipeline.batches(REF, iter_records(io.BytesIO(data), REF.uri), "L", limits or ReadLimits(), 1000, tally)
    return [(statement, [[values_of(v) for v in row] for row in rows]) for statement, rows in batches], tally


def values_of(value: object) -> object:
    """A bound value as its records: a record array's elements read back, a rejected record's raw text read too
    (it is the line as sent by one path, the record serialised by the other)."""
    if not isinstance(value, RecordArrayJson):
        return value
    elements = orjson.loads(value.json)
    return [[*e[:3], orjson.loads(e[3])] if len(e) == 4 and isinstance(e[3], str) else e for e in elements]


def as_sent(records: list, style: str) -> bytes:
    """NDJSON as other writers send it: spaces, escaped non-ASCII, CRLF."""
    if style == "spaced":
        return b"".join(json.dumps(r).encode() + b"\n" for r in records)
    if style == "ascii-escaped-crlf":
        return b"".join(json.dumps(r, ensure_ascii=True, separators=(",", ":")).encode() + b"\r\n" for r in records)
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def test_clean_ndjson_is_handed_on_as_lines():
    data = as_sent(samples.sample_events(200, seed=1), "compact")
    chunks = list(iter_records(io.BytesIO(data), REF.uri).chunks(lines=True))
    assert chunks and all(isinstance(c, LineChunk) for c in chunks)
    assert sum(len(c.lines) for c in chunks) == 200


@pytest.mark.parametrize(
    "trouble",
    [b'{"n": 12345678901234567890123}', b'{"n": "\xff"}', b'{"n": 1e400}', b'{"n": 1E+309}', b"x" * 2000],
    ids=["beyond-64-bits", "not-utf8", "beyond-a-double", "beyond-a-double-upper", "over-the-size-limit"],
)
def test_a_megabyte_a_parse_would_refuse_is_not_handed_on_as_lines(trouble):
    data = as_sent(samples.sample_events(50, seed=2), "compact") + trouble + b"\n"
    chunks = []
    with pytest.raises(UnreadableFile):  # parsed, the bad line is named
        chunks.extend(iter_records(io.BytesIO(data), REF.uri, ReadLimits(max_record_bytes=1000)).chunks(lines=True))
    assert chunks and not any(isinstance(c, LineChunk) for c in chunks)


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
@pytest.mark.parametrize("style", ["compact", "spaced", "ascii-escaped-crlf"])
def test_lines_load_the_records_and_rejections_a_parse_does(config, style):
    records = [
        *mixed_records(),
        {"event_id": "é", "user_id": "ü", "action": "page_view", "timestamp": "2026-01-01T00:00:00Z", "amount": 1.5},
    ]
    data = as_sent(records, style)
    by_lines, tally = loaded(Pipeline(config), data, by_lines=True)
    parsed, parsed_tally = loaded(Pipeline(config), data, by_lines=False)
    assert by_lines == parsed
    assert tally == parsed_tally
    assert tally.records == len(records)


def test_a_duplicate_key_keeps_its_last_value_as_a_parse_does():
    event = samples.sample_events(1, seed=3)[0]
    line = orjson.dumps(event)[:-1] + b',"user_id":"second","context":{"k":1,"k":2}}\n'
    data = as_sent(samples.sample_events(10, seed=4), "compact") + line
    pipeline = Pipeline(read_pipeline_config(DEFAULT_CONFIG))
    by_lines, _ = loaded(pipeline, data, by_lines=True)
    [[(_, rows)]] = [by_lines]
    last = rows[0][-1][-1][1]  # the array's last element: [index, record]
    assert (last["user_id"], last["context"]) == ("second", {"k": 2})
    assert by_lines == loaded(Pipeline(read_pipeline_config(DEFAULT_CONFIG)), data, by_lines=False)[0]


@pytest.mark.parametrize(
    "bad",
    [
        b'{"event_id": "e", "user_id": "u", "action": "x", "timestamp": "t", "junk": [1, 2,]}',  # bad JSON where no contract looks
        b'{"event_id": "e", "user_id": "u", "action": "x", "timestamp": "t", "junk": "\\ud800"}',  # a lone surrogate
        b'{"event_id": "e", "user_id": 5, "junk": tru}',  # refused by the Struct, then bad JSON
        b'{"event_id": "e", "user_id": "u", "action": "x", "timestamp": "t", "junk": 1e400}',
        b'{"event_id": "e", "user_id": "u", "action": "x", "timestamp": "t", "junk": "\xc3"}',
        b'{"event_id": "e", "user_id": "u", "action": "x", "timestamp": "t", "junk": 123456789012345678901234}',
        b'{"event_id": "e", "junk": ' + b"[" * 40 + b"]" * 40 + b"}",  # deeper than the limit
    ],
    ids=["trailing-comma", "lone-surrogate", "refused-then-bad", "beyond-a-double", "cut-utf8", "beyond-64-bits", "too-deep"],
)
@pytest.mark.parametrize("config", ["default", "no-contracts"])
def test_a_bad_line_fails_the_file_with_the_error_a_parse_gives(bad, config):
    data = as_sent(samples.sample_events(130, seed=5), "compact") + bad + b"\n" + as_sent(samples.sample_events(5, seed=6), "compact")
    errors = []
    for by_lines in (True, False):
        with pytest.raises(UnreadableFile) as raised:
            loaded(Pipeline(CONFIGS[config]), data, by_lines=by_lines, limits=ReadLimits(max_depth=30))
        errors.append((type(raised.value), str(raised.value)))
    assert errors[0] == errors[1]
    assert "line 131" in errors[0][1] or "record 130" in errors[0][1]


def test_blank_lines_and_a_gzipped_file_load_as_parsed():
    text = as_sent(mixed_records(400), "compact")
    text = text.replace(b"\n", b"\n\n  \n", 3)
    pipeline = Pipeline(read_pipeline_config(DEFAULT_CONFIG))
    for data in (text, gzip.compress(text)):
        by_lines, tally = loaded(pipeline, data, by_lines=True)
        assert (by_lines, tally) == loaded(Pipeline(read_pipeline_config(DEFAULT_CONFIG)), data, by_lines=False)
        assert tally.records == 400


def test_a_route_chosen_by_a_test_of_its_own_takes_the_parsed_path():
    config = read_pipeline_config(DEFAULT_CONFIG)
    nested = replace(config.routes[0], when=replace(config.routes[0].when, field="context.kind"))
    pipeline = Pipeline(replace(config, routes=(nested, *config.routes[1:])))
    assert pipeline.line_judge(*_candidates(pipeline)) is None


def _candidates(pipeline: Pipeline) -> tuple:
    from widf_loader.routing import by_one_field, routes_for_file

    candidates = [(test, route, pipeline.contracts.check(route)) for test, route in routes_for_file(pipeline.config.routes, REF)]
    return candidates, by_one_field([(t, r) for t, r, _ in candidates]), True
