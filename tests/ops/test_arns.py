"""The identity a function presents, and the IAM role Snowflake must trust for it.

The administrator's tools (`widf_ops.arns`) and the local gateway
(`widf_local.gateway.aws_principals`) each read IAM's rules on their own: both
must give the answers AWS documents."""

from __future__ import annotations

import pytest

from widf_local.gateway import aws_principals as gateway
from widf_ops.arns import RoleRef, iam_role_arn_of_session, parse_role_arn, role_of_session

SESSION_TO_ROLE_ARN = {"widf_ops": iam_role_arn_of_session, "gateway": lambda arn: gateway.role_of_session(arn).arn}
ROLE_OF_SESSION = {"widf_ops": role_of_session, "gateway": gateway.role_of_session}


@pytest.mark.parametrize(
    ("session_arn", "role_arn"),
    [
        (
            "arn:aws:sts::123456789012:assumed-role/widf-loader-function-role/widf-loader",
            "arn:aws:iam::123456789012:role/widf-loader-function-role",
        ),
        ("arn:aws:sts::123456789012:assumed-role/loader/i-0abc", "arn:aws:iam::123456789012:role/loader"),
        ("arn:aws-cn:sts::210987654321:assumed-role/a.b-c/s1", "arn:aws-cn:iam::210987654321:role/a.b-c"),
        (
            "arn:aws-us-gov:sts::111122223333:assumed-role/Role+=,.@_-x/botocore-session-1",
            "arn:aws-us-gov:iam::111122223333:role/Role+=,.@_-x",
        ),
    ],
)
@pytest.mark.parametrize("reader", SESSION_TO_ROLE_ARN)
def test_a_session_maps_to_its_iam_role(session_arn, role_arn, reader):
    assert SESSION_TO_ROLE_ARN[reader](session_arn) == role_arn


@pytest.mark.parametrize(
    "not_a_session",
    [
        "arn:aws:iam::123456789012:role/loader",  # already the role
        "arn:aws:iam::123456789012:user/alice",  # an IAM user is not a workload
        "arn:aws:sts::123456789012:federated-user/bob",
        "arn:aws:sts::12345678901:assumed-role/loader/s",  # 11-digit account
        "arn:aws:sts::123456789012:assumed-role/loader",  # no session
        "arn:aws:sts::123456789012:assumed-role/path/loader/s",  # sessions carry no path
    ],
)
@pytest.mark.parametrize("reader", ROLE_OF_SESSION)
def test_anything_but_a_session_is_refused(not_a_session, reader):
    with pytest.raises(ValueError, match="not an assumed-role session ARN"):
        ROLE_OF_SESSION[reader](not_a_session)


@pytest.mark.parametrize(
    ("role_arn", "expected"),
    [
        ("arn:aws:iam::123456789012:role/loader", RoleRef("aws", "123456789012", "loader", "/")),
        ("arn:aws:iam::123456789012:role/service/loader", RoleRef("aws", "123456789012", "loader", "/service/")),
        ("arn:aws:iam::123456789012:role/a/b/loader", RoleRef("aws", "123456789012", "loader", "/a/b/")),
        ("arn:aws:sts::123456789012:assumed-role/loader/s", None),
        ("arn:aws:iam::123456789012:user/loader", None),
    ],
)
def test_role_arns_keep_their_path(role_arn, expected):
    parsed = parse_role_arn(role_arn)
    assert parsed == expected
    if parsed:
        assert parsed.arn == role_arn


def test_a_role_with_a_path_is_the_role_its_session_names():
    # STS leaves the path out of the session ARN; the role is the same role.
    role = parse_role_arn("arn:aws:iam::123456789012:role/service/loader")
    session = role.session_arn("widf-loader")
    assert session == "arn:aws:sts::123456789012:assumed-role/loader/widf-loader"
    assert role_of_session(session).same_role(role)
    assert not role_of_session("arn:aws:sts::210987654321:assumed-role/loader/widf-loader").same_role(role)


@pytest.mark.parametrize(
    ("role_arn", "expected"),
    [
        ("arn:aws:iam::123456789012:role/loader", gateway.IamRole("aws", "123456789012", "loader")),
        ("arn:aws:iam::123456789012:role/service/loader", gateway.IamRole("aws", "123456789012", "loader")),
        ("arn:aws-cn:iam::210987654321:role/a/b/loader", gateway.IamRole("aws-cn", "210987654321", "loader")),
        ("arn:aws:sts::123456789012:assumed-role/loader/s", None),
        ("arn:aws:iam::123456789012:user/loader", None),
        ("arn:aws:iam::12345678901:role/loader", None),
    ],
)
def test_the_gateway_knows_a_trusted_role_by_partition_account_and_name(role_arn, expected):
    # What a Snowflake user trusts, read the way the gateway matches it against a verified session.
    assert gateway.role_in_arn(role_arn) == expected
    if expected:
        assert gateway.role_in_arn(role_arn) == gateway.role_of_session(
            f"arn:{expected.partition}:sts::{expected.account}:assumed-role/loader/s1"
        )
