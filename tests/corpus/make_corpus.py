"""The bad-input corpus: hostile and broken files, each with the outcome it must end with.

Generated rather than stored, because some are large (a 50 MB line, a gzip
bomb) and all are easier to read as the one line that makes them.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass

import orjson

GOOD = orjson.dumps({"event_id": "e1", "user_id": "u1", "action": "page_view", "timestamp": "2026-11-27T10:00:00Z"})


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    status: str  # the one LOAD_HISTORY outcome it must get
    reason: str = ""  # a fragment the reason must contain
    key_suffix: str = ".jsonl"


def ndjson(*records: bytes) -> bytes:
    return b"\n".join(records) + b"\n"


def cases() -> list[Case]:
    deep = b"[" * 10_000 + b"]" * 10_000
    return [
        Case("truncated array", b"[" + GOOD + b", " + GOOD[:20], "REJECTED", "invalid JSON array"),
        Case("array with trailing garbage", b"[" + GOOD + b"] garbage", "REJECTED", "invalid JSON array"),
        Case("invalid utf-8", ndjson(GOOD, b'{"user_id": "\xff\xfe\xfa"}'), "REJECTED", "line 2"),
        Case("utf-16 with bom", ("\ufeff" + GOOD.decode()).encode("utf-16-le"), "REJECTED", "UTF-16"),
        Case("utf-16 without bom", GOOD.decode().encode("utf-16-be"), "REJECTED", "UTF-16"),
        Case("utf-8 bom", b"\xef\xbb\xbf" + ndjson(GOOD), "LOADED"),
        Case("nul bytes", ndjson(GOOD, b'{"user_id": "a\x00b"}'), "REJECTED", "line 2"),
        Case("csv named json", b"event_id,user_id,action\ne1,u1,page_view\n", "REJECTED", "line 1: not valid JSON"),
        Case("binary named json", bytes(range(256)) * 4, "REJECTED", "UTF-16"),
        Case("empty file", b"", "REJECTED", "holds no records"),
        Case("whitespace only", b" \n\t\n  \r\n", "REJECTED", "holds no records"),
        Case("one 50 MB line", b'{"blob": "' + b"x" * (50 * 1024 * 1024) + b'"}\n', "REJECTED", "over the 16777216-byte limit"),
        Case(
            "10,000-deep nesting (ndjson)",
            ndjson(GOOD, b'{"a": ' + deep + b"}"),
            "REJECTED",
            "line 2: not valid JSON (depth limit exceeded",
        ),
        Case("10,000-deep nesting (one document)", deep, "REJECTED", "nested deeper than 200 levels"),
        Case("300-deep nesting (array)", b'[{"a": ' + b"[" * 300 + b"]" * 300 + b"}]", "REJECTED", "nested deeper than 200 levels"),
        Case("duplicate keys, last wins", ndjson(GOOD[:-1] + b', "user_id": "u2"}'), "LOADED"),
        Case("NaN", ndjson(b'{"amount": NaN}'), "REJECTED", "not valid JSON"),
        Case("Infinity in an array", b'[{"amount": Infinity}]', "REJECTED", "invalid JSON array"),
        Case(
            "integer beyond 64 bits (ndjson)", ndjson(GOOD[:-1] + b', "n": 123456789012345678901234567890}'), "REJECTED", "beyond 64 bits"
        ),
        Case("integer beyond 64 bits (array)", b'[{"n": 123456789012345678901234567890}]', "REJECTED", "invalid JSON array"),
        Case("big integer inside a string is fine", ndjson(GOOD[:-1] + b', "n": "123456789012345678901234567890"}'), "LOADED"),
        Case("gzip bomb", gzip.compress(b" " * (200 * 1024 * 1024)), "REJECTED", "gzip bomb"),
        Case("truncated gzip", gzip.compress(ndjson(*[GOOD] * 2000))[:-40], "REJECTED", "not a readable gzip stream"),
        Case(".json.gz that is not gzip", ndjson(GOOD), "LOADED", key_suffix=".json.gz.jsonl"),
        Case("gzip without a .gz name", gzip.compress(ndjson(GOOD, GOOD)), "LOADED"),
        Case("zero-byte object", b"", "REJECTED", "holds no records", key_suffix=".zero.jsonl"),
        Case("a record that is not an object", ndjson(b"42", GOOD), "REJECTED", "of route"),
        Case("array of arrays", b"[[1, 2], [3]]", "REJECTED", "of route"),
        Case("unterminated string", ndjson(b'{"user_id": "u1'), "REJECTED", "line 1"),
        Case("json with comments", ndjson(b'{"user_id": "u1"} // a comment'), "REJECTED", "line 1"),
        Case("single json object, not an array", GOOD, "LOADED"),
        Case("windows line endings", GOOD + b"\r\n" + GOOD + b"\r\n", "LOADED"),
    ]
