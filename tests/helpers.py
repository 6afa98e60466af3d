"""What the tests share that is not a fixture: paths, and the helpers that need the tools or the command
(widf_ops, widf_cli). Imported as `helpers` (pyproject's pytest `pythonpath` puts tests/ on sys.path); the
stack itself comes from the local stack's pytest plugin, widf_local.pytest_plugin."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from widf_loader.events import FileRef
    from widf_local.pytest_plugin import Stack
    from widf_local.stack import StackInfo

TESTS = Path(__file__).resolve().parent
REPOSITORY = TESTS.parent
EVENTS = TESTS / "events"
SCRIPTS = TESTS / "scripts"
# Keys the bucket notification ignores (not a landing suffix), for tests that deliver by hand.
UNNOTIFIED = ".jsonl"


def aws_event(name: str) -> dict:
    """One of AWS's documented events, tests/events/NAME.json (its README names the page of each)."""
    return json.loads((EVENTS / f"{name}.json").read_text())


def admin_connections_toml(home: Path, info: StackInfo, name: str = "admin") -> Path:
    """A connections.toml in `home` (SNOWFLAKE_HOME) naming the local administrator, as a user writes one:
    readable by its owner only, which connector 5.x checks. (5.x reads no SNOWFLAKE_CONNECTIONS text.)"""
    path = home / "connections.toml"
    path.write_text(
        f'[{name}]\naccount = "{info.snowflake_account}"\nuser = "{info.admin_user}"\npassword = "{info.admin_password}"\n'
        f'host = "{info.snowflake_host}"\nport = {info.snowflake_port}\nprotocol = "http"\nrole = "ACCOUNTADMIN"\n'
    )
    path.chmod(0o600)
    return path


def function_env(stack: Stack, loader) -> dict[str, str]:
    """The function's environment and its role's credentials, as the runner gives them (and the bench uses)."""
    from widf_cli.local_stack import function_env as deployed_function_env

    return deployed_function_env(stack.info, loader)


@cache
def shipped_pipeline():
    """The shipped configuration's pipeline, built once, for the tests that load a file in this process."""
    from widf_loader.pipeline import Pipeline
    from widf_loader.pipeline_config import load_pipeline_config

    return Pipeline(load_pipeline_config())


def sqs_batch(*messages: tuple[str, str]) -> dict:
    """The Lambda SQS event for (message id, body) pairs, built by the runner's own code."""
    from widf_local.runner import sqs_event

    return sqs_event([{"MessageId": m, "ReceiptHandle": f"r-{m}", "Body": b} for m, b in messages], "arn:aws:sqs:us-east-1:123456789012:q")


def put(stack: Stack, loader, key: str, body: bytes) -> FileRef:
    """An object put in the function's bucket, as the FileRef its notification names."""
    from widf_loader.events import FileRef
    from widf_local import aws

    response = aws.client("s3", stack.info.aws_endpoint).put_object(Bucket=loader.resources.bucket, Key=key, Body=body)
    return FileRef(
        bucket=loader.resources.bucket, key=key, version_id=response["VersionId"], etag=response["ETag"].strip('"'), size=len(body)
    )


def ndjson(events: list[dict]) -> bytes:
    return b"\n".join(orjson.dumps(e) for e in events)


def notification(ref: FileRef) -> str:
    """The S3 notification S3 would send for this object version (what a redelivery repeats), written by
    the tools' own builder; tests/loader/test_events.py reads AWS's documented ones (tests/events/)."""
    from widf_ops.queues import s3_notification

    sent = {"event_name": "ObjectCreated:Put", "event_time": "2026-11-27T10:00:00.000Z", "sequencer": "00"}
    return s3_notification(replace(ref, **{name: getattr(ref, name) or value for name, value in sent.items()}))


def query(stack: Stack, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of a statement run as the local administrator."""
    from widf_cli.local_stack import admin_connection

    with admin_connection(stack.info) as connection:
        return connection.cursor().execute(sql, params).fetchall()


def become_role(monkeypatch, stack: Stack, role_arn: str, session_name: str = "pytest") -> dict:
    """This process's AWS identity becomes a session of `role_arn` from the local STS (as the runner makes a
    function's), and the connector may send its attestation to the local STS host. Returns the credentials."""
    from widf_local import aws

    credentials = aws.client("sts", stack.info.aws_endpoint).assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    for variable, value in {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
        "AWS_REGION": aws.REGION,
        "SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES": "localhost",
    }.items():
        monkeypatch.setenv(variable, value)
    return credentials


def connect_with_workload_identity(info: StackInfo, login_timeout: int = 20):
    """The connector's own WIDF login to the local gateway, with this process's AWS identity."""
    import snowflake.connector

    return snowflake.connector.connect(
        account=info.snowflake_account,
        host=info.snowflake_host,
        port=info.snowflake_port,
        protocol="http",
        authenticator="WORKLOAD_IDENTITY",
        workload_identity_provider="AWS",
        workload_identity_host=info.aws_endpoint,
        login_timeout=login_timeout,
    )


# The names the trial scripts (tests/scripts/trial_*.sql) are run with, as `snow sql -D name=value` sets them.
TRIAL = {
    "sa_role": "INGEST_ROLE",
    "database": "INGEST_DB",
    "loader_role": "INGEST_LOADER",
    "service_user": "INGEST_BOT",
    "role_arn": "arn:aws:iam::123456789012:role/ingest-job",
}


def trial_flags(schema: str) -> list[str]:
    variables = {**TRIAL, "schema": schema}
    return ["--enable-templating=ALL", *[arg for name, value in variables.items() for arg in ("-D", f"{name}={value}")]]
