"""`widf-loader doctor` names each broken link of the chain, and the one line that fixes it.

One local stack for the module: Snowflake objects set up and the function
deployed once; each test breaks one link the way people do, runs the command
as a user would, and puts the link back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from helpers import admin_connections_toml
from widf_cli import app
from widf_cli.local_stack import admin_connection, deployed
from widf_local import aws
from widf_ops import admin
from widf_ops.admin import SnowflakeNames
from widf_ops.arns import parse_role_arn
from widf_ops.doctor import check_presented_identity, queue_policy_lets_bucket_send

ROLE_ARN = f"arn:aws:iam::{aws.ACCOUNT_ID}:role/widf-loader-function-role"
SESSION_ARN = f"arn:aws:sts::{aws.ACCOUNT_ID}:assumed-role/widf-loader-function-role/widf-loader"
NAMES = SnowflakeNames()
LAMBDA_WID = f"`widf-loader snow lambda-wid --role-arn {ROLE_ARN}`"


@pytest.fixture(scope="module")
def deployment(stack):
    stack.cli("snow", "setup")
    stack.cli("aws", "deploy")
    return deployed(stack.paths).resources


@pytest.fixture(scope="module")
def sql(stack, deployment) -> Iterator:
    """Run statements as the administrator."""
    with admin_connection(stack.info) as connection:

        def run(*statements: str) -> None:
            for statement in statements:
                connection.cursor().execute(statement)

        run.connection = connection
        yield run


@pytest.fixture
def trusted(sql) -> Iterator[None]:
    """The service user as sql/lambda_wid.sql makes it, before the test and again after it."""

    def restore() -> None:
        for _ in admin.run_script(sql.connection, "lambda_wid", NAMES.variables(ROLE_ARN)):
            pass

    restore()
    yield
    restore()


def doctor(stack) -> tuple[int, dict[str, dict]]:
    """`widf-loader doctor --json`, run in this process (the command's own code; no interpreter start-up per call)."""
    result = CliRunner().invoke(
        app, ["--state-dir", str(stack.state_dir), "doctor", "--json"], env={"WIDF_TARGET": "local"}, catch_exceptions=False
    )
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)  # stdout holds the JSON document and nothing else
    assert report["ok"] is (result.exit_code == 0)
    return result.exit_code, {c["name"]: c for c in report["checks"]}


BUCKET_ARN = "arn:aws:s3:::widf-loader-landing-123456789012"
S3_SENDS = {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": "*"}


@pytest.mark.parametrize(
    ("statement", "lets"),
    [
        (S3_SENDS, True),
        (S3_SENDS | {"Condition": {"ArnEquals": {"aws:SourceArn": BUCKET_ARN}}}, True),
        (S3_SENDS | {"Condition": {"ArnLike": {"aws:SourceArn": ["arn:aws:s3:::widf-loader-landing-*"]}}}, True),
        (S3_SENDS | {"Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::another-bucket"}}}, False),
        (S3_SENDS | {"Effect": "Deny"}, False),
        (S3_SENDS | {"Action": ["sqs:ReceiveMessage"]}, False),
        (S3_SENDS | {"Principal": {"Service": "sns.amazonaws.com"}}, False),
    ],
    ids=["any-source", "this-bucket", "wildcard", "another-bucket", "deny", "other-action", "other-service"],
)
def test_the_queue_policy_is_read_as_s3_would(statement, lets):
    assert queue_policy_lets_bucket_send(json.dumps({"Statement": [statement]}), BUCKET_ARN) is lets


def only_failure(checks: dict[str, dict]) -> dict:
    (failed,) = [c for c in checks.values() if c["status"] == "fail"]
    return failed


def test_a_missing_service_user_is_named_with_the_command_that_creates_it(stack, sql, deployment):
    sql(f"DROP USER IF EXISTS {NAMES.user}")
    code, checks = doctor(stack)
    assert code == 1
    failed = only_failure(checks)
    assert failed["name"] == "snowflake user"
    assert f"no Snowflake user trusts {ROLE_ARN}" in failed["detail"]
    assert failed["fix"] == LAMBDA_WID
    assert checks["presented identity"]["detail"].startswith(f"{SESSION_ARN} -> {ROLE_ARN}")


def test_every_link_holds_after_snow_lambda_wid(stack, deployment):
    stack.cli("snow", "lambda-wid")
    result = CliRunner().invoke(app, ["--state-dir", str(stack.state_dir), "doctor"], env={"WIDF_TARGET": "local"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Every link holds." in result.stdout
    assert "fix:" not in result.stdout
    code, checks = doctor(stack)
    assert code == 0
    assert {name: c["status"] for name, c in checks.items()} == dict.fromkeys(
        [
            "aws credentials",
            "function role",
            "presented identity",
            "snowflake admin",
            "snowflake user",
            "loader grants",
            "bucket notification",
            "dead-letter queue",
        ],
        "ok",
    )
    assert checks["snowflake user"]["detail"] == f"{NAMES.user} (TYPE = SERVICE) trusts {ROLE_ARN}"


@pytest.mark.parametrize(
    ("trusted_arn", "diagnosis"),
    [
        (SESSION_ARN, f"{NAMES.user} trusts the assumed-role session ARN {SESSION_ARN}, not the IAM role ARN {ROLE_ARN}"),
        ("arn:aws:iam::210987654321:role/widf-loader-function-role", f"{NAMES.user} trusts a role in account 210987654321"),
        (
            f"arn:aws:iam::{aws.ACCOUNT_ID}:role/widf-loader-old-role",
            f"{NAMES.user} trusts role 'widf-loader-old-role', not the function's role 'widf-loader-function-role'",
        ),
    ],
    ids=["sts-session-arn", "another-account", "renamed-role"],
)
def test_a_user_trusting_the_wrong_principal_is_told_which_mistake_it_is(stack, sql, trusted, trusted_arn, diagnosis):
    sql(f"ALTER USER {NAMES.user} SET WORKLOAD_IDENTITY = (TYPE = AWS ARN = '{trusted_arn}')")
    code, checks = doctor(stack)
    assert code == 1
    failed = only_failure(checks)
    assert failed["name"] == "snowflake user"
    assert failed["detail"].startswith(diagnosis)
    assert failed["fix"] == LAMBDA_WID


def test_a_user_without_type_service_is_told_to_become_one(stack, sql, trusted):
    sql(f"ALTER USER {NAMES.user} SET TYPE = PERSON")
    code, checks = doctor(stack)
    assert code == 1
    failed = only_failure(checks)
    assert (
        failed["detail"] == f"{NAMES.user} trusts {ROLE_ARN} but is TYPE = PERSON: only TYPE = SERVICE users log in with workload identity"
    )
    assert failed["fix"].startswith(f"ALTER USER {NAMES.user} SET TYPE = SERVICE")


def test_a_revoked_grant_is_reported_with_the_grant_that_restores_it(stack, sql, trusted):
    ledger = f"{NAMES.database}.{NAMES.schema}.LOAD_HISTORY"
    sql(f"REVOKE INSERT ON TABLE {ledger} FROM ROLE {NAMES.role}")
    code, checks = doctor(stack)
    assert code == 1
    failed = only_failure(checks)
    assert (failed["name"], failed["detail"]) == ("loader grants", f"{NAMES.role} lacks INSERT on {ledger}")
    assert failed["fix"] == f"GRANT INSERT ON TABLE {ledger} TO ROLE {NAMES.role}"
    sql(failed["fix"])  # the fix, as printed, is the whole fix
    assert doctor(stack)[0] == 0


def test_a_grant_beyond_loading_warns_with_the_revoke(stack, sql, trusted):
    schema = f"{NAMES.database}.{NAMES.schema}"
    sql(f"GRANT CREATE TABLE ON SCHEMA {schema} TO ROLE {NAMES.role}")
    try:
        code, checks = doctor(stack)
    finally:
        sql(f"REVOKE CREATE TABLE ON SCHEMA {schema} FROM ROLE {NAMES.role}")
    grants = checks["loader grants"]
    assert (code, grants["status"]) == (0, "warn")
    assert grants["detail"] == f"{NAMES.role} holds more than loading needs: CREATE TABLE on {schema}"
    assert grants["fix"] == f"REVOKE CREATE TABLE ON SCHEMA {schema} FROM ROLE {NAMES.role}"


def test_a_removed_queue_policy_or_notification_is_found_and_aws_deploy_restores_both(stack, deployment, trusted):
    endpoint = stack.info.aws_endpoint
    aws.client("sqs", endpoint).set_queue_attributes(QueueUrl=deployment.queue_url, Attributes={"Policy": ""})
    failed = only_failure(doctor(stack)[1])
    assert (failed["name"], failed["detail"]) == (
        "bucket notification",
        f"the policy of queue widf-loader-events does not let s3://{deployment.bucket} send to it",
    )
    assert failed["fix"] == "`widf-loader aws deploy` puts the queue policy back"
    aws.client("s3", endpoint).put_bucket_notification_configuration(Bucket=deployment.bucket, NotificationConfiguration={})
    code, checks = doctor(stack)
    assert code == 1
    failed = only_failure(checks)
    assert failed["name"] == "bucket notification"
    assert (
        failed["detail"]
        == f"s3://{deployment.bucket} sends no ObjectCreated events to queue widf-loader-events: uploads never reach the function"
    )
    assert failed["fix"] == "`widf-loader aws deploy` puts the notification back"
    stack.cli("aws", "deploy")
    code, checks = doctor(stack)
    assert (code, checks["bucket notification"]["status"]) == (0, "ok")


def test_messages_in_the_dead_letter_queue_warn_without_failing(stack, deployment, trusted):
    sqs = aws.client("sqs", stack.info.aws_endpoint)
    sqs.send_message(QueueUrl=deployment.dlq_url, MessageBody="{}")
    try:
        code, checks = doctor(stack)
        debug = CliRunner().invoke(app, ["--state-dir", str(stack.state_dir), "aws", "debug", "--json"], env={"WIDF_TARGET": "local"})
    finally:
        sqs.purge_queue(QueueUrl=deployment.dlq_url)
    assert json.loads(debug.stdout)["queues"][1] == {"queue": "dead-letter queue", "waiting": 1, "in flight": 0}  # `aws debug` agrees
    assert code == 0
    dlq = checks["dead-letter queue"]
    assert (dlq["status"], dlq["detail"]) == ("warn", "1 message(s) in widf-loader-dlq: files that failed every delivery")
    assert dlq["fix"].endswith("then `widf-loader replay-dlq`")


def test_the_cloud_target_runs_the_same_checks_through_the_standard_chain_and_a_named_connection(stack, deployment, trusted, tmp_path):
    """`--target cloud`: AWS through the standard chain (pointed at the local moto) and Snowflake through
    SNOWFLAKE_CONNECTION_NAME (a connections.toml in SNOWFLAKE_HOME, pointed at the gateway)."""
    info = stack.info
    admin_connections_toml(tmp_path, info)
    result = stack.cli(
        "--target",
        "cloud",
        "doctor",
        "--json",
        check=False,
        env={
            "WIDF_TARGET": "cloud",
            "AWS_ENDPOINT_URL": info.aws_endpoint,
            "AWS_DEFAULT_REGION": aws.REGION,
            "AWS_ACCESS_KEY_ID": aws.ADMIN_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": aws.ADMIN_CREDENTIALS["aws_secret_access_key"],
            "SNOWFLAKE_HOME": str(tmp_path),
            "SNOWFLAKE_CONNECTION_NAME": "admin",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert (report["ok"], report["target"]) == (True, "cloud")
    checks = {c["name"]: c for c in report["checks"]}
    assert {c["status"] for c in checks.values()} == {"ok"}
    assert checks["presented identity"]["detail"].startswith(f"{SESSION_ARN} -> {ROLE_ARN}")


def test_with_nothing_configured_the_cloud_target_names_both_missing_pieces_and_skips_the_rest(tmp_path):
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SNOWFLAKE_", "WIDF_"))}
    result = subprocess.run(
        [sys.executable, "-m", "widf_cli", "--target", "cloud", "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=bare
        | {
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "SNOWFLAKE_HOME": str(tmp_path),
        },
    )
    assert result.returncode == 1, result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert {n for n, c in checks.items() if c["status"] == "fail"} == {"aws credentials", "snowflake admin"}
    assert {n for n, c in checks.items() if c["status"] == "skip"} == set(checks) - {"aws credentials", "snowflake admin"}
    assert checks["aws credentials"]["fix"].startswith("No AWS credentials: sign in")
    assert checks["snowflake admin"]["detail"].startswith("Set SNOWFLAKE_CONNECTION_NAME")


def test_a_role_only_lambda_may_assume_gives_the_session_arn_sts_would_issue():
    # In the cloud the administrator usually may not assume the function's role: STS says AccessDenied.
    sts = boto3.client("sts", region_name="eu-west-1", aws_access_key_id="placeholder", aws_secret_access_key="placeholder")
    role = parse_role_arn("arn:aws:iam::123456789012:role/service/widf-loader-function-role")
    with Stubber(sts) as stub:
        stub.add_client_error("assume_role", service_error_code="AccessDenied", service_message="not authorized", http_status_code=403)
        check, presented = check_presented_identity(sts, role, "widf-loader", "123456789012", "widf-loader")
    assert check.status.value == "ok"
    assert check.detail.startswith(
        "arn:aws:sts::123456789012:assumed-role/widf-loader-function-role/widf-loader -> "
        "arn:aws:iam::123456789012:role/widf-loader-function-role (derived: only Lambda may assume the role)"
    )
    assert "the role's path /service/ is not in the session ARN" in check.detail
    assert presented.same_role(role)
