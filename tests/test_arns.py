"""The identity a function presents, and the IAM role Snowflake must trust for it."""

from __future__ import annotations

import pytest

from widf_ops.arns import RoleRef, iam_role_arn_of_session, parse_role_arn, role_of_session


@pytest.mark.parametrize(
    ("session_arn", "role_arn"),
    [
        ("arn:aws:sts::123456789012:assumed-role/widf-loader-function-role/widf-loader", "arn:aws:iam::123456789012:role/widf-loader-function-role"),
        ("arn:aws:sts::123456789012:assumed-role/loader/i-0abc", "arn:aws:iam::123456789012:role/loader"),
        ("arn:aws-cn:sts::210987654321:assumed-role/a.b-c/s1", "arn:aws-cn:iam::210987654321:role/a.b-c"),
        ("arn:aws-us-gov:sts::111122223333:assumed-role/Role+=,.@_-x/botocore-session-1", "arn:aws-us-gov:iam::111122223333:role/Role+=,.@_-x"),
    ],
)
def test_a_session_maps_to_its_iam_role(session_arn, role_arn):
    assert iam_role_arn_of_session(session_arn) == role_arn


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
def test_anything_but_a_session_is_refused(not_a_session):
    with pytest.raises(ValueError, match="not an assumed-role session ARN"):
        role_of_session(not_a_session)


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
