"""Every file loads exactly once, whatever the deliveries do, and every attempt has one recorded outcome."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import uuid
from dataclasses import replace

import orjson
import pytest
import snowflake.connector

from helpers import UNNOTIFIED, ndjson, notification, put, query, shipped_pipeline, sqs_batch
from widf_loader.config import LoaderSettings
from widf_loader.events import FileRef, file_id
from widf_loader.handler import lambda_handler, runtime
from widf_loader.observe import query_tag
from widf_loader.stage import STAGE_ROOT, copy_shortfall
from widf_loader.warehouse import Warehouse, copy_rows_statement
from widf_local import aws, samples
from widf_local.stack import fault_plan
from widf_local.worker import LambdaContext
from widf_ops.stack_outputs import wait_for


def outcomes(stack, prefix: str) -> list[tuple]:
    return query(
        stack,
        "SELECT FILE_ID, STATUS, ROWS_LOADED, REASON FROM WIDF_DEMO_DB.PUBLIC.LOAD_HISTORY WHERE SOURCE_KEY LIKE %s ORDER BY FILE_ID, STATUS",
        (f"{prefix}%",),
    )


def rows_loaded(stack, prefix: str) -> int:
    return query(stack, "SELECT COUNT(*) FROM WIDF_DEMO_DB.PUBLIC.RAW_DATA WHERE SOURCE_KEY LIKE %s", (f"{prefix}%",))[0][0]


HISTORY = "TABLE(WIDF_DEMO_DB.INFORMATION_SCHEMA.QUERY_HISTORY(RESULT_LIMIT => 10000))"


def statements_tagged(stack, tag: str) -> list[str]:
    """The first word of each statement that ran under this QUERY_TAG, in the order they finished (QUERY_HISTORY,
    as the administrator sees it): a test's own statements, whatever else the gateway is doing."""
    rows = query(stack, f"SELECT QUERY_TEXT FROM {HISTORY} WHERE QUERY_TAG = %s ORDER BY END_TIME", (tag,))
    return [text.split()[0].upper() for (text,) in rows]


def test_duplicate_deliveries_load_nothing_twice(stack, loader):
    prefix, files = "incoming/duplicates/", 80
    sqs = aws.client("sqs", stack.info.aws_endpoint)
    expected_rows, duplicates = 0, 0
    for i in range(files):
        events = samples.sample_events(2 + i % 4, seed=1000 + i)
        ref = put(stack, loader, f"{prefix}file {i:03d}.ndjson", ndjson(events))
        expected_rows += len(events)
        if i % 10 < 3:  # 30% of the files are delivered a second time
            sqs.send_message(QueueUrl=loader.resources.queue_url, MessageBody=notification(ref))
            duplicates += 1

    def settled():
        rows = outcomes(stack, prefix)
        statuses = [status for _, status, _, _ in rows]
        return rows if statuses.count("LOADED") + statuses.count("SKIPPED_DUPLICATE") >= files + duplicates else None

    history = wait_for(settled, seconds=300)
    assert history is not None, f"not every delivery was handled: {outcomes(stack, prefix)[-5:]}"
    loaded = [file_id for file_id, status, _, _ in history if status == "LOADED"]
    assert len(loaded) == len(set(loaded)) == files
    assert [status for _, status, _, _ in history].count("SKIPPED_DUPLICATE") == duplicates
    assert rows_loaded(stack, prefix) == expected_rows


def test_concurrent_deliveries_of_one_file_load_it_once(stack, loader, as_function):
    prefix, files, records = "incoming/concurrent/", 12, 120
    settings = LoaderSettings.from_env()
    s3 = aws.client(
        "s3",
        stack.info.aws_endpoint,
        **{k.lower(): as_function[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")},
    )
    small_batches = LoaderSettings(**{**settings.__dict__, "batch_rows": 25})  # several statements per file, so the runs overlap
    warehouses = [Warehouse(small_batches), Warehouse(small_batches)]
    statuses: list[list[str]] = []
    for i in range(files):
        ref = put(stack, loader, f"{prefix}{i:02d}{UNNOTIFIED}", ndjson(samples.sample_events(records, seed=2000 + i)))
        start, results = threading.Barrier(2), []

        def deliver(warehouse: Warehouse, ref=ref, start=start, results=results) -> None:
            start.wait()
            results.append(shipped_pipeline().load_file(ref, s3=s3, warehouse=warehouse, settings=small_batches).status)

        threads = [threading.Thread(target=deliver, args=(w,)) for w in warehouses]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        statuses.append(sorted(results))
    assert statuses == [["LOADED", "SKIPPED_DUPLICATE"]] * files
    assert rows_loaded(stack, prefix) == files * records


KILLABLE_LOAD = """
import sys
from widf_loader.config import LoaderSettings
from widf_loader.events import FileRef
from widf_loader.pipeline import Pipeline
from widf_loader.pipeline_config import load_pipeline_config
from widf_loader.warehouse import Warehouse
import boto3
settings = LoaderSettings.from_env()
ref = FileRef(bucket=sys.argv[1], key=sys.argv[2], version_id=sys.argv[3], size=int(sys.argv[6]) if len(sys.argv) > 6 else None)
warehouse = Warehouse(settings)
with warehouse.tagged(sys.argv[4]):  # as the handler tags an attempt: every statement carries the tag
    Pipeline(load_pipeline_config()).load_file(ref, s3=boto3.client("s3"), warehouse=warehouse, settings=settings, load_id=sys.argv[5])
"""


def test_a_runner_killed_mid_file_leaves_nothing_and_the_retry_loads_everything(stack, loader, as_function):
    events = samples.sample_events(3000, seed=3)
    ref = put(stack, loader, f"incoming/killed/big{UNNOTIFIED}", ndjson(events))
    load_id = str(uuid.uuid4())
    tag = query_tag(ref, load_id)
    process = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_LOAD, ref.bucket, ref.key, ref.version_id, tag, load_id],
        env={**as_function, "PATH": "/usr/bin:/bin", "WIDF_BATCH_ROWS": "100", "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )
    try:
        # The ledger check, then batches: kill once a few of its batches are in, long before the last (of 30).
        ran = wait_for(lambda: s if (s := statements_tagged(stack, tag)).count("INSERT") >= 3 else None, seconds=60)
        assert ran is not None and ran[0] == "SELECT", f"the load's statements: {statements_tagged(stack, tag)}"
        assert process.poll() is None, "the load finished before it could be killed; make the file larger"
    finally:
        process.kill()
        process.wait()
    assert rows_loaded(stack, "incoming/killed/") == 0
    assert outcomes(stack, "incoming/killed/") == []
    assert "COMMIT" not in statements_tagged(stack, tag) and "MERGE" not in statements_tagged(stack, tag), "killed after its claim"

    settings = LoaderSettings.from_env()
    outcome = shipped_pipeline().load_file(
        ref, s3=aws.client("s3", stack.info.aws_endpoint), warehouse=Warehouse(settings), settings=settings
    )
    assert (outcome.status, outcome.rows_loaded) == ("LOADED", len(events))
    assert rows_loaded(stack, "incoming/killed/") == len(events)


def test_an_unreadable_file_is_rejected_once_with_its_reason(stack, loader):
    ref = put(stack, loader, "incoming/broken/half.json", b'{"action": "page_view"}\n{"action": ')
    history = wait_for(lambda: r if (r := outcomes(stack, "incoming/broken/")) else None, seconds=60)
    assert history is not None
    [(_, status, rows, reason)] = history
    assert (status, rows) == ("REJECTED", 0)
    assert f"{ref.uri} line 2: not valid JSON" in reason
    assert rows_loaded(stack, "incoming/broken/") == 0

    aws.client("sqs", stack.info.aws_endpoint).send_message(QueueUrl=loader.resources.queue_url, MessageBody=notification(ref))
    again = wait_for(lambda: r if len(r := outcomes(stack, "incoming/broken/")) == 2 else None, seconds=60)
    assert again is not None and [status for _, status, _, _ in again] == ["REJECTED", "SKIPPED_DUPLICATE"]


def test_a_file_that_breaks_after_batches_went_out_loads_nothing(stack, loader, as_function):
    """The reader fails while a batch's statement still runs in the sender thread (each insert is made
    to take half a second): that statement finishes first, then the transaction rolls back and the
    file is rejected once. Were the rollback sent beside the running insert, the insert would run
    after it, in a new transaction left open, and load_file would return before it had run."""
    body = ndjson(samples.sample_events(60, seed=3)) + b'\n{"action": '
    ref = put(stack, loader, f"incoming/late-break/f{UNNOTIFIED}", body)
    settings = LoaderSettings(**{**LoaderSettings.from_env().__dict__, "batch_rows": 25})
    warehouse, load_id = Warehouse(settings), str(uuid.uuid4())
    stalls = fault_plan(stack.info, {"snowflake_stall": 1.0, "stall_only": "INSERT", "stall_seconds": 0.5})["injected"]
    try:
        with warehouse.tagged(tag := query_tag(ref, load_id)):
            outcome = shipped_pipeline().load_file(
                ref, s3=aws.client("s3", stack.info.aws_endpoint), warehouse=warehouse, settings=settings, load_id=load_id
            )
    finally:
        stalled = fault_plan(stack.info, {})["injected"].get("snowflake_stall", 0) - stalls.get("snowflake_stall", 0)
    assert outcome.status == "REJECTED" and f"{ref.uri} line 61: not valid JSON" in outcome.reason
    assert stalled >= 2, "the inserts were not slowed"
    # every statement has run by now, one after another: the settled check, the two full batches, then (only once
    # the second has finished) the rollback, then the rejection's claim and its commit
    assert statements_tagged(stack, tag) == ["SELECT", "INSERT", "INSERT", "ROLLBACK", "MERGE", "COMMIT"]
    assert rows_loaded(stack, "incoming/late-break/") == 0
    [(_, status, rows, _)] = outcomes(stack, "incoming/late-break/")
    assert (status, rows) == ("REJECTED", 0)


def test_an_object_deleted_before_it_is_read_is_recorded_as_skipped(stack, loader, as_function):
    ref = put(stack, loader, f"incoming/gone/deleted{UNNOTIFIED}", b"[]")
    aws.client("s3", stack.info.aws_endpoint).delete_object(Bucket=ref.bucket, Key=ref.key, VersionId=ref.version_id)
    settings = LoaderSettings.from_env()
    outcome = shipped_pipeline().load_file(
        ref, s3=aws.client("s3", stack.info.aws_endpoint), warehouse=Warehouse(settings), settings=settings
    )
    assert outcome.status == "SKIPPED"
    [(_, status, _, reason)] = outcomes(stack, "incoming/gone/")
    assert status == "SKIPPED" and "no longer exists" in reason


def test_a_warm_container_reuses_its_connection_and_opens_none_for_nothing(stack, loader, as_function, monkeypatch):
    runtime.cache_clear()
    context = LambdaContext("req", loader.function.name, 512, "arn", "", "", deadline_epoch=2**40)
    opened = []  # the connections (logins) this container makes: the connector's connect, counted on the way through
    connect = snowflake.connector.connect

    def counted_connect(**kwargs):
        opened.append(connection := connect(**kwargs))
        return connection

    monkeypatch.setattr(snowflake.connector, "connect", counted_connect)

    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": loader.resources.bucket})
    assert lambda_handler(sqs_batch(("0", test_event)), context) == {"batchItemFailures": []}
    assert opened == [], "the test event logged in"

    files = set()
    for i in range(2):
        ref = put(stack, loader, f"incoming/warm/{i}{UNNOTIFIED}", orjson.dumps(samples.sample_events(3, seed=i)))
        files.add(file_id(ref))
        assert lambda_handler(sqs_batch(("0", notification(ref))), context) == {"batchItemFailures": []}
    assert len(opened) == 1, "a warm container logged in again"
    # and by the gateway's own record: both files' statements ran in that one session
    patterns = tuple(f'%"file_id":"{f}"%' for f in sorted(files))  # the loader's tag names the file (a few rows, not all)
    tagged = query(stack, f"SELECT SESSION_ID, QUERY_TAG FROM {HISTORY} WHERE QUERY_TAG LIKE %s OR QUERY_TAG LIKE %s", patterns)
    ran = {(session, json.loads(tag)["file_id"]) for session, tag in tagged if json.loads(tag)["file_id"] in files}
    assert {f for _, f in ran} == files and {session for session, _ in ran} == {opened[0].session_id}
    assert rows_loaded(stack, "incoming/warm/") == 6


def test_a_malformed_message_fails_alone(stack, loader, as_function):
    runtime.cache_clear()
    context = LambdaContext("req", loader.function.name, 512, "arn", "", "", deadline_epoch=2**40)
    good = put(stack, loader, f"incoming/mixed/good{UNNOTIFIED}", orjson.dumps(samples.sample_events(4, seed=9)))
    batch = sqs_batch(("bad", "this is not an S3 event"), ("good", notification(good)))
    assert lambda_handler(batch, context) == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert rows_loaded(stack, "incoming/mixed/") == 4


def batch_statements(stack, ref) -> list[str]:
    """The statements that ran under the tag of a batch loaded together that named this file (first words)."""
    rows = query(stack, f"SELECT QUERY_TAG FROM {HISTORY} WHERE QUERY_TAG LIKE %s", (f'%"file_ids":[%"{file_id(ref)}"%',))
    [tag] = {tag for (tag,) in rows}
    return statements_tagged(stack, tag)


def test_an_sqs_batch_of_small_files_loads_in_five_statements_and_each_file_once(stack, loader, as_function):
    runtime.cache_clear()
    context = LambdaContext("req", loader.function.name, 512, "arn", "", "", deadline_epoch=2**40)
    prefix = "incoming/together/"
    good = [put(stack, loader, f"{prefix}good-{i}{UNNOTIFIED}", ndjson(samples.sample_events(5, seed=40 + i))) for i in range(4)]
    # one bad record in 21: quarantined, and the file loads (the default gate allows a tenth)
    quarantined = put(stack, loader, f"{prefix}one-bad{UNNOTIFIED}", ndjson([*samples.sample_events(20, seed=50), {"action": "x"}]))
    gated = put(stack, loader, f"{prefix}gated{UNNOTIFIED}", ndjson([*samples.sample_events(2, seed=51), {"a": 1}, {"b": 2}]))
    broken = put(stack, loader, f"{prefix}broken{UNNOTIFIED}", b'{"action": ')
    earlier = put(stack, loader, f"{prefix}earlier{UNNOTIFIED}", ndjson(samples.sample_events(3, seed=52)))
    assert lambda_handler(sqs_batch(("e", notification(earlier))), context) == {"batchItemFailures": []}

    batch = [*good, quarantined, gated, broken, earlier, good[0]]  # good[0] twice: the second is a duplicate
    answer = lambda_handler(sqs_batch(*((str(i), notification(r)) for i, r in enumerate(batch)), ("bad", "not an event")), context)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    # one settled check, an insert into RAW_DATA and one into REJECTED_RECORDS, one claim, one commit
    assert batch_statements(stack, good[1]) == ["SELECT", "INSERT", "INSERT", "MERGE", "COMMIT"]
    statuses = {f: [s for i, s, _, _ in outcomes(stack, prefix) if i == f] for f in {file_id(r) for r in batch}}
    assert statuses == {
        **{file_id(r): ["LOADED"] for r in good[1:]},
        file_id(good[0]): ["LOADED", "SKIPPED_DUPLICATE"],
        file_id(quarantined): ["LOADED"],
        file_id(gated): ["REJECTED"],
        file_id(broken): ["REJECTED"],
        file_id(earlier): ["LOADED", "SKIPPED_DUPLICATE"],
    }
    per_file = dict(
        query(stack, "SELECT SOURCE_KEY, COUNT(*) FROM WIDF_DEMO_DB.PUBLIC.RAW_DATA WHERE SOURCE_KEY LIKE %s GROUP BY 1", (f"{prefix}%",))
    )
    assert per_file == {**{r.key: 5 for r in good}, quarantined.key: 20, earlier.key: 3}
    [(index, reason)] = query(
        stack, "SELECT RECORD_INDEX, REASON FROM WIDF_DEMO_DB.PUBLIC.REJECTED_RECORDS WHERE SOURCE_KEY = %s", (quarantined.key,)
    )
    assert index == 20 and "event_id" in reason


def test_a_file_settled_by_another_delivery_while_its_batch_loads_rolls_the_batch_back_and_each_file_loads_once(stack, loader, as_function):
    runtime.cache_clear()
    context = LambdaContext("req", loader.function.name, 512, "arn", "", "", deadline_epoch=2**40)
    prefix = "incoming/raced/"
    refs = [put(stack, loader, f"{prefix}{i}{UNNOTIFIED}", ndjson(samples.sample_events(4, seed=60 + i))) for i in range(3)]
    warehouse = runtime().warehouse
    send = warehouse.send_while_building
    settings = LoaderSettings.from_env()

    def another_delivery_first(cursor, batches):
        # a second container loads refs[1] and commits after this batch's settled check, before its claim
        other = shipped_pipeline().load_file(
            refs[1], s3=aws.client("s3", stack.info.aws_endpoint), warehouse=Warehouse(settings), settings=settings
        )
        assert other.status == "LOADED"
        warehouse.send_while_building = send
        return send(cursor, batches)

    warehouse.send_while_building = another_delivery_first
    assert lambda_handler(sqs_batch(*((str(i), notification(r)) for i, r in enumerate(refs))), context) == {"batchItemFailures": []}

    assert batch_statements(stack, refs[0]) == ["SELECT", "INSERT", "MERGE", "ROLLBACK"]
    assert rows_loaded(stack, prefix) == 12
    assert sorted(s for _, s, _, _ in outcomes(stack, prefix)) == ["LOADED"] * 3 + ["SKIPPED_DUPLICATE"]


def staging(**changes) -> LoaderSettings:
    """The function's settings with every file large enough for the stage, in batches of 500 records and parts of
    16 KiB: several parts for a few thousand records."""
    return replace(LoaderSettings.from_env(), stage_above_bytes=1, stage_part_bytes=16 * 1024, batch_rows=500, **changes)


def test_a_large_file_through_the_stage_lands_the_rows_the_bound_path_lands(stack, loader, as_function):
    events = [*samples.sample_events(3000, seed=77), {"action": "no id"}]  # the last one is quarantined
    body = ndjson(events)
    bound, staged = (put(stack, loader, f"incoming/both-ways/{way}{UNNOTIFIED}", body) for way in ("bound", "staged"))
    s3 = aws.client("s3", stack.info.aws_endpoint)
    through_stage, load_id = staging(), str(uuid.uuid4())
    warehouse = Warehouse(through_stage)
    with warehouse.tagged(tag := query_tag(staged, load_id)):
        by_stage = shipped_pipeline().load_file(staged, s3=s3, warehouse=warehouse, settings=through_stage, load_id=load_id)
    settings = LoaderSettings.from_env()
    by_binds = shipped_pipeline().load_file(bound, s3=s3, warehouse=Warehouse(settings), settings=settings)

    assert (by_stage.status, by_stage.rows_loaded, by_stage.rows_rejected) == ("LOADED", 3000, 1)
    assert (by_binds.status, by_binds.rows_loaded, by_binds.rows_rejected) == ("LOADED", 3000, 1)
    ran = statements_tagged(stack, tag)
    parts = [s for s in ran if s in ("PUT", "COPY")]
    assert len(parts) >= 4 and parts == ["PUT", "COPY"] * (len(parts) // 2), ran  # each part PUT, then copied on its own
    assert ran[-1] == "REMOVE", ran  # then cleanup
    last_copy = len(ran) - 1 - ran[::-1].index("COPY")
    assert last_copy < ran.index("MERGE") < ran.index("COMMIT")  # the COPYs are in the claim's transaction
    assert ran.count("INSERT") == 1  # the quarantined record, bound as always

    def landed(ref) -> list[tuple]:
        rows = query(
            stack,
            "SELECT RECORD_INDEX, PAYLOAD, SOURCE_FILE, SOURCE_BUCKET, SOURCE_VERSION_ID, SOURCE_ETAG, SOURCE_SIZE, LOADED_BY, LOAD_ID "
            "FROM WIDF_DEMO_DB.PUBLIC.RAW_DATA WHERE SOURCE_KEY = %s ORDER BY RECORD_INDEX",
            (ref.key,),
        )
        return [(i, json.loads(p), f, b, v, e, size, by) for i, p, f, b, v, e, size, by, _ in rows]

    staged_rows, bound_rows = landed(staged), landed(bound)
    assert [r[0] for r in staged_rows] == list(range(3000))
    assert [(i, p, b, size, by) for i, p, _, b, _, _, size, by in staged_rows] == [
        (i, p, b, size, by) for i, p, _, b, _, _, size, by in bound_rows
    ]
    assert {(f, v, e) for _, _, f, _, v, e, _, _ in staged_rows} == {(staged.uri, staged.version_id, staged.etag)}
    [(reason,)] = query(stack, "SELECT REASON FROM WIDF_DEMO_DB.PUBLIC.REJECTED_RECORDS WHERE SOURCE_KEY = %s", (staged.key,))
    assert "event_id" in reason


def test_a_copy_that_fails_fails_the_staged_attempt_with_its_error_and_lands_nothing(stack, loader, as_function):
    """The parts' COPYs run in a thread of their own while the pipeline fills the next part. The loader's role
    may no longer insert into RAW_DATA, so the first COPY fails: the attempt raises that COPY's error (not a
    later one), rolls back and records FAILED; with the grant back, the retry loads the file whole."""
    prefix = "incoming/copy-fails/"
    events = samples.sample_events(3000, seed=78)
    ref = put(stack, loader, f"{prefix}big{UNNOTIFIED}", ndjson(events))
    s3 = aws.client("s3", stack.info.aws_endpoint)
    grant = "INSERT ON TABLE WIDF_DEMO_DB.PUBLIC.RAW_DATA"
    query(stack, f"REVOKE {grant} FROM ROLE {LoaderSettings.from_env().role}")
    try:
        with pytest.raises(snowflake.connector.errors.ProgrammingError, match="Insufficient privileges") as failed:
            shipped_pipeline().load_file(ref, s3=s3, warehouse=Warehouse(staging()), settings=staging())
    finally:
        query(stack, f"GRANT {grant} TO ROLE {LoaderSettings.from_env().role}")
    assert "RAW_DATA" in str(failed.value)
    assert rows_loaded(stack, prefix) == 0
    [(_, status, _, reason)] = outcomes(stack, prefix)
    assert status == "FAILED" and "Insufficient privileges" in reason
    retried = shipped_pipeline().load_file(ref, s3=s3, warehouse=Warehouse(staging()), settings=staging())
    assert (retried.status, retried.rows_loaded) == ("LOADED", len(events))
    assert rows_loaded(stack, prefix) == len(events)


def test_a_copy_that_loads_less_than_its_part_fails_the_attempt(stack, as_function, tmp_path):
    """copy_shortfall on the gateway's own COPY results: a part loaded whole passes; a part loaded short, or one
    the COPY does not find, is named with what the COPY said (the attempt then raises PartNotLoaded and rolls back)."""
    ref = FileRef("bucket", "incoming/copy-check/file.ndjson", version_id="v1", etag="e1", size=10)
    load_id = str(uuid.uuid4())
    part = tmp_path / "t0-part-00001.ndjson.gz"
    part.write_bytes(gzip.compress(b'[0,{"event_id":"a"}]\n[1,{"event_id":"b"}]\n'))
    folder = f"{STAGE_ROOT}/{load_id}/t0/"
    context = (ref.uri, ref.bucket, ref.key, ref.version_id, ref.etag, ref.size, ref.event_time, ref.principal, ref.source_ip, load_id)
    warehouse = Warehouse(LoaderSettings.from_env())
    with warehouse.connection.cursor() as cursor:
        cursor.execute(f"PUT 'file://{part}' {folder} AUTO_COMPRESS = FALSE SOURCE_COMPRESSION = GZIP")
        cursor.execute("BEGIN")
        try:

            def copied(name: str) -> tuple[list[str], list[tuple]]:
                cursor.execute(copy_rows_statement("RAW_DATA", folder, name), (*context, "LOADER"))
                return [c[0] for c in cursor.description], cursor.fetchall()

            whole = copied(part.name)
            assert copy_shortfall(*whole, part.name, 2) is None
            assert copy_shortfall(*whole, part.name, 3) == (
                f"the COPY of staged part {part.name} did not load its 3 records: LOADED, 2 loaded"
            )
            missing = copied("t0-part-00002.ndjson.gz")
            assert copy_shortfall(*missing, "t0-part-00002.ndjson.gz", 2) == (
                "the COPY of staged part t0-part-00002.ndjson.gz did not load its 2 records: Copy executed with 0 files processed., 0 loaded"
            )
        finally:
            cursor.execute("ROLLBACK")
            cursor.execute(f"REMOVE {STAGE_ROOT}/{load_id}/")
    warehouse.reset()
    assert rows_loaded(stack, "incoming/copy-check/") == 0


STAGED = {"WIDF_STAGE_ABOVE_BYTES": "1", "WIDF_STAGE_PART_BYTES": str(16 * 1024), "WIDF_BATCH_ROWS": "100"}


def killable_staged_load(as_function: dict, ref, tag: str, load_id: str) -> subprocess.Popen:
    env = {**as_function, **STAGED, "PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", KILLABLE_LOAD, ref.bucket, ref.key, ref.version_id, tag, load_id, str(ref.size)], env=env
    )


def assert_loaded_once_by_a_retry(stack, ref, prefix: str, records: int) -> None:
    assert rows_loaded(stack, prefix) == 0 and outcomes(stack, prefix) == []
    settings = replace(staging(), batch_rows=100)
    outcome = shipped_pipeline().load_file(
        ref, s3=aws.client("s3", stack.info.aws_endpoint), warehouse=Warehouse(settings), settings=settings
    )
    assert (outcome.status, outcome.rows_loaded) == ("LOADED", records)
    assert rows_loaded(stack, prefix) == records


def test_a_staged_load_killed_among_its_parts_leaves_nothing_and_the_retry_loads_everything(stack, loader, as_function):
    """Each PUT is made to take half a second at the gateway, so the load is killed among its parts: a second
    part PUT means the first was copied (its COPY follows its PUT), in a transaction nobody commits, long
    before the claim."""
    events = samples.sample_events(12000, seed=31)  # parts of 16 KiB compressed: some twenty of them
    ref = put(stack, loader, f"incoming/killed-staging/big{UNNOTIFIED}", ndjson(events))
    load_id = str(uuid.uuid4())
    fault_plan(stack.info, {"snowflake_stall": 1.0, "stall_only": "PUT", "stall_seconds": 0.5})
    process = killable_staged_load(as_function, ref, tag := query_tag(ref, load_id), load_id)
    try:
        ran = wait_for(lambda: s if (s := statements_tagged(stack, tag)).count("PUT") >= 2 else None, seconds=60)
        assert ran is not None, f"the load's statements: {statements_tagged(stack, tag)}"
        assert process.poll() is None, "the load finished before it could be killed; make the file larger"
    finally:
        process.kill()
        process.wait()
        fault_plan(stack.info, {})
    ran = statements_tagged(stack, tag)
    assert "COPY" in ran and "MERGE" not in ran, ran  # killed with parts copied, before its claim
    assert_loaded_once_by_a_retry(stack, ref, "incoming/killed-staging/", len(events))


def test_a_staged_load_killed_during_its_copy_leaves_nothing_and_the_retry_loads_everything(stack, loader, as_function):
    """The COPY is made to wait three seconds at the gateway, and the load is killed meanwhile; the COPY still runs
    (as Snowflake runs a statement whose client has gone), in a transaction nobody commits."""
    events = samples.sample_events(2000, seed=32)
    ref = put(stack, loader, f"incoming/killed-copy/big{UNNOTIFIED}", ndjson(events))
    load_id = str(uuid.uuid4())
    stalls = fault_plan(stack.info, {"snowflake_stall": 1.0, "stall_only": "COPY", "stall_seconds": 3.0})["injected"].get(
        "snowflake_stall", 0
    )
    process = killable_staged_load(as_function, ref, tag := query_tag(ref, load_id), load_id)
    try:
        stalled = wait_for(lambda: fault_plan(stack.info)["injected"].get("snowflake_stall", 0) > stalls or None, seconds=60)
        assert stalled, f"the COPY never came: {statements_tagged(stack, tag)}"
        process.kill()
    finally:
        process.kill()
        process.wait()
        fault_plan(stack.info, {})
    assert wait_for(lambda: "COPY" in statements_tagged(stack, tag) or None, seconds=30), "the orphaned COPY never ran"
    assert "MERGE" not in statements_tagged(stack, tag)
    assert_loaded_once_by_a_retry(stack, ref, "incoming/killed-copy/", len(events))


@pytest.fixture(autouse=True)
def _fresh_runtime():
    yield
    runtime.cache_clear()
