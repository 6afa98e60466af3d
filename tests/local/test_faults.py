"""Faults injected into the local stack while it loads: nothing is lost, nothing doubles.

Each test turns on one kind of fault (the soak, all of them at random), loads
files through the deployed function, turns the faults off, and checks the
outcome: every file has exactly one LOADED row and its records exactly once,
or it sits in the dead-letter queue with a FAILED reason.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field

import orjson
import pytest

from helpers import notification
from widf_cli.local_stack import admin_connection, deployed
from widf_loader.events import FileRef, file_id, file_refs_from_sqs_body
from widf_local import aws, samples
from widf_local.deploy import update_function_configuration
from widf_local.pytest_plugin import gateway_stats
from widf_local.stack import fault_plan
from widf_ops.queues import queue_depth
from widf_ops.stack_outputs import wait_for

LEDGER = "WIDF_DEMO_DB.PUBLIC.LOAD_HISTORY"
RAW_DATA = "WIDF_DEMO_DB.PUBLIC.RAW_DATA"
QUERY_HISTORY = "TABLE(WIDF_DEMO_DB.INFORMATION_SCHEMA.QUERY_HISTORY(RESULT_LIMIT => 10000))"
# Redelivery after a killed or timed-out invocation waits out the visibility timeout:
# the template's is six times the function's timeout; an operator may shorten it.
SHORT_VISIBILITY_SECONDS = 4
SOAK_FILES = int(os.environ.get("WIDF_SOAK_FILES", "60"))
UPLOAD_WAVE = 200


@pytest.fixture(scope="module")
def function(stack):
    stack.cli("snow", "setup")
    # Enough deliveries that random faults alone never exhaust a message.
    stack.cli("aws", "deploy", "--parameter", "MaxReceiveCount=12", "--parameter", "MaximumConcurrency=2")
    stack.cli("snow", "lambda-wid")
    deployment = deployed(stack.paths)
    set_visibility(stack, deployment.resources.queue_url, SHORT_VISIBILITY_SECONDS)
    return deployment


def set_visibility(stack, queue_url: str, seconds: int) -> None:
    """Set the queue's VisibilityTimeout, then wait until every receive the runner has open began after it.

    A receive gives its messages the timeout as it was when the receive began (see
    LambdaRunner.oldest_open_receive): a file uploaded at once could otherwise be received by an older receive
    and stay invisible for the template's timeout, minutes, instead of this one."""
    aws.client("sqs", stack.info.aws_endpoint).set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(seconds)})
    changed = time.time()

    def no_older_receive_open():
        oldest = gateway_stats(stack)["oldest_open_receive"]
        return True if oldest is None or oldest > changed else None

    assert wait_for(no_older_receive_open, seconds=30), "a receive begun before the change is still open"


@pytest.fixture(autouse=True)
def faults_off_afterwards(stack):
    yield
    fault_plan(stack.info, {})


@dataclass
class Batch:
    prefix: str
    records: dict[str, int] = field(default_factory=dict)  # file id -> records in it
    redelivered: int = 0


def upload(stack, function, prefix: str, files: int, seed: int, redeliver: float = 0.0) -> Batch:
    s3 = aws.client("s3", stack.info.aws_endpoint)
    sqs = aws.client("sqs", stack.info.aws_endpoint)
    chance = random.Random(seed)
    batch = Batch(prefix)
    for i in range(files):
        if i and i % UPLOAD_WAVE == 0:  # moto's SQS scans every message per call: keep its queue short
            assert wait_for(lambda: messages_in(stack, function.resources.queue_url) < UPLOAD_WAVE or None, seconds=600)
        events = samples.sample_events(1 + chance.randrange(30), seed=seed * 100_000 + i)
        key = f"{prefix}{i:05d}.json"
        version = s3.put_object(Bucket=function.resources.bucket, Key=key, Body=orjson.dumps(events))["VersionId"]
        ref = FileRef(function.resources.bucket, key, version_id=version, size=0)
        batch.records[file_id(ref)] = len(events)
        if chance.random() < redeliver:  # the queue delivers a message twice, as SQS may
            sqs.send_message(QueueUrl=function.resources.queue_url, MessageBody=notification(ref))
            batch.redelivered += 1
    return batch


def query(stack, sql: str, params: tuple = ()) -> list[tuple]:
    with admin_connection(stack.info) as connection:
        return connection.cursor().execute(sql, params).fetchall()


def messages_in(stack, url: str) -> int:
    return queue_depth(aws.client("sqs", stack.info.aws_endpoint), url).total


def dead_letters(stack, function, prefix: str) -> set[str]:
    """File ids under `prefix` of the messages in the dead-letter queue (read, and left there)."""
    sqs = aws.client("sqs", stack.info.aws_endpoint)
    found: set[str] = set()
    while messages := sqs.receive_message(QueueUrl=function.resources.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=5).get(
        "Messages", []
    ):
        for message in messages:
            found |= {file_id(ref) for ref in file_refs_from_sqs_body(message["Body"]) if ref.key.startswith(prefix)}
    return found


@dataclass
class Outcome:
    loaded: dict[str, int]  # file id -> LOADED rows in the ledger
    rows: dict[str, int]  # file id -> rows in RAW_DATA
    doubled_records: int  # (file, record index) pairs present more than once
    failed_reasons: dict[str, str]
    dead: set[str]


def settle(stack, function, batch: Batch, seconds: float = 300) -> Outcome:
    """Wait until the queue is empty and every file is loaded or dead-lettered; then read the outcome."""

    def done():
        if messages_in(stack, function.resources.queue_url):
            return None
        loaded = query(
            stack, f"SELECT COUNT(DISTINCT FILE_ID) FROM {LEDGER} WHERE SOURCE_KEY LIKE %s AND STATUS = 'LOADED'", (f"{batch.prefix}%",)
        )
        return True if loaded[0][0] + messages_in(stack, function.resources.dlq_url) >= len(batch.records) else None

    assert wait_for(done, seconds=seconds), f"{batch.prefix}: not settled within {seconds} s"
    like = (f"{batch.prefix}%",)
    ledger = query(stack, f"SELECT FILE_ID, STATUS, REASON FROM {LEDGER} WHERE SOURCE_KEY LIKE %s", like)
    loaded: dict[str, int] = {}
    failed: dict[str, str] = {}
    for fid, status, reason in ledger:
        if status == "LOADED":
            loaded[fid] = loaded.get(fid, 0) + 1
        elif status == "FAILED":
            failed[fid] = reason
    per_version = query(
        stack,
        f"SELECT SOURCE_BUCKET, SOURCE_KEY, SOURCE_VERSION_ID, COUNT(*) FROM {RAW_DATA} WHERE SOURCE_KEY LIKE %s GROUP BY 1, 2, 3",
        like,
    )
    rows = {file_id(FileRef(bucket, key, version_id=version)): count for bucket, key, version, count in per_version}
    doubled = query(
        stack,
        f"SELECT COUNT(*) FROM (SELECT SOURCE_FILE, RECORD_INDEX FROM {RAW_DATA} WHERE SOURCE_KEY LIKE %s GROUP BY 1, 2 HAVING COUNT(*) > 1)",
        like,
    )[0][0]
    return Outcome(loaded, rows, doubled, failed, dead_letters(stack, function, batch.prefix))


def assert_exactly_once(batch: Batch, outcome: Outcome) -> None:
    everything = set(batch.records)
    assert set(outcome.loaded) | outcome.dead == everything, "a file was neither loaded nor dead-lettered"
    assert all(count == 1 for count in outcome.loaded.values()), "a file was loaded twice"
    assert outcome.doubled_records == 0
    assert {f: outcome.rows.get(f, 0) for f in outcome.loaded} == {f: batch.records[f] for f in outcome.loaded}, "rows lost or doubled"
    assert not set(outcome.rows) - set(outcome.loaded), "rows of a file that was not loaded"
    assert all(outcome.failed_reasons.get(f) for f in outcome.dead), "a dead-lettered file has no recorded reason"


def injected_since(stack, before: dict[str, int]) -> dict[str, int]:
    """How often each fault fired since `before` (a fault plan report's counts), by the injector's own counters."""
    after = fault_plan(stack.info)["injected"]
    return {fault: count - before.get(fault, 0) for fault, count in after.items() if count > before.get(fault, 0)}


def test_lost_answers_and_refused_statements_neither_lose_nor_double_rows(stack, function):
    before = fault_plan(stack.info, {"snowflake_response_lost": 0.25, "snowflake_unavailable": 0.1, "seed": 1})["injected"]
    batch = upload(stack, function, "incoming/faults/snowflake/", files=12, seed=1)
    outcome = settle(stack, function, batch)
    fired = injected_since(stack, before)
    assert fired.get("snowflake_response_lost", 0) >= 1, f"no answer was lost: {fired}"
    assert fired.get("snowflake_unavailable", 0) >= 1, f"no statement was refused: {fired}"
    # and the load itself met them: statements of its files (by their QUERY_TAG: a file's, or a batch's naming its
    # files) whose lost answers were asked again
    tagged = query(
        stack,
        f"SELECT QUERY_ID, QUERY_TAG FROM {QUERY_HISTORY} WHERE QUERY_TAG LIKE %s",
        (f"%{function.resources.bucket}/{batch.prefix}%",),
    )

    def names_ours(tag: dict) -> bool:
        files = tag.get("file_ids") if isinstance(tag.get("file_ids"), list) else [tag.get("file_id")]
        return any(f in batch.records for f in files)

    ours = {query_id for query_id, tag in tagged if names_ours(orjson.loads(tag))}
    assert set(gateway_stats(stack)["resent"]) & ours, "no statement of the load was resent after its answer was lost"
    assert_exactly_once(batch, outcome)
    assert not outcome.dead


def test_a_resent_request_is_answered_from_its_first_run(stack, function):
    """What makes a lost answer harmless: Snowflake does not run a resent requestId twice.

    The proof that the answer was lost and the request resent: the injector counts the lost answer, and
    the gateway counts the resent requestId against the statement's query id (the cursor's sfqid); the
    statement ran once, by QUERY_HISTORY and by the table's rows."""
    with admin_connection(stack.info) as connection:
        cursor = connection.cursor()
        cursor.execute("CREATE OR REPLACE TABLE WIDF_DEMO_DB.PUBLIC.RESENT (N NUMBER)")
        before = fault_plan(stack.info, {"snowflake_response_lost": 1.0})["injected"]  # every answer is lost once; the connector resends
        try:
            cursor.execute("INSERT INTO WIDF_DEMO_DB.PUBLIC.RESENT VALUES (1)")
            query_id = cursor.sfqid
        finally:
            fault_plan(stack.info, {})
        lost = injected_since(stack, before).get("snowflake_response_lost", 0)
        assert lost >= 1, "no answer was lost"
        assert gateway_stats(stack)["resent"].get(query_id) == 1, "the statement's request was not resent (once) with its requestId"
        runs = cursor.execute(f"SELECT COUNT(*) FROM {QUERY_HISTORY} WHERE QUERY_ID = %s", (query_id,)).fetchone()[0]
        assert runs == 1, "the resent statement ran again"
        assert cursor.execute("SELECT COUNT(*) FROM WIDF_DEMO_DB.PUBLIC.RESENT").fetchone()[0] == 1


def wait_for_injected(stack, fault: str, count: int) -> None:
    """Let a fault fire `count` times (from now), then stop it."""
    before = fault_plan(stack.info)["injected"].get(fault, 0)
    fired = wait_for(lambda: fault_plan(stack.info)["injected"].get(fault, 0) >= before + count or None, seconds=90)
    fault_plan(stack.info, {})
    assert fired, f"{fault} did not fire {count} times"


def fresh_containers(stack, function, timeout_seconds: int) -> None:
    """A configuration change retires the warm containers: the next invocation starts cold and logs in."""
    update_function_configuration(stack.paths, timeout_seconds=timeout_seconds)


@pytest.mark.parametrize(
    ("fault", "files", "fires", "seed"),
    [
        pytest.param("s3_slowdown", 3, 6, 2, id="s3-throttling-is-retried"),
        pytest.param("container_killed", 4, 2, 4, id="a-killed-container-leaves-nothing-behind-and-the-redelivery-loads"),
    ],
)
def test_a_fault_that_fires_loses_nothing_and_loads_nothing_twice(stack, function, fault, files, fires, seed):
    fault_plan(stack.info, {fault: 1.0, "seed": seed})
    batch = upload(stack, function, f"incoming/faults/{fault}/", files=files, seed=seed)
    wait_for_injected(stack, fault, fires)
    outcome = settle(stack, function, batch)
    assert_exactly_once(batch, outcome)
    assert not outcome.dead


def test_an_unavailable_sts_delays_the_load_and_loses_nothing(stack, function):
    fresh_containers(stack, function, timeout_seconds=29)
    try:
        fault_plan(stack.info, {"sts_unavailable": 1.0})
        batch = upload(stack, function, "incoming/faults/sts/", files=2, seed=3)
        wait_for_injected(stack, "sts_unavailable", 3)  # the cold container's logins, and the loader's retries of them
        outcome = settle(stack, function, batch)
    finally:
        fresh_containers(stack, function, timeout_seconds=function.function.timeout_seconds)
    assert_exactly_once(batch, outcome)
    assert not outcome.dead


def test_an_invocation_killed_at_its_timeout_leaves_no_lock_behind(stack, function):
    """A statement stalls past the function's timeout; Lambda kills the invocation, but the
    statement runs on, detached, and its transaction keeps the ledger's lock. The next
    delivery waits for the lock (LOCK_TIMEOUT, well inside the function's timeout), aborts
    the transaction no live invocation can own, and the retry loads the file once."""
    spec, queue = function.function, function.resources.queue_url
    short = {**spec.environment, "WIDF_FUNCTION_TIMEOUT_SECONDS": "8"}
    update_function_configuration(stack.paths, timeout_seconds=8, environment=short)
    # Past the timeout, as the template has it, and past the stall below: the redelivery's claim comes after the
    # detached claim ran and took the lock (about 2 s after the invocation began, then 10 s of stall).
    set_visibility(stack, queue, 15)
    try:
        before = fault_plan(stack.info, {"snowflake_stall": 1.0, "stall_seconds": 10, "stall_only": "MERGE"})["injected"]  # the claim
        since = int(time.time() * 1000)  # this test's log lines only: an earlier test's invocation may have timed out too
        batch = upload(stack, function, "incoming/faults/timeout/", files=1, seed=5)
        logs = aws.client("logs", stack.info.aws_endpoint)

        def logged(text: str) -> list:
            return logs.filter_log_events(logGroupName=f"/aws/lambda/{spec.name}", filterPattern=f'"{text}"', startTime=since)["events"]

        def timed_out():
            return logged("Task timed out") or None

        assert wait_for(timed_out, seconds=60), "the stalled invocation never timed out"
        fault_plan(stack.info, {})
        stalled = injected_since(stack, before).get("snowflake_stall", 0)
        outcome = settle(stack, function, batch, seconds=120)
        # The runner ships the function's lines to CloudWatch Logs as they come: the line may trail the ledger row.
        aborted = wait_for(lambda: logged("detached transaction") or None, seconds=30)
    finally:
        update_function_configuration(stack.paths, timeout_seconds=spec.timeout_seconds, environment=spec.environment)
        set_visibility(stack, queue, SHORT_VISIBILITY_SECONDS)
    assert stalled >= 1, "no claim was stalled"
    assert_exactly_once(batch, outcome)
    assert not outcome.dead
    assert aborted, "the detached transaction was not aborted by the loader"


def test_a_function_given_a_snowflake_password_fails_its_init_visibly_and_loads_once_it_is_taken_away(stack, function):
    """The guard runs at the handler's import: the function fails its init, before any event, with one line that
    names the variable, and the runner reports it as Lambda reports an exception raised at init (the runtime's
    `[ERROR]` line, `INIT_REPORT ... Status: error`, a failed invocation). The message waits in the queue."""
    spec = function.function
    logs = aws.client("logs", stack.info.aws_endpoint)
    group = f"/aws/lambda/{spec.name}"
    since = int(time.time() * 1000)
    given = {**spec.environment, "SNOWFLAKE_PASSWORD": "made-up-password"}  # pragma: allowlist secret
    update_function_configuration(stack.paths, timeout_seconds=spec.timeout_seconds, environment=given)
    try:
        batch = upload(stack, function, "incoming/faults/init/", files=1, seed=8)
        reports = wait_for(
            lambda: logs.filter_log_events(logGroupName=group, startTime=since, filterPattern='"INIT_REPORT"')["events"] or None, seconds=60
        )
        naming = logs.filter_log_events(logGroupName=group, startTime=since, filterPattern='"SNOWFLAKE_PASSWORD"')["events"]
    finally:
        update_function_configuration(stack.paths, timeout_seconds=spec.timeout_seconds, environment=spec.environment)
    assert reports, "no init failure was reported"
    assert reports[0]["message"].endswith("\tPhase: init\tStatus: error\tError Type: ConfigError"), reports[0]["message"]
    assert {e["message"] for e in naming} == {
        "[ERROR] ConfigError: Refusing to start: SNOWFLAKE_PASSWORD is set (a password). widf-loader logs in with workload identity "
        "only and must hold no Snowflake secret or connection of its own; remove it from the function's environment."
    }
    outcome = settle(stack, function, batch)  # with the password gone, the next delivery loads
    assert_exactly_once(batch, outcome)
    assert not outcome.dead


def test_soak_with_random_faults_loads_every_unique_file_exactly_once(stack, function):
    # Each kind draws from a generator of its own, seeded by the plan (widf_local.faults): with seed 2779 every
    # kind first fires within the chances even the 60-file run is sure to give it: STS at its first chance (the
    # soak's first login: its first invocation starts cold after the previous test, or after the killed
    # container), a killed container at the second invocation (60 files take 6 at least), SlowDown at the
    # second GetObject (of 60 at least), the Snowflake faults within 12 statements (of 24 at least: ten small
    # files of a batch load in four).
    plan = {
        "snowflake_unavailable": 0.02,
        "snowflake_response_lost": 0.02,
        "sts_unavailable": 0.2,
        "s3_slowdown": 0.05,
        "container_killed": 0.03,
        "seed": 2779,
    }
    before = fault_plan(stack.info, plan)
    batch = upload(stack, function, "incoming/faults/soak/", files=SOAK_FILES, seed=6, redeliver=0.1)
    outcome = settle(stack, function, batch, seconds=120 + SOAK_FILES * 2)
    after = fault_plan(stack.info, {})
    planned = sorted(fault for fault, probability in plan.items() if fault != "seed" and probability > 0)
    fired = {fault: after["injected"].get(fault, 0) - before["injected"].get(fault, 0) for fault in planned}
    chances = {fault: after["chances"].get(fault, 0) - before["chances"].get(fault, 0) for fault in planned}
    unique_rows = sum(batch.records.values())
    loaded_rows = sum(outcome.rows.values())
    dead_rows = sum(batch.records[f] for f in outcome.dead)
    summary = (
        f"SOAK files={len(batch.records)} redelivered={batch.redelivered} faults={sum(fired.values())} {fired} chances={chances} "
        f"loaded={len(outcome.loaded)} dead={len(outcome.dead)} rows={loaded_rows}/{unique_rows} doubled={outcome.doubled_records}"
    )
    print(f"\n{summary}")  # `make soak` runs with -s: these are the figures the assertions below hold
    assert [fault for fault in planned if fired[fault] < 1] == [], f"a planned fault never fired: {summary}"
    assert_exactly_once(batch, outcome)
    assert loaded_rows + dead_rows == unique_rows, summary
