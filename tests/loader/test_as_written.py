"""NDJSON lines judged on their text and loaded as written (widf_loader.as_written) end as the same lines parsed
end: the same rows and rejections, or the same error, for every line a parser that skips values could let by."""

from __future__ import annotations

import io

import orjson
import pytest
from tests.loader.pipelines import CONFIGS, REF, loaded, ndjson, run

from widf_loader.pipeline import Pipeline
from widf_loader.reader import UnreadableFile, iter_records
from widf_local import samples

GOOD = samples.sample_events(150, seed=3)
EVENT = b'{"event_id":"e-1","user_id":"u-1","action":"page_view","timestamp":"2025-01-01T00:00:00Z"'
PURCHASE = EVENT.replace(b'"page_view"', b'"purchase"')
AWKWARD_LINES = {
    "a key written twice": EVENT + b',"page":"/a","page":"/b"}',
    "the routing field written twice": EVENT + b',"action":"purchase","amount":5}',
    "invalid UTF-8 where no contract reads": EVENT + b',"note":"caf\xc3"}',
    "an encoded surrogate": EVENT + b',"note":"\xed\xa0\x80"}',
    "an exponent beyond a double": EVENT + b',"n":1e400}',
    "an exponent beyond a double, signed": EVENT + b',"n":1E+309}',
    "an exponent a double holds": EVENT + b',"n":1.5e300,"m":2E-400}',
    "an integer beyond 64 bits": EVENT + b',"n":123456789012345678901234}',
    "NaN": EVENT + b',"n":NaN}',
    "trailing garbage": EVENT + b"} x",
    "two records on one line": EVENT + b"}," + EVENT + b"}",
    "a string cut by the line's end": EVENT + b',"note":"a',
    "a raw control character": EVENT + b',"note":"a\x01b"}',
    "a lone surrogate escape": EVENT + b',"note":"\\ud800"}',
    "escapes": EVENT + b',"note":"\\u00e9\\n\\"\\/"}',
    "nested 150 deep": EVENT + b',"d":' + b"[" * 150 + b"]" * 150 + b"}",
    "nested 300 deep": EVENT + b',"d":' + b"[" * 300 + b"]" * 300 + b"}",
    "nested 3000 deep": EVENT + b',"d":' + b"[" * 3000 + b"]" * 3000 + b"}",
    "a routing field that is an object": EVENT[:-1].replace(b'"page_view"', b'{"a":1}') + b"}",
    "a record that is no object": b"[1,2,3]",
    "a blank line": b"",
    "whitespace around": b" \t" + EVENT + b"} \t",
    "the contract broken": EVENT.replace(b'"user_id":"u-1",', b"") + b"}",
    "a timestamp that is no date-time": EVENT.replace(b"2025-01-01T00:00:00Z", b"yesterday") + b"}",
    # purchases, judged from what the events' contract read (StructContract.judge_of_structs_read_by)
    "a purchase": PURCHASE + b',"amount":5}',
    "a purchase without its amount": PURCHASE + b"}",
    "a purchase with a negative amount": PURCHASE + b',"amount":-1}',
    "a purchase whose amount is text": PURCHASE + b',"amount":"5"}',
    "a purchase whose currency is no code": PURCHASE + b',"amount":5,"currency":"usd"}',
    "a purchase whose timestamp is no date-time": PURCHASE.replace(b"2025-01-01T00:00:00Z", b"2025-02-30T00:00:00Z") + b',"amount":1}',
}


def outcome(pipeline: Pipeline, records) -> tuple:
    try:
        batches, tally = run(pipeline, records, 1000)
    except UnreadableFile as e:
        return ("refused", str(e))
    return ("loaded", loaded(batches), tally)


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
@pytest.mark.parametrize("line", AWKWARD_LINES.values(), ids=AWKWARD_LINES.keys())
def test_an_awkward_line_ends_as_it_does_parsed(config, line):
    data = ndjson(GOOD[:100]) + line + b"\n" + ndjson(GOOD[100:])
    pipeline = Pipeline(config)
    as_written = outcome(pipeline, iter_records(io.BytesIO(data), REF.uri))
    parsed = outcome(pipeline, iter(iter_records(io.BytesIO(data), REF.uri)))  # one record at a time: always parsed
    assert as_written == parsed


def test_a_key_written_twice_keeps_its_last_value_as_parse_json_d_does():
    """Loaded as written, both values reach Snowflake: the insert's PARSE_JSON(..., 'd') keeps the last, as orjson did."""
    pipeline = Pipeline(CONFIGS["default"])
    data = AWKWARD_LINES["a key written twice"] + b"\n"
    batches, _ = run(pipeline, iter_records(io.BytesIO(data), REF.uri), 1000)
    [(statement, [row])] = batches
    assert statement.endswith(", 'd'))) r")
    assert b'"page":"/a","page":"/b"' in row[-1].json  # the line as written
    [(_, record)] = orjson.loads(row[-1].json)
    assert record["page"] == "/b"
