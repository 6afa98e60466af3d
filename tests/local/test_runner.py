"""The runner gives the function only its own environment and the role's credentials, and reports a failed
init as Lambda does."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from widf_local.aws import ADMIN_CREDENTIALS, FunctionSpec
from widf_local.runner import Container, Invocation, RoleCredentials, function_environment, succeeded_messages
from widf_local.stack import BOOTSTRAP_SOURCE, FunctionLaunch

SPEC = FunctionSpec(
    name="fn",
    handler="m.h",
    role_arn="arn:aws:iam::123456789012:role/r",
    queue_url="q",
    timeout_seconds=30,
    memory_mb=512,
    batch_size=10,
    environment={"SNOWFLAKE_ACCOUNT": "local"},
)
ROLE = RoleCredentials("ASIAROLE", "role-secret", "role-token", datetime.now(UTC) + timedelta(hours=1))


def test_function_sees_role_credentials_not_the_runners(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ADMIN_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "the-runner-process-might-have-anything")
    env = function_environment(SPEC, ROLE, {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, "stream")
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]) == ("ASIAROLE", "role-secret", "role-token")
    assert "SNOWFLAKE_PASSWORD" not in env
    assert env["SNOWFLAKE_ACCOUNT"] == "local"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "fn"


def test_only_messages_that_succeeded_are_deleted():
    messages = [{"MessageId": "a"}, {"MessageId": "b"}, {"MessageId": "c"}]
    partial = Invocation(ok=True, result={"batchItemFailures": [{"itemIdentifier": "b"}]})
    assert [m["MessageId"] for m in succeeded_messages(messages, partial)] == ["a", "c"]
    assert succeeded_messages(messages, Invocation(ok=False, error="boom")) == []
    assert succeeded_messages(messages, Invocation(ok=False, error="timeout", timed_out=True)) == []


class Lines:
    """Where a container's log lines go: a list, in place of its CloudWatch stream."""

    stream = "test-stream"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, message: str) -> None:
        if message.strip():
            self.lines.append(message)


def launch(root) -> FunctionLaunch:
    """The function's containers run this interpreter on the bootstrap, with `root` as task root and path."""
    return FunctionLaunch(python=sys.executable, bootstrap=str(BOOTSTRAP_SOURCE), task_root=str(root), path=str(root), home=str(root))


@pytest.mark.parametrize(
    ("code", "handler", "error"),
    [
        pytest.param("raise ValueError('refused: X is set')\n", "m.h", "ValueError: refused: X is set", id="the-module-raises"),
        pytest.param(
            "", "absent.h", "Runtime.ImportModuleError: Unable to import module 'absent': No module named 'absent'", id="no-module"
        ),
        pytest.param("", "m.nothing", "Runtime.HandlerNotFound: Handler 'nothing' missing on module 'm'", id="no-handler"),
    ],
)
def test_a_failed_init_fails_the_invocation_as_lambda_reports_it(tmp_path, code, handler, error):
    (tmp_path / "m.py").write_text(code)
    sink = Lines()
    container = Container(replace(SPEC, handler=handler), ROLE, {"PYTHONPATH": str(tmp_path)}, sink, launch(tmp_path))
    invocation = container.invoke({"Records": []})
    assert (invocation.ok, invocation.init_failed, invocation.error) == (False, True, error)
    assert sink.lines[0] == f"[ERROR] {error}"  # the runtime's line, then its traceback
    assert sink.lines[1] == "Traceback (most recent call last):"
    [report] = [line for line in sink.lines if line.startswith("INIT_REPORT")]
    assert report.endswith(f"\tPhase: init\tStatus: error\tError Type: {error.split(':')[0]}")
    assert sink.lines.index(report) < [i for i, line in enumerate(sink.lines) if line.startswith("START RequestId")][0]
    assert container.process.poll() is not None  # the runtime exited; the next invocation starts a new one
    assert succeeded_messages([{"MessageId": "a"}], invocation) == []


def test_after_a_good_init_the_event_is_handled(tmp_path):
    (tmp_path / "m.py").write_text("def h(event, context):\n    return {'batchItemFailures': [], 'seen': len(event['Records'])}\n")
    sink = Lines()
    container = Container(SPEC, ROLE, {"PYTHONPATH": str(tmp_path)}, sink, launch(tmp_path))
    try:
        invocation = container.invoke({"Records": [{}]})
    finally:
        container.stop()
    assert (invocation.ok, invocation.init_failed, invocation.result) == (True, False, {"batchItemFailures": [], "seen": 1})
    assert not [line for line in sink.lines if line.startswith(("INIT_REPORT", "[ERROR]"))]
