"""A local Lambda service for one SQS-triggered function.

It does what the Lambda event-source mapping does: long-poll the queue, hand
a batch to a warm container, delete only the messages that succeeded
(`batchItemFailures`), and leave the rest to become visible again - so the
queue's redrive policy, not the runner, decides when a message is poison.
The container runs with the execution role's credentials from local STS and
the function's environment, nothing of the runner's own.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from widf_local.aws import ACCOUNT_ID, REGION, FunctionSpec, client
from widf_local.faults import FaultInjector
from widf_local.stack import FunctionLaunch
from widf_local.worker import END_OF_OUTPUT

log = logging.getLogger("widf_loader.runner")
CREDENTIAL_REFRESH_MARGIN_SECONDS = 600
OUTPUT_DRAIN_SECONDS = 10  # how long END waits for the invocation's last lines to be shipped


@dataclass(frozen=True)
class Invocation:
    ok: bool
    result: Any = None
    error: str | None = None
    timed_out: bool = False
    init_failed: bool = False  # the container's init failed: no event was handled


@dataclass
class RoleCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


def function_environment(spec: FunctionSpec, credentials: RoleCredentials, runtime: dict[str, str], log_stream: str) -> dict[str, str]:
    """Exactly what Lambda gives a function: its own variables plus the runtime's."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        **spec.environment,
        **runtime,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
        "AWS_SESSION_TOKEN": credentials.session_token,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
    }


def sqs_event(messages: list[dict], queue_arn: str) -> dict:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody"),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def succeeded_messages(messages: list[dict], invocation: Invocation) -> list[dict]:
    """The messages Lambda would delete after this invocation."""
    if not invocation.ok:
        return []
    failures = (invocation.result or {}).get("batchItemFailures", []) if isinstance(invocation.result, dict) else []
    failed_ids = {f.get("itemIdentifier") for f in failures}
    return [m for m in messages if m["MessageId"] not in failed_ids]


class CloudWatchLogSink:
    """Ships a container's output to its log stream, where `aws logs` reads it."""

    def __init__(self, endpoint: str, group: str, stream: str):
        self.logs = client("logs", endpoint)
        self.group, self.stream = group, stream
        self.lock = threading.Lock()
        try:
            self.logs.create_log_group(logGroupName=group)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        self.logs.create_log_stream(logGroupName=group, logStreamName=stream)

    def write(self, message: str) -> None:
        if not message.strip():
            return  # CloudWatch Logs refuses empty events; Lambda drops blank lines too
        with self.lock:
            self.logs.put_log_events(
                logGroupName=self.group,
                logStreamName=self.stream,
                logEvents=[{"timestamp": int(time.time() * 1000), "message": message}],
            )
        log.info("[%s] %s", self.stream, message)


class Container:
    def __init__(
        self,
        spec: FunctionSpec,
        credentials: RoleCredentials,
        runtime: dict[str, str],
        sink: CloudWatchLogSink,
        function: FunctionLaunch,
        faults: FaultInjector | None = None,
    ):
        self.spec, self.credentials, self.sink = spec, credentials, sink
        self.faults = faults or FaultInjector()
        read_fd, write_fd = os.pipe()
        env = function_environment(spec, credentials, runtime, sink.stream)
        self.process = function.popen(
            [function.bootstrap, spec.handler, str(write_fd)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=(write_fd,),
            text=True,
        )
        os.close(write_fd)
        self.results = os.fdopen(read_fd, "r")
        self.initialised = False
        self.output_shipped = threading.Event()
        self.forwarder = threading.Thread(target=self._forward_output, daemon=True)
        self.forwarder.start()

    def _forward_output(self) -> None:
        assert self.process.stdout
        for line in self.process.stdout:
            line = line.rstrip("\n")
            if line.endswith(END_OF_OUTPUT):  # after a last line that had no newline of its own, if any
                if line := line.removesuffix(END_OF_OUTPUT):
                    self.sink.write(line)
                self.output_shipped.set()
            else:
                self.sink.write(line)

    def usable_for(self, spec: FunctionSpec) -> bool:
        remaining = (self.credentials.expiration - datetime.now(UTC)).total_seconds()
        return self.process.poll() is None and spec == self.spec and remaining > CREDENTIAL_REFRESH_MARGIN_SECONDS

    def init_failure(self) -> Invocation | None:
        """Wait for the container's init (the handler's import) on its first invocation, as Lambda runs a cold
        start's init before the event; if it failed, so does the invocation, and the container is gone."""
        if self.initialised:
            return None
        ready, _, _ = select.select([self.results], [], [], self.spec.timeout_seconds)
        line = self.results.readline() if ready else ""
        report = json.loads(line) if line else {"init": "timeout" if not ready else "error", "errorType": "Runtime.ExitError"}
        if report["init"] == "ok":
            self.initialised = True
            return None
        self.output_shipped.wait(OUTPUT_DRAIN_SECONDS)  # the runtime's [ERROR] line and traceback come first
        self.stop()
        duration = f"Init Duration: {report.get('duration_ms', 0):.2f} ms\tPhase: init"
        if report["init"] == "timeout":
            self.sink.write(f"INIT_REPORT {duration}\tStatus: timeout")
            return Invocation(
                ok=False, error=f"Init timed out after {self.spec.timeout_seconds:.2f} seconds", timed_out=True, init_failed=True
            )
        self.sink.write(f"INIT_REPORT {duration}\tStatus: error\tError Type: {report['errorType']}")
        message = f"{report['errorType']}: {report['errorMessage']}" if "errorMessage" in report else "Runtime exited during init"
        return Invocation(ok=False, error=message, init_failed=True)

    def invoke(self, event: dict) -> Invocation:
        request_id = str(uuid.uuid4())
        if (failed := self.init_failure()) is not None:
            self.sink.write(f"START RequestId: {request_id} Version: $LATEST")
            self.sink.write(f"END RequestId: {request_id}")
            self.sink.write(f"REPORT RequestId: {request_id}\tDuration: 0.00 ms")
            return failed
        deadline = time.time() + self.spec.timeout_seconds
        self.sink.write(f"START RequestId: {request_id} Version: $LATEST")
        invocation = {
            "request_id": request_id,
            "deadline_epoch": deadline,
            "function_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.spec.name}",
            "event": event,
        }
        assert self.process.stdin
        started = time.time()
        self.output_shipped.clear()
        self.process.stdin.write(json.dumps(invocation) + "\n")
        self.process.stdin.flush()
        if self.faults.fires("container_killed"):  # somewhere in the first half second: mid-file for a small file
            threading.Timer(self.faults.fraction() * 0.5, self.process.kill).start()
        ready, _, _ = select.select([self.results], [], [], self.spec.timeout_seconds)
        line = self.results.readline() if ready else ""
        if not line:
            timed_out = not ready
            self.stop()
            message = f"Task timed out after {self.spec.timeout_seconds:.2f} seconds" if timed_out else "Runtime exited"
            self.sink.write(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ} {request_id} {message}")
            return Invocation(ok=False, error=message, timed_out=timed_out)
        reply = json.loads(line)
        self.output_shipped.wait(OUTPUT_DRAIN_SECONDS)
        self.sink.write(f"END RequestId: {request_id}")
        self.sink.write(f"REPORT RequestId: {request_id}\tDuration: {(time.time() - started) * 1000:.2f} ms")
        if reply["ok"]:
            return Invocation(ok=True, result=reply["result"])
        return Invocation(ok=False, error=f"{reply['errorType']}: {reply['errorMessage']}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class LambdaRunner:
    """Polls the function's queue while a function is deployed (its spec file exists).

    Like the event-source mapping's MaximumConcurrency, up to `max_concurrency`
    pollers run at once, each with its own warm container.
    """

    aws_endpoint: str
    spec_path: Path
    runtime: dict[str, str]
    function: FunctionLaunch  # the function's interpreter, user and code (widf_local.stack.start), not the stack's
    faults: FaultInjector = field(default_factory=FaultInjector)
    stop_event: threading.Event = field(default_factory=threading.Event)
    _receiving: dict[int, float] = field(default_factory=dict)  # poller slot -> when its open ReceiveMessage began

    def assume_role(self, spec: FunctionSpec) -> RoleCredentials:
        creds = client("sts", self.aws_endpoint).assume_role(RoleArn=spec.role_arn, RoleSessionName=spec.name, DurationSeconds=3600)[
            "Credentials"
        ]
        return RoleCredentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"], creds["Expiration"])

    def deployed_spec(self) -> FunctionSpec | None:
        try:
            return FunctionSpec.from_json(self.spec_path.read_text())
        except FileNotFoundError:
            return None

    def warm_container(self, spec: FunctionSpec, container: Container | None) -> Container:
        if container is None or not container.usable_for(spec):
            if container is not None:
                container.stop()
            stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
            sink = CloudWatchLogSink(self.aws_endpoint, f"/aws/lambda/{spec.name}", stream)
            container = Container(spec, self.assume_role(spec), self.runtime, sink, self.function, self.faults)
        return container

    def oldest_open_receive(self) -> float | None:
        """When the oldest ReceiveMessage still open began (epoch seconds), None if none is open.

        A receive gives its messages the queue's VisibilityTimeout as it was when the receive began (moto does so;
        SQS says a change of it can take up to 60 seconds to propagate), so whoever changes it waits until no
        receive from before the change is open."""
        return min(list(self._receiving.values()), default=None)

    def poll_once(self, sqs: Any, spec: FunctionSpec, container: Container | None, slot: int) -> Container | None:
        """One receive with `sqs` (poller `slot`'s client) and, if anything came, one invocation; returns the (warm)
        container."""
        self._receiving[slot] = time.time()
        try:
            messages = sqs.receive_message(
                QueueUrl=spec.queue_url,
                MaxNumberOfMessages=min(10, spec.batch_size),
                WaitTimeSeconds=1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        finally:
            del self._receiving[slot]
        if not messages:
            return container
        spec = self.deployed_spec() or spec  # an invocation runs with the configuration as it is now, as in Lambda
        queue_arn = sqs.get_queue_attributes(QueueUrl=spec.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        container = self.warm_container(spec, container)
        invocation = container.invoke(sqs_event(messages, queue_arn))
        done = succeeded_messages(messages, invocation)
        if done:
            sqs.delete_message_batch(
                QueueUrl=spec.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return container

    def serve_slot(self, slot: int) -> None:
        """One concurrent poller; it ends when the function is undeployed or its concurrency shrinks."""
        container: Container | None = None
        # One client for the poller's life: a client per poll (one a second) cost the stack's process more CPU than
        # the rest of its idle work, time the gateway's statements waited for the GIL.
        sqs = client("sqs", self.aws_endpoint)
        while not self.stop_event.is_set():
            spec = self.deployed_spec()
            if spec is None or slot >= spec.max_concurrency:
                break
            try:
                container = self.poll_once(sqs, spec, container, slot)
            except Exception:
                log.exception("poll of %s failed", spec.queue_url)
                self.stop_event.wait(1)
        if container is not None:
            container.stop()

    def run(self) -> None:
        slots: dict[int, threading.Thread] = {}
        while not self.stop_event.is_set():
            spec = self.deployed_spec()
            for slot in range(spec.max_concurrency if spec else 0):
                if slot not in slots or not slots[slot].is_alive():
                    slots[slot] = threading.Thread(target=self.serve_slot, args=(slot,), daemon=True)
                    slots[slot].start()
            self.stop_event.wait(0.2)  # re-read the deployment: a deploy may change the concurrency
        for thread in slots.values():
            thread.join(timeout=10)
