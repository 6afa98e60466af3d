"""The runner gives the function only its own environment and the role's credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from widf_local.aws import ADMIN_CREDENTIALS, FunctionSpec
from widf_local.runner import Invocation, RoleCredentials, function_environment, succeeded_messages

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
