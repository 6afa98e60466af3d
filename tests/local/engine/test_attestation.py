"""Attestation checks, on attestations built exactly as the connector builds them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from widf_local.gateway.identity import (
    AttestationRejected,
    check_freshness,
    check_request_shape,
    check_signature,
    decode_attestation,
    role_arn_of,
    verify_aws_attestation,
)

STS = "127.0.0.1:4566"
KEY_ID, SECRET = "ASIALOCALSTSISSUED01", "the-secret-local-sts-issued"  # pragma: allowlist secret (a made-up key for the verifier)


def attestation(*, host: str = STS, headers: dict | None = None, secret: str = SECRET, sign_audience: bool = True) -> str:
    request = AWSRequest(
        method="POST",
        url=f"http://{host}/?Action=GetCallerIdentity&Version=2011-06-15",
        headers={"Host": host, **({"X-Snowflake-Audience": "snowflakecomputing.com"} if sign_audience else {})},
    )
    SigV4Auth(Credentials(KEY_ID, secret, "session-token"), "sts", "us-east-1").add_auth(request)
    signed = dict(request.headers.items())
    if not sign_audience:
        signed["X-Snowflake-Audience"] = "snowflakecomputing.com"  # present, but outside the signature
    signed.update(headers or {})
    return base64.b64encode(json.dumps({"url": request.url, "method": "POST", "headers": signed}).encode()).decode()


def issued(key_id: str) -> str | None:
    return SECRET if key_id == KEY_ID else None


def test_a_genuine_attestation_passes_every_check():
    request = decode_attestation(attestation())
    check_request_shape(request, STS)
    check_freshness(request, datetime.now(UTC))
    check_signature(request, issued)


def test_forged_signature_is_refused():
    request = decode_attestation(attestation(secret="guessed-secret"))
    with pytest.raises(AttestationRejected, match="signature does not match"):
        check_signature(request, issued)


def test_tampered_header_breaks_the_signature():
    request = decode_attestation(attestation(headers={"X-Amz-Security-Token": "someone-elses-token"}))
    with pytest.raises(AttestationRejected, match="signature does not match"):
        check_signature(request, issued)


def test_unsigned_audience_is_refused():
    request = decode_attestation(attestation(sign_audience=False))
    with pytest.raises(AttestationRejected, match="does not sign the 'x-snowflake-audience' header"):
        check_signature(request, issued)


def test_stale_attestation_is_refused():
    request = decode_attestation(attestation())
    with pytest.raises(AttestationRejected, match="outside the allowed clock skew"):
        check_freshness(request, datetime.now(UTC) + timedelta(minutes=16))


def test_attestation_for_another_sts_is_refused_before_any_request():
    # The target is unroutable on purpose: if the gateway dialled it, the test would hang, not pass.
    with pytest.raises(AttestationRejected, match="not the trusted STS endpoint"):
        verify_aws_attestation(attestation(host="203.0.113.9:443"), sts_endpoint=f"http://{STS}", lookup_secret=issued)


def test_garbage_is_not_an_attestation():
    with pytest.raises(AttestationRejected, match="not a base64 JSON signed request"):
        decode_attestation("bm90IGpzb24=")


@pytest.mark.parametrize(
    ("sts_arn", "role_arn"),
    [
        ("arn:aws:sts::123456789012:assumed-role/loader/widf-loader", "arn:aws:iam::123456789012:role/loader"),
        ("arn:aws-cn:sts::210987654321:assumed-role/a.b-c/s", "arn:aws-cn:iam::210987654321:role/a.b-c"),
    ],
)
def test_assumed_role_maps_to_its_iam_role(sts_arn, role_arn):
    assert role_arn_of(sts_arn) == role_arn


def test_an_iam_user_is_not_a_workload():
    with pytest.raises(AttestationRejected, match="not an assumed IAM role"):
        role_arn_of("arn:aws:iam::123456789012:user/alice")
