"""Verify an AWS workload identity attestation the way Snowflake does.

The connector sends a *pre-signed* STS GetCallerIdentity request instead of a
token. Snowflake checks it and sends it to STS itself; whatever identity STS
answers with is the caller. We do the same against the local STS, with two
rules that make the check meaningful rather than decorative:

* the request is only ever sent to the STS endpoint we were configured with,
  never to the URL inside the attestation (which the caller controls);
* the SigV4 signature is verified here, with the secret the local STS issued,
  because moto's own signature check rejects even valid attestations.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlsplit

from widf_local.gateway.aws_principals import role_of_session

SNOWFLAKE_AUDIENCE = "snowflakecomputing.com"
GET_CALLER_IDENTITY_QUERY = "Action=GetCallerIdentity&Version=2011-06-15"
MAX_CLOCK_SKEW = timedelta(minutes=15)

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/sts/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
_ARN_IN_RESPONSE = re.compile(r"<Arn>([^<]+)</Arn>")


class AttestationRejected(Exception):
    """The attestation is not a valid, fresh, correctly signed STS request."""


class StsUnavailable(Exception):
    """STS could not be asked: the caller may try again (nothing is known about it yet)."""


@dataclass(frozen=True)
class VerifiedCaller:
    sts_arn: str  # arn:aws:sts::ACCT:assumed-role/ROLE/SESSION, as STS answered
    role_arn: str  # arn:aws:iam::ACCT:role/ROLE, what a Snowflake user trusts


@dataclass(frozen=True)
class SignedRequest:
    method: str
    url: str
    headers: dict[str, str]  # lower-cased names


def decode_attestation(token: str) -> SignedRequest:
    try:
        payload = json.loads(base64.b64decode(token, validate=True))
        headers = {str(k).lower(): str(v) for k, v in payload["headers"].items()}
        return SignedRequest(method=str(payload["method"]), url=str(payload["url"]), headers=headers)
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as e:
        raise AttestationRejected(f"the attestation is not a base64 JSON signed request ({e})") from None


def role_arn_of(sts_arn: str) -> str:
    """Map an assumed-role session ARN to the IAM role ARN a Snowflake user trusts."""
    try:
        return role_of_session(sts_arn).arn
    except ValueError:
        raise AttestationRejected(f"the caller '{sts_arn}' is not an assumed IAM role") from None


def check_request_shape(request: SignedRequest, sts_authority: str) -> None:
    parts = urlsplit(request.url)
    if request.method.upper() != "POST" or parts.path not in ("", "/") or parts.query != GET_CALLER_IDENTITY_QUERY:
        raise AttestationRejected("the attestation is not an STS GetCallerIdentity request")
    if parts.netloc != sts_authority or request.headers.get("host") != sts_authority:
        raise AttestationRejected(f"the attestation targets '{parts.netloc}', not the trusted STS endpoint")
    if request.headers.get("x-snowflake-audience") != SNOWFLAKE_AUDIENCE:
        raise AttestationRejected("the attestation has no X-Snowflake-Audience header for Snowflake")


def check_freshness(request: SignedRequest, now: datetime) -> datetime:
    try:
        signed_at = datetime.strptime(request.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (KeyError, ValueError):
        raise AttestationRejected("the attestation has no valid X-Amz-Date") from None
    if abs(now - signed_at) > MAX_CLOCK_SKEW:
        raise AttestationRejected(f"the attestation was signed at {signed_at:%Y-%m-%dT%H:%M:%SZ}, outside the allowed clock skew")
    return signed_at


def _canonical_query(query: str) -> str:
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)


def expected_signature(request: SignedRequest, secret_key: str, *, date: str, region: str, signed_headers: list[str]) -> str:
    """AWS Signature Version 4 over exactly the headers the caller said it signed."""
    parts = urlsplit(request.url)
    canonical_headers = "".join(f"{name}:{' '.join(request.headers[name].split())}\n" for name in signed_headers)
    canonical_request = "\n".join(
        [
            request.method.upper(),
            parts.path or "/",
            _canonical_query(parts.query),
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(b"").hexdigest(),
        ]
    )
    scope = f"{date}/{region}/sts/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", request.headers["x-amz-date"], scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (date, region, "sts", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def check_signature(request: SignedRequest, lookup_secret: Callable[[str], str | None]) -> None:
    if not (auth := _AUTHORIZATION.match(request.headers.get("authorization", ""))):
        raise AttestationRejected("the attestation has no AWS SigV4 Authorization header")
    signed_headers = auth["signed"].split(";")
    for required in ("host", "x-amz-date", "x-snowflake-audience"):
        if required not in signed_headers:
            raise AttestationRejected(f"the attestation does not sign the '{required}' header")
    if missing := [h for h in signed_headers if h not in request.headers]:
        raise AttestationRejected(f"the attestation signs headers it does not carry: {', '.join(missing)}")
    if not (secret := lookup_secret(auth["akid"])):
        raise AttestationRejected("the attestation is signed with credentials the trusted STS never issued")
    expected = expected_signature(request, secret, date=auth["date"], region=auth["region"], signed_headers=signed_headers)
    if not hmac.compare_digest(expected, auth["signature"]):
        raise AttestationRejected("the attestation's signature does not match")


def ask_sts_who_signed(request: SignedRequest, sts_endpoint: str, timeout: float = 5.0) -> str:
    """Send the signed request to the configured STS (never to the attestation's URL)."""
    url = f"{sts_endpoint.rstrip('/')}/?{GET_CALLER_IDENTITY_QUERY}"
    replay = urllib.request.Request(url, data=b"", method="POST", headers=request.headers)
    try:
        with urllib.request.urlopen(replay, timeout=timeout) as response:
            body = response.read().decode()
    except urllib.error.HTTPError as e:
        if e.code >= 500:
            raise StsUnavailable(f"STS answered {e.code} {e.reason}") from None
        raise AttestationRejected(f"STS did not confirm the caller ({e})") from None
    except (urllib.error.URLError, OSError) as e:
        raise StsUnavailable(f"STS could not be reached ({e})") from None
    if not (m := _ARN_IN_RESPONSE.search(body)):
        raise AttestationRejected("STS answered without a caller ARN")
    return m.group(1)


def verify_aws_attestation(
    token: str,
    *,
    sts_endpoint: str,
    lookup_secret: Callable[[str], str | None],
    now: datetime | None = None,
) -> VerifiedCaller:
    request = decode_attestation(token)
    check_request_shape(request, urlsplit(sts_endpoint).netloc)
    check_freshness(request, now or datetime.now(UTC))
    check_signature(request, lookup_secret)
    sts_arn = ask_sts_who_signed(request, sts_endpoint)
    return VerifiedCaller(sts_arn=sts_arn, role_arn=role_arn_of(sts_arn))
