"""Hostile and broken files: each ends with exactly one recorded outcome and a readable reason,
the batch they arrive in survives, and the good file after them still loads."""

from __future__ import annotations

import re

import pytest

from corpus.make_corpus import GOOD, Case, cases, ndjson
from helpers import function_env, notification, put, query, sqs_batch
from widf_loader.handler import lambda_handler, runtime
from widf_loader.warehouse import file_id
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
    files.append((put(stack, loader, "incoming/corpus/key with spaces ü %25 +plus=1.jsonl", ndjson(GOOD)), Case("odd key", b"", "LOADED")))
    deleted = put(stack, loader, "incoming/corpus/deleted.jsonl", ndjson(GOOD))
    s3.delete_object(Bucket=deleted.bucket, Key=deleted.key, VersionId=deleted.version_id)
    files.append((deleted, Case("deleted before read", b"", "SKIPPED", "no longer exists")))
    first = put(stack, loader, "incoming/corpus/replaced.jsonl", ndjson(GOOD))
    put(stack, loader, "incoming/corpus/replaced.jsonl", ndjson(GOOD, GOOD, GOOD))  # a new version while the first is queued
    files.append((first, Case("replaced while queued", b"", "LOADED")))
    files.append((put(stack, loader, "incoming/corpus/zz-good.jsonl", ndjson(GOOD, GOOD)), Case("the good file after them", b"", "LOADED")))

    context = LambdaContext("req", loader.function.name, 512, "arn", "", "", deadline_epoch=2**40)
    result = lambda_handler(sqs_batch(*[(f"m{i}", notification(ref)) for i, (ref, _) in enumerate(files)]), context)
    history = query(stack, f"SELECT FILE_ID, STATUS, REASON, ROWS_LOADED FROM {DB}.LOAD_HISTORY WHERE SOURCE_KEY LIKE 'incoming/corpus/%'")
    return result, files, history


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
    result, _, _ = corpus_run
    assert result == {"batchItemFailures": []}


def test_the_corpus_is_large_enough():
    assert len(cases()) >= 30


@pytest.mark.parametrize("index", range(len(cases()) + 4))
def test_each_file_has_exactly_one_outcome_with_a_readable_reason(corpus_run, index):
    _, expected, history = corpus_run
    ref, case = expected[index]
    rows = [(status, reason, loaded) for fid, status, reason, loaded in history if fid == file_id(ref)]
    assert len(rows) == 1, f"{case.name}: {rows}"
    [(status, reason, loaded)] = rows
    assert status == case.status, f"{case.name}: {status} {reason}"
    assert case.reason in (reason or ""), f"{case.name}: {reason}"
    if status != "LOADED":
        assert loaded == 0
        assert reason and "\n" not in reason and len(reason) < 2000


def test_nothing_of_a_rejected_file_is_loaded(stack, corpus_run):
    _, expected, _ = corpus_run
    rejected_keys = [ref.key for ref, case in expected if case.status != "LOADED"]
    rows = query(stack, f"SELECT SOURCE_KEY, COUNT(*) FROM {DB}.RAW_DATA WHERE SOURCE_KEY LIKE 'incoming/corpus/%' GROUP BY 1")
    loaded = dict(rows)
    assert not [k for k in rejected_keys if loaded.get(k)]
    assert loaded["incoming/corpus/replaced.jsonl"] == 1, "the queued event loads the version it names, not the newer one"
