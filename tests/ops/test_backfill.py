"""`widf-loader backfill` loads files that landed before the pipeline (or during an outage)
exactly once, through the function; `replay-dlq` returns dead letters to the function's queue."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson

from helpers import admin_connections_toml, notification
from widf_cli.local_stack import admin_connection
from widf_loader.events import FileRef, file_id
from widf_local import aws, samples
from widf_ops.queues import queue_depth
from widf_ops.stack_outputs import wait_for

LEDGER = "WIDF_DEMO_DB.PUBLIC.LOAD_HISTORY"


def query(stack, sql: str, params: tuple = ()) -> list[tuple]:
    with admin_connection(stack.info) as connection:
        return connection.cursor().execute(sql, params).fetchall()


def ledger_rows(stack, prefix: str) -> list[tuple]:
    return query(stack, f"SELECT FILE_ID, STATUS FROM {LEDGER} WHERE SOURCE_KEY LIKE %s ORDER BY FILE_ID, STATUS", (f"{prefix}%",))


def raw_rows(stack, prefix: str) -> int:
    return query(stack, "SELECT COUNT(*) FROM WIDF_DEMO_DB.PUBLIC.RAW_DATA WHERE SOURCE_KEY LIKE %s", (f"{prefix}%",))[0][0]


def messages_in(stack, queue_url: str) -> int:
    return queue_depth(aws.client("sqs", stack.info.aws_endpoint), queue_url).total


@contextmanager
def events_off(stack, loader) -> Iterator[None]:
    """Objects put inside land as before the pipeline existed: the bucket notifies nobody."""
    s3, bucket = aws.client("s3", stack.info.aws_endpoint), loader.resources.bucket
    saved = {k: v for k, v in s3.get_bucket_notification_configuration(Bucket=bucket).items() if k != "ResponseMetadata"}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    try:
        yield
    finally:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=saved)
        # Restoring the rules sends an s3:TestEvent; once the function has taken it, the queue is empty.
        assert wait_for(lambda: True if messages_in(stack, loader.resources.queue_url) == 0 else None, seconds=60)


def put_files(stack, bucket: str, prefix: str, count: int, records: int = 2, seed: int = 0) -> dict[str, FileRef]:
    """`count` small NDJSON files; returns FILE_ID -> the object version."""
    s3 = aws.client("s3", stack.info.aws_endpoint)
    files = {}
    for i in range(count):
        key = f"{prefix}file {i:04d}.ndjson"
        body = b"\n".join(orjson.dumps(e) for e in samples.sample_events(records, seed=seed + i))
        version = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
        ref = FileRef(bucket, key, version_id=version)
        files[file_id(ref)] = ref
    return files


def backfill(stack, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return stack.cli("backfill", *args, check=check, timeout=600)


def test_backfill_loads_preexisting_files_once_and_a_rerun_sends_nothing(stack, loader):
    bucket, prefix, count, records = loader.resources.bucket, "incoming/history/", 30, 2
    with events_off(stack, loader):
        files = put_files(stack, bucket, prefix, count, records)
        aws.client("s3", stack.info.aws_endpoint).put_object(Bucket=bucket, Key=f"{prefix}README.txt", Body=b"not for the function")
    assert ledger_rows(stack, prefix) == []  # the queue is empty, so no event is on its way either

    first = backfill(stack, f"s3://{bucket}/{prefix}")
    assert re.search(rf"to send\s*│\s*{count} ", first.stdout), first.stdout
    assert f"{count}/{count} files" in first.stdout and "files/s" in first.stdout and "ETA" in first.stdout
    assert f"{count} loaded ({count * records} rows), 0 rejected, 0 skipped (object gone), 0 failed, 0 without an outcome" in first.stdout
    # One LOADED row per file. SQS delivers at least once (and moto's ReceiveMessage is not atomic across
    # concurrent pollers), so a file may also have a SKIPPED_DUPLICATE row: a second delivery, settled by the ledger.
    history = ledger_rows(stack, prefix)
    assert sorted(fid for fid, status in history if status == "LOADED") == sorted(files)
    assert {status for _, status in history} <= {"LOADED", "SKIPPED_DUPLICATE"}
    assert raw_rows(stack, prefix) == count * records
    principals = query(
        stack, "SELECT DISTINCT SOURCE_PRINCIPAL FROM WIDF_DEMO_DB.PUBLIC.RAW_DATA WHERE SOURCE_KEY LIKE %s", (f"{prefix}%",)
    )
    assert [p for (p,) in principals] == [f"widf-loader-backfill:arn:aws:sts::{aws.ACCOUNT_ID}:user/moto"]

    again = backfill(stack, f"s3://{bucket}/{prefix}")
    assert re.search(rf"already loaded\s*│\s*{count} ", again.stdout) and re.search(r"to send\s*│\s*0 ", again.stdout), again.stdout
    assert f"Nothing to send: all {count} files" in again.stdout and "already loaded" in again.stdout
    assert messages_in(stack, loader.resources.queue_url) == 0
    assert ledger_rows(stack, prefix) == history and raw_rows(stack, prefix) == count * records


def test_backfill_since_sends_only_files_modified_since(stack, loader):
    bucket, prefix = loader.resources.bucket, "incoming/since/"
    s3 = aws.client("s3", stack.info.aws_endpoint)
    with events_off(stack, loader):
        put_files(stack, bucket, f"{prefix}old/", 3)
        last_old = max(v["LastModified"] for v in s3.list_object_versions(Bucket=bucket, Prefix=prefix)["Versions"])
        since = last_old + timedelta(seconds=1)  # S3 times have whole seconds
        assert wait_for(lambda: True if datetime.now(UTC) >= since + timedelta(seconds=1) else None, seconds=10)
        recent = put_files(stack, bucket, f"{prefix}new/", 2, seed=100)

    result = backfill(stack, f"s3://{bucket}/{prefix}", "--since", since.isoformat())
    assert re.search(r"modified before .*│\s*3 ", result.stdout), result.stdout
    assert "2 loaded" in result.stdout
    assert ledger_rows(stack, prefix) == sorted((fid, "LOADED") for fid in recent)


def test_backfill_dry_run_lists_what_it_would_send_and_sends_nothing(stack, loader):
    bucket, prefix = loader.resources.bucket, "incoming/dry/"
    with events_off(stack, loader):
        files = put_files(stack, bucket, prefix, 3)
        aws.client("s3", stack.info.aws_endpoint).put_object(Bucket=bucket, Key=f"{prefix}broken.json", Body=b'[{"action": ')

    dry = backfill(stack, f"s3://{bucket}/{prefix}", "--dry-run")
    assert "Dry run: would send 4 files" in dry.stdout and "sent nothing" in dry.stdout
    assert all(ref.key in dry.stdout for ref in files.values())
    assert messages_in(stack, loader.resources.queue_url) == 0 and ledger_rows(stack, prefix) == []
    # Had the dry run sent anything, this run would find those files already settled.
    real = backfill(stack, f"s3://{bucket}/{prefix}")
    assert re.search(r"to send\s*│\s*4 ", real.stdout), real.stdout
    assert "3 loaded (6 rows), 1 rejected" in real.stdout
    assert re.search(r"incoming/dry/broken.json\s*│\s*REJECTED\s*│.*invalid JSON", real.stdout), real.stdout


def test_backfill_refuses_what_is_not_an_s3_url(stack, loader):
    for url, complaint in (("incoming/", "is not an S3 URL: write s3://BUCKET/PREFIX"), ("s3://Bad_Bucket/x", "is not an S3 bucket name")):
        result = backfill(stack, url, check=False)
        assert result.returncode == 1 and complaint in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    result = backfill(stack, f"s3://{loader.resources.bucket}/", "--since", "last tuesday", check=False)
    assert result.returncode == 1 and "--since 'last tuesday' is neither a date" in " ".join(result.stderr.split())
    with events_off(stack, loader):
        result = backfill(stack, f"s3://{loader.resources.bucket}/incoming/", check=False)
    assert result.returncode == 1 and "sends no ObjectCreated notifications to the function's queue" in " ".join(result.stderr.split())


def test_backfill_works_against_the_cloud_target(stack, loader, tmp_path):
    """`--target cloud`: the standard AWS chain (pointed at the local moto) and a named Snowflake connection."""
    bucket, prefix = loader.resources.bucket, "incoming/cloud/"
    with events_off(stack, loader):
        files = put_files(stack, bucket, prefix, 2)
    info = stack.info
    admin_connections_toml(tmp_path, info)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SNOWFLAKE_", "WIDF_"))}
    result = subprocess.run(
        [sys.executable, "-m", "widf_cli", "--target", "cloud", "backfill", f"s3://{bucket}/{prefix}"],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env=inherited
        | {
            "COLUMNS": "200",
            "AWS_ENDPOINT_URL": info.aws_endpoint,
            "AWS_DEFAULT_REGION": aws.REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ACCESS_KEY_ID": aws.ADMIN_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": aws.ADMIN_CREDENTIALS["aws_secret_access_key"],
            "SNOWFLAKE_HOME": str(tmp_path),
            "SNOWFLAKE_CONNECTION_NAME": "admin",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 loaded" in result.stdout
    assert ledger_rows(stack, prefix) == sorted((fid, "LOADED") for fid in files)


def test_replay_dlq_returns_dead_letters_to_the_queue_where_they_load(stack, loader):
    bucket, prefix = loader.resources.bucket, "incoming/dead/"
    with events_off(stack, loader):
        files = put_files(stack, bucket, prefix, 3)
    sqs, dlq = aws.client("sqs", stack.info.aws_endpoint), loader.resources.dlq_url
    for ref in files.values():  # what S3 sent for the object, as it waits in the dead-letter queue
        sqs.send_message(QueueUrl=dlq, MessageBody=notification(replace(ref, size=1, etag="e")))

    peek = stack.cli("replay-dlq", "--dry-run")
    assert "holds about 3 messages" in peek.stdout and "moved nothing" in peek.stdout
    assert all(ref.uri in peek.stdout for ref in files.values())
    assert ledger_rows(stack, prefix) == []

    assert "Moved 2 messages" in stack.cli("replay-dlq", "--max", "2").stdout
    assert "Moved 1 message from" in stack.cli("replay-dlq").stdout
    assert messages_in(stack, dlq) == 0
    history = wait_for(lambda: r if len(r := ledger_rows(stack, prefix)) == len(files) else None, seconds=120)
    assert history == sorted((fid, "LOADED") for fid in files)
    # The loads came from the very messages that waited: their event time and sequencer, not new ones.
    context = query(stack, f"SELECT DISTINCT SOURCE_EVENT_TIME, SOURCE_SEQUENCER FROM {LEDGER} WHERE SOURCE_KEY LIKE %s", (f"{prefix}%",))
    assert context == [("2026-11-27T10:00:00.000Z", "00")]
    assert "Moved 0 messages" in stack.cli("replay-dlq").stdout


# -- the pieces, on plain data ---------------------------------------------------------


def test_a_backfill_message_names_the_same_file_as_the_s3_event_would():
    from widf_loader.events import file_refs_from_sqs_body
    from widf_ops.backfill import file_ref, notification_body

    listed = {
        "Key": "incoming/a b+c/ü.json",
        "VersionId": "v1",
        "ETag": '"abc"',
        "Size": 12,
        "IsLatest": True,
        "LastModified": datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
    }
    sent = file_ref("landing", listed)
    [received] = file_refs_from_sqs_body(notification_body(sent, "widf-loader-backfill:arn:aws:sts::1:user/me"))
    assert file_id(received) == "landing/incoming/a b+c/ü.json#v1"
    assert (received.key, received.etag, received.size, received.sequencer) == (listed["Key"], "abc", 12, None)
    assert (received.event_name, received.event_time, received.principal) == (
        "ObjectCreated:Backfill",
        "2024-05-01T12:00:00.123Z",
        "widf-loader-backfill:arn:aws:sts::1:user/me",
    )
    unversioned = file_ref("landing", {**listed, "VersionId": "null"})  # an unversioned bucket lists "null"
    assert file_id(unversioned) == "landing/incoming/a b+c/ü.json#abc"


def test_only_keys_the_notification_rules_send_to_the_queue_are_landing_keys():
    from widf_ops.queues import landing_rules

    queue = "arn:aws:sqs:us-east-1:1:events"

    def rule(arn: str, suffix: str, events: tuple[str, ...] = ("s3:ObjectCreated:*",)) -> dict:
        return {
            "QueueArn": arn,
            "Events": list(events),
            "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "incoming/"}, {"Name": "Suffix", "Value": suffix}]}},
        }

    configuration = {
        "QueueConfigurations": [
            rule(queue, ".json"),
            rule("arn:aws:sqs:us-east-1:1:other", ".csv"),
            rule(queue, ".txt", events=("s3:ObjectRemoved:*",)),
        ]
    }
    rules = landing_rules(configuration, queue)
    assert [k for k in ("incoming/a.json", "incoming/a.csv", "incoming/a.txt", "other/a.json") if any(r.matches(k) for r in rules)] == [
        "incoming/a.json"
    ]


def test_a_file_counts_as_failed_only_once_its_retries_are_used_up():
    from collections import Counter

    from widf_loader.events import FileRef
    from widf_ops.backfill import LedgerRow, outcome_of

    ref = FileRef(bucket="b", key="incoming/x.json", version_id="v")
    failed = LedgerRow("b/incoming/x.json#v", "FAILED", 0, "OperationalError: warehouse suspended")
    earlier = Counter({("b/incoming/x.json#v", "FAILED"): 1})  # a failure from before this backfill
    assert outcome_of(ref, [failed, failed], earlier, failures_until_dead=3) is None
    dead = outcome_of(ref, [failed] * 4, earlier, failures_until_dead=3)  # three of them during this backfill
    assert dead is not None and (dead.status, dead.reason) == ("FAILED", "OperationalError: warehouse suspended")
    loaded = outcome_of(ref, [failed, LedgerRow("b/incoming/x.json#v", "LOADED", 7, None)], earlier, failures_until_dead=3)
    assert loaded is not None and (loaded.status, loaded.rows_loaded) == ("LOADED", 7)


def test_since_takes_a_date_a_time_or_a_duration():
    from widf_ops.backfill import parse_since

    now = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2024, 5, 3, 12, 0, tzinfo=UTC)
    assert parse_since("2024-05-01", now) == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_since("2024-05-01T12:00:00+02:00", now) == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
