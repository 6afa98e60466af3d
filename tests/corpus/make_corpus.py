"""The bad-input corpus: hostile and broken files, each with the outcome it must end with.

Generated rather than stored, because some are large (a 50 MB line, a gzip
bomb) and all are easier to read as the one line that makes them.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass

import orjson

GOOD_RECORD = {"event_id": "e1", "user_id": "u1", "action": "page_view", "timestamp": "2026-11-27T10:00:00Z"}
GOOD = orjson.dumps(GOOD_RECORD)
OUTCOMES = ("LOADED", "REJECTED", "SKIPPED")


@dataclass(frozen=True)
class Case:
    """One file and what it must end as, each written out: its outcome, the rows it loads, and (where the case
    is about a value) the payloads RAW_DATA must hold for it, in record order. A file that does not load must
    name a fragment of its reason."""

    name: str
    body: bytes
    status: str  # the one LOAD_HISTORY outcome it must get
    rows: int  # the rows it loads: LOAD_HISTORY's ROWS_LOADED and its rows in RAW_DATA
    reason: str = ""  # a fragment the reason must contain (required unless it loads)
    payloads: tuple[dict, ...] | None = None  # RAW_DATA's PAYLOAD of its rows, by RECORD_INDEX; None: not checked
    key_suffix: str = ".jsonl"

    def __post_init__(self) -> None:
        if self.status not in OUTCOMES:
            raise ValueError(f"{self.name}: unknown outcome {self.status}")
        if self.status != "LOADED" and (not self.reason or self.rows != 0):
            raise ValueError(f"{self.name}: a file that does not load names its reason and loads no rows")
        if self.status == "LOADED" and self.rows < 1:
            raise ValueError(f"{self.name}: a loaded file says how many rows it loads")
        if self.payloads is not None and len(self.payloads) != self.rows:
            raise ValueError(f"{self.name}: {len(self.payloads)} payloads for {self.rows} rows")


def ndjson(*records: bytes) -> bytes:
    return b"\n".join(records) + b"\n"


def cases() -> list[Case]:
    deep = b"[" * 10_000 + b"]" * 10_000
    big = "123456789012345678901234567890"
    return [
        Case("truncated array", b"[" + GOOD + b", " + GOOD[:20], "REJECTED", rows=0, reason="invalid JSON array"),
        Case("array with trailing garbage", b"[" + GOOD + b"] garbage", "REJECTED", rows=0, reason="invalid JSON array"),
        Case("invalid utf-8", ndjson(GOOD, b'{"user_id": "\xff\xfe\xfa"}'), "REJECTED", rows=0, reason="line 2"),
        Case("utf-16 with bom", ("\ufeff" + GOOD.decode()).encode("utf-16-le"), "REJECTED", rows=0, reason="UTF-16"),
        Case("utf-16 without bom", GOOD.decode().encode("utf-16-be"), "REJECTED", rows=0, reason="UTF-16"),
        # the BOM is not part of the first key
        Case("utf-8 bom", b"\xef\xbb\xbf" + ndjson(GOOD), "LOADED", rows=1, payloads=(GOOD_RECORD,)),
        Case("nul bytes", ndjson(GOOD, b'{"user_id": "a\x00b"}'), "REJECTED", rows=0, reason="line 2"),
        Case("csv named json", b"event_id,user_id,action\ne1,u1,page_view\n", "REJECTED", rows=0, reason="line 1: not valid JSON"),
        Case("binary named json", bytes(range(256)) * 4, "REJECTED", rows=0, reason="UTF-16"),
        Case("empty file", b"", "REJECTED", rows=0, reason="holds no records"),
        Case("whitespace only", b" \n\t\n  \r\n", "REJECTED", rows=0, reason="holds no records"),
        Case(
            "one 50 MB line",
            b'{"blob": "' + b"x" * (50 * 1024 * 1024) + b'"}\n',
            "REJECTED",
            rows=0,
            reason="over the 16777216-byte limit",
        ),
        Case(
            "10,000-deep nesting (ndjson)",
            ndjson(GOOD, b'{"a": ' + deep + b"}"),
            "REJECTED",
            rows=0,
            reason="line 2: not valid JSON (depth limit exceeded",
        ),
        Case("10,000-deep nesting (one document)", deep, "REJECTED", rows=0, reason="nested deeper than 200 levels"),
        Case(
            "300-deep nesting (array)",
            b'[{"a": ' + b"[" * 300 + b"]" * 300 + b"}]",
            "REJECTED",
            rows=0,
            reason="nested deeper than 200 levels",
        ),
        Case(
            "duplicate keys, last wins",
            ndjson(GOOD[:-1] + b', "user_id": "u2"}'),
            "LOADED",
            rows=1,
            payloads=({**GOOD_RECORD, "user_id": "u2"},),
        ),
        Case("NaN", ndjson(b'{"amount": NaN}'), "REJECTED", rows=0, reason="not valid JSON"),
        Case("Infinity in an array", b'[{"amount": Infinity}]', "REJECTED", rows=0, reason="invalid JSON array"),
        Case(
            "integer beyond 64 bits (ndjson)",
            ndjson(GOOD[:-1] + f', "n": {big}}}'.encode()),
            "REJECTED",
            rows=0,
            reason="beyond 64 bits",
        ),
        Case("integer beyond 64 bits (array)", f'[{{"n": {big}}}]'.encode(), "REJECTED", rows=0, reason="invalid JSON array"),
        Case(
            "big integer inside a string is fine",
            ndjson(GOOD[:-1] + f', "n": "{big}"}}'.encode()),
            "LOADED",
            rows=1,
            payloads=({**GOOD_RECORD, "n": big},),
        ),
        Case("gzip bomb", gzip.compress(b" " * (200 * 1024 * 1024)), "REJECTED", rows=0, reason="gzip bomb"),
        Case("truncated gzip", gzip.compress(ndjson(*[GOOD] * 2000))[:-40], "REJECTED", rows=0, reason="not a readable gzip stream"),
        Case(".json.gz that is not gzip", ndjson(GOOD), "LOADED", rows=1, payloads=(GOOD_RECORD,), key_suffix=".json.gz.jsonl"),
        Case("gzip without a .gz name", gzip.compress(ndjson(GOOD, GOOD)), "LOADED", rows=2, payloads=(GOOD_RECORD, GOOD_RECORD)),
        Case("zero-byte object", b"", "REJECTED", rows=0, reason="holds no records", key_suffix=".zero.jsonl"),
        Case("a record that is not an object", ndjson(b"42", GOOD), "REJECTED", rows=0, reason="of route"),
        Case("array of arrays", b"[[1, 2], [3]]", "REJECTED", rows=0, reason="of route"),
        Case("unterminated string", ndjson(b'{"user_id": "u1'), "REJECTED", rows=0, reason="line 1"),
        Case("json with comments", ndjson(b'{"user_id": "u1"} // a comment'), "REJECTED", rows=0, reason="line 1"),
        Case("single json object, not an array", GOOD, "LOADED", rows=1, payloads=(GOOD_RECORD,)),
        # both CRLF-terminated lines arrive, with no carriage return left in a value
        Case("windows line endings", GOOD + b"\r\n" + GOOD + b"\r\n", "LOADED", rows=2, payloads=(GOOD_RECORD, GOOD_RECORD)),
    ]
