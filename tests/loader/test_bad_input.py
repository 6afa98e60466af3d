"""Hostile and broken files: each ends with exactly one recorded outcome and a readable reason,
the batch they arrive in survives, and the good file after them still loads."""

from __future__ import annotations

import re

import orjson
import pytest

from corpus.make_corpus import GOOD, GOOD_RECORD, Case, cases, ndjson
from helpers import function_env, notification, put, query, sqs_batch
from widf_loader.events import file_id
from widf_loader.handler import lambda_handler, runtime
from widf_local import aws
from widf_local.worker import LambdaContext

DB = "WIDF_DEMO_DB.PUBLIC"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@pytest.fixture(scope="module")
def corpus_run(stack, loader, as_function_module):
    """Every corpus file, plus an awkward key, a deleted and a replaced object, then a good file: one SQS batch."""
    runtime.cache_clear()
    s3 = aws.client("s3", stack.info.aws_endpoint)
    files = [(put(stack, loader, f"incoming/corpus/{slug(case.name)}{case.key_suffix}", case.body), case) for case in cases()]
    odd_key = Case("odd key", b"", "LOADED", rows=1, payloads=(GOOD_RECORD,))
    files.append((put(stack, loader, "incoming/corpus/key with spaces ü %25 +plus=1.jsonl", ndjson(GOOD)), odd_key))
    deleted = put(stack, loader, "incoming/corpus/deleted.jsonl", ndjson(GOOD))
    s3.delete_object(Bucket=deleted.bucket, Key=deleted.key, VersionId=deleted.version_id)
    files.append((deleted, Case("deleted before read", b"", "SKIPPED", rows=0, reason="no longer exists")))
    first = put(stack, loader, "incoming/corpus/replaced.jsonl", ndjson(GOOD))
    put(stack, loader, "incoming/corpus/replaced.jsonl", ndjson(GOOD, GOOD, GOOD))  # a new version while the first is queued
    # the queued event loads the version it names (one record), not the newer one (three)
    files.append((first, Case("replaced while queued", b"", "LOADED", rows=1, payloads=(GOOD_RECORD,))))
    good = put(stack, loader, "incoming/corpus/zz-good.jsonl", ndjson(GOOD, GOOD))
    files.append((good, Case("the good file after them", b"", "LOADED", rows=2, payloads=(GOOD_RECORD, GOOD_RECORD))))

    context = LambdaContext("req", loader.function.name, 512, "arn", "", "", deadline_epoch=2**40)
    result = lambda_handler(sqs_batch(*[(f"m{i}", notification(ref)) for i, (ref, _) in enumerate(files)]), context)
    history = query(stack, f"SELECT FILE_ID, STATUS, REASON, ROWS_LOADED FROM {DB}.LOAD_HISTORY WHERE SOURCE_KEY LIKE 'incoming/corpus/%'")
    stored = query(
        stack,
        f"SELECT SOURCE_KEY, SOURCE_VERSION_ID, PAYLOAD FROM {DB}.RAW_DATA WHERE SOURCE_KEY LIKE 'incoming/corpus/%' ORDER BY RECORD_INDEX",
    )
    payloads: dict[tuple[str, str], list[dict]] = {}
    for key, version, payload in stored:
        payloads.setdefault((key, version), []).append(orjson.loads(payload))
    return result, files, history, payloads


@pytest.fixture(scope="module")
def as_function_module(stack, loader):
    monkeypatch = pytest.MonkeyPatch()
    env = function_env(stack, loader)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env
    monkeypatch.undo()
    runtime.cache_clear()


def test_no_message_of_the_batch_failed(corpus_run):
    result, *_ = corpus_run
    assert result == {"batchItemFailures": []}


def test_the_corpus_is_large_enough():
    assert len(cases()) >= 30


@pytest.mark.parametrize("index", range(len(cases()) + 4))
def test_each_file_has_exactly_one_outcome_with_a_readable_reason(corpus_run, index):
    _, expected, history, _ = corpus_run
    ref, case = expected[index]
    rows = [(status, reason, loaded) for fid, status, reason, loaded in history if fid == file_id(ref)]
    assert len(rows) == 1, f"{case.name}: {rows}"
    [(status, reason, loaded)] = rows
    assert status == case.status, f"{case.name}: {status} {reason}"
    assert loaded == case.rows, f"{case.name}: ROWS_LOADED {loaded}"
    if status != "LOADED":
        assert case.reason and case.reason in (reason or ""), f"{case.name}: {reason}"
        assert reason and "\n" not in reason and len(reason) < 2000


@pytest.mark.parametrize("index", range(len(cases()) + 4))
def test_each_file_stores_exactly_its_rows(corpus_run, index):
    """RAW_DATA holds the rows the case says, for this object version alone, and where the case is about a value,
    the values it says (duplicate keys: the last one; CRLF lines: both records, whole)."""
    _, expected, _, payloads = corpus_run
    ref, case = expected[index]
    stored = payloads.get((ref.key, ref.version_id), [])
    assert len(stored) == case.rows, f"{case.name}: {len(stored)} rows in RAW_DATA"
    if case.payloads is not None:
        assert stored == list(case.payloads), case.name


def test_nothing_but_the_corpus_files_rows_is_stored(corpus_run):
    _, expected, _, payloads = corpus_run
    assert set(payloads) <= {(ref.key, ref.version_id) for ref, _ in expected}
