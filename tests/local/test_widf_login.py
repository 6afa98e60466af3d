"""The gateway checks a workload identity the way Snowflake does."""

from __future__ import annotations

import json

import pytest
import snowflake.connector
from snowflake.connector.errors import DatabaseError

from helpers import become_role, connect_with_workload_identity
from widf_cli.local_stack import admin_connection
from widf_local import aws

ROLE_NAME = "login-test-role"


@pytest.fixture(scope="module")
def role_arn(stack) -> str:
    iam = aws.client("iam", stack.info.aws_endpoint)
    return iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(aws.LAMBDA_TRUST_POLICY))["Role"]["Arn"]


@pytest.fixture
def as_role(stack, role_arn, monkeypatch):
    """This process's AWS identity becomes an assumed session of the test role."""
    return become_role(monkeypatch, stack, role_arn)


def admin_execute(info, *statements: str) -> None:
    with admin_connection(info) as connection:
        for statement in statements:
            connection.cursor().execute(statement)


def test_unknown_role_is_refused_with_snowflakes_message(stack, role_arn, as_role):
    admin_execute(stack.info, "DROP USER IF EXISTS LOGIN_TEST_BOT")
    with pytest.raises(DatabaseError) as refused:
        connect_with_workload_identity(stack.info)
    assert (
        "Unable to find an associated Snowflake user for the verified AWS Caller Identity with ARN "
        f"'arn:aws:sts::{aws.ACCOUNT_ID}:assumed-role/{ROLE_NAME}/pytest'"
    ) in str(refused.value)


def test_service_user_trusting_the_role_logs_in_as_itself(stack, role_arn, as_role):
    admin_execute(
        stack.info,
        "CREATE ROLE IF NOT EXISTS LOGIN_TEST_ROLE",
        f"CREATE OR REPLACE USER LOGIN_TEST_BOT TYPE = SERVICE WORKLOAD_IDENTITY = (TYPE = AWS ARN = '{role_arn}') DEFAULT_ROLE = LOGIN_TEST_ROLE",
        "GRANT ROLE LOGIN_TEST_ROLE TO USER LOGIN_TEST_BOT",
    )
    with connect_with_workload_identity(stack.info) as connection:
        user, role = connection.cursor().execute("SELECT CURRENT_USER(), CURRENT_ROLE()").fetchone()
    assert (user, role) == ("LOGIN_TEST_BOT", "LOGIN_TEST_ROLE")


def test_user_without_type_service_is_not_trusted(stack, role_arn, as_role):
    admin_execute(stack.info, f"CREATE OR REPLACE USER LOGIN_TEST_BOT WORKLOAD_IDENTITY = (TYPE = AWS ARN = '{role_arn}')")
    with pytest.raises(DatabaseError, match="Unable to find an associated Snowflake user"):
        connect_with_workload_identity(stack.info)


def test_the_connectors_attestation_for_another_region_is_refused_in_snowflakes_words(stack, role_arn, as_role, monkeypatch):
    # The connector signs for the region it runs in; the local STS serves only aws.REGION. The role is
    # trusted, so only the region can be the reason.
    admin_execute(stack.info, f"CREATE OR REPLACE USER LOGIN_TEST_BOT TYPE = SERVICE WORKLOAD_IDENTITY = (TYPE = AWS ARN = '{role_arn}')")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    with pytest.raises(DatabaseError) as refused:
        connect_with_workload_identity(stack.info)
    assert refused.value.errno == 390144
    assert (
        f"Invalid AWS workload identity attestation: the attestation is scoped to region 'eu-west-1', not the trusted STS's '{aws.REGION}'"
    ) in str(refused.value)


def test_credentials_local_sts_never_issued_are_refused(stack, monkeypatch):
    # moto answers GetCallerIdentity for any key; the gateway must not take its word for it.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFORGEDFORGEDXXXX")  # pragma: allowlist secret (forged on purpose)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret-local-sts-issued")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_REGION", aws.REGION)
    monkeypatch.setenv("SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES", "localhost")
    with pytest.raises(DatabaseError, match="signed with credentials the trusted STS never issued"):
        connect_with_workload_identity(stack.info)


def test_admin_password_is_checked(stack):
    info = stack.info
    with pytest.raises(DatabaseError, match="Incorrect username or password"):
        snowflake.connector.connect(
            user=info.admin_user,
            password="wrong",  # pragma: allowlist secret
            account=info.snowflake_account,
            host=info.snowflake_host,
            port=info.snowflake_port,
            protocol="http",
            login_timeout=20,
        )


def test_a_trusted_role_arn_with_a_path_matches_the_session_that_names_the_role(stack, role_arn, as_role):
    # The session ARN carries no path: Snowflake matches partition, account and role name.
    with_path = role_arn.replace(":role/", ":role/service/")
    admin_execute(
        stack.info,
        f"CREATE OR REPLACE USER LOGIN_TEST_BOT TYPE = SERVICE WORKLOAD_IDENTITY = (TYPE = AWS ARN = '{with_path}')",
    )
    with connect_with_workload_identity(stack.info) as connection:
        assert connection.cursor().execute("SELECT CURRENT_USER()").fetchone() == ("LOGIN_TEST_BOT",)


def test_a_user_trusting_the_session_arn_is_stored_but_never_logs_in(stack, role_arn, as_role):
    session_arn = f"arn:aws:sts::{aws.ACCOUNT_ID}:assumed-role/{ROLE_NAME}/pytest"
    admin_execute(
        stack.info, f"CREATE OR REPLACE USER LOGIN_TEST_BOT TYPE = SERVICE WORKLOAD_IDENTITY = (TYPE = AWS ARN = '{session_arn}')"
    )
    with admin_connection(stack.info) as connection:
        (method,) = connection.cursor().execute("SHOW USER WORKLOAD IDENTITY AUTHENTICATION METHODS FOR USER LOGIN_TEST_BOT").fetchall()
    assert json.loads(method[5])["type"] == "ASSUMED_ROLE"
    with pytest.raises(DatabaseError, match="Unable to find an associated Snowflake user"):
        connect_with_workload_identity(stack.info)
