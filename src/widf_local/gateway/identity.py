"""Verify an AWS workload identity attestation the way Snowflake does.

The connector sends a *pre-signed* STS GetCallerIdentity request instead of a
token. Snowflake checks it and sends it to STS itself; whatever identity STS
answers with is the caller. We do the same against the local STS, with the
rules that make the check meaningful rather than decorative:

* the request sent to STS is rebuilt from our configuration (its endpoint, the
  fixed GetCallerIdentity query, an empty body) and carries only the headers
  the caller signed: nothing the caller merely added reaches STS;
* the SigV4 signature is verified here, with the secret the local STS issued,
  because moto's own signature check rejects even valid attestations; so are
  the parts of it moto never looks at: the credential scope (date, region,
  service) and the session token of temporary credentials.

Each rule is one function below; `verify_aws_attestation` runs them in order.
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

# SigV4's Authorization header: "Credential=AKID/DATE/REGION/SERVICE/aws4_request", whose parts  # pragma: allowlist secret
# `check_credential_scope` checks one by one, so that a wrong one is named in the refusal.
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[^/,\s]+)/(?P<date>[^/,\s]*)/(?P<region>[^/,\s]*)/(?P<service>[^/,\s]*)"
    r"/(?P<terminator>[^/,\s]*), SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
SECURITY_TOKEN = "x-amz-security-token"
# IAM's access key ID prefixes: ASIA for temporary (STS) keys, which are valid only with their session token.
TEMPORARY_KEY_PREFIX = "ASIA"
# Headers that frame the body or steer the connection belong to the request the gateway sends (an empty
# body, urllib's own Content-Length), never to the caller; botocore never signs the hop-by-hop ones.
GATEWAYS_OWN_HEADERS = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "expect",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
    }
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


@dataclass(frozen=True)
class SigV4Authorization:
    """The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header."""

    access_key_id: str
    date: str  # the credential scope's YYYYMMDD
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str


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


def parse_authorization(request: SignedRequest) -> SigV4Authorization:
    if not (auth := _AUTHORIZATION.match(request.headers.get("authorization", ""))):
        raise AttestationRejected("the attestation has no AWS SigV4 Authorization header")
    return SigV4Authorization(
        access_key_id=auth["akid"],
        date=auth["date"],
        region=auth["region"],
        service=auth["service"],
        terminator=auth["terminator"],
        signed_headers=tuple(auth["signed"].split(";")),
        signature=auth["signature"],
    )


def check_credential_scope(auth: SigV4Authorization, *, amz_date: str, sts_region: str) -> None:
    """The scope AKID/DATE/REGION/sts/aws4_request: signed on X-Amz-Date's day, for the STS we trust."""
    if auth.date != amz_date[:8]:
        raise AttestationRejected(f"the attestation's credential scope is dated {auth.date}, not {amz_date[:8]} (its X-Amz-Date)")
    if auth.region != sts_region:
        raise AttestationRejected(f"the attestation is scoped to region '{auth.region}', not the trusted STS's '{sts_region}'")
    if auth.service != "sts":
        raise AttestationRejected(f"the attestation is scoped to service '{auth.service}', not 'sts'")
    if auth.terminator != "aws4_request":
        raise AttestationRejected(f"the attestation's credential scope ends in '{auth.terminator}', not 'aws4_request'")


def check_signed_headers(request: SignedRequest, auth: SigV4Authorization) -> None:
    for required in ("host", "x-amz-date", "x-snowflake-audience"):
        if required not in auth.signed_headers:
            raise AttestationRejected(f"the attestation does not sign the '{required}' header")
    if missing := [h for h in auth.signed_headers if h not in request.headers]:
        raise AttestationRejected(f"the attestation signs headers it does not carry: {', '.join(missing)}")


def check_session_token(request: SignedRequest, auth: SigV4Authorization) -> None:
    """A session token is signed when it is carried, and temporary (ASIA) keys carry theirs.

    A long-term key without a token is not refused here: STS names its IAM user, which
    `role_arn_of` refuses as no workload (Snowflake trusts IAM roles)."""
    if SECURITY_TOKEN in request.headers and SECURITY_TOKEN not in auth.signed_headers:
        raise AttestationRejected("the attestation carries an X-Amz-Security-Token outside its signature")
    if auth.access_key_id.startswith(TEMPORARY_KEY_PREFIX) and SECURITY_TOKEN not in request.headers:
        raise AttestationRejected("the attestation is signed with temporary credentials but carries no session token")


def check_gateways_own_headers(request: SignedRequest, auth: SigV4Authorization) -> None:
    """The caller may not sign how the body is framed: GetCallerIdentity's body is empty (Content-Length 0)."""
    for name in sorted(GATEWAYS_OWN_HEADERS.intersection(auth.signed_headers)):
        value = " ".join(request.headers[name].split())  # as signed; and one line, for the log
        if not (name == "content-length" and value == "0"):
            raise AttestationRejected(f"the attestation signs '{name}: {value[:40]}', which is not the caller's to choose")


def expected_signature(request: SignedRequest, secret_key: str, auth: SigV4Authorization) -> str:
    """AWS Signature Version 4 over exactly the headers the caller said it signed."""
    parts = urlsplit(request.url)
    canonical_headers = "".join(f"{name}:{' '.join(request.headers[name].split())}\n" for name in auth.signed_headers)
    canonical_request = "\n".join(
        [
            request.method.upper(),
            parts.path or "/",
            _canonical_query(parts.query),
            canonical_headers,
            ";".join(auth.signed_headers),
            hashlib.sha256(b"").hexdigest(),
        ]
    )
    scope = f"{auth.date}/{auth.region}/{auth.service}/{auth.terminator}"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", request.headers["x-amz-date"], scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (auth.date, auth.region, auth.service, auth.terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def check_signature(request: SignedRequest, auth: SigV4Authorization, lookup_secret: Callable[[str], str | None]) -> None:
    if not (secret := lookup_secret(auth.access_key_id)):
        raise AttestationRejected("the attestation is signed with credentials the trusted STS never issued")
    if not hmac.compare_digest(expected_signature(request, secret, auth), auth.signature):
        raise AttestationRejected("the attestation's signature does not match")


def sts_request(request: SignedRequest, auth: SigV4Authorization, sts_endpoint: str) -> SignedRequest:
    """The request the gateway sends to STS, rebuilt: POST to the configured endpoint with the fixed query and
    an empty body, carrying the signed headers and the signature only (the Host ours; no Content-Length:
    urllib sets the real one). Headers the caller added outside its signature go nowhere."""
    headers = {name: request.headers[name] for name in auth.signed_headers if name not in GATEWAYS_OWN_HEADERS}
    headers["host"] = urlsplit(sts_endpoint).netloc
    headers["authorization"] = request.headers["authorization"]
    if broken := [name for name, value in headers.items() if "\r" in value or "\n" in value]:
        raise AttestationRejected(f"the attestation's {', '.join(broken)} header spans lines")
    return SignedRequest(method="POST", url=f"{sts_endpoint.rstrip('/')}/?{GET_CALLER_IDENTITY_QUERY}", headers=headers)


def ask_sts_who_signed(replay: SignedRequest, timeout: float = 5.0) -> str:
    """Send the rebuilt request (`sts_request`) to STS: whoever signed it is who STS names."""
    request = urllib.request.Request(replay.url, data=b"", method=replay.method, headers=replay.headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
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
    sts_region: str,
    lookup_secret: Callable[[str], str | None],
    now: datetime | None = None,
) -> VerifiedCaller:
    request = decode_attestation(token)
    check_request_shape(request, urlsplit(sts_endpoint).netloc)
    check_freshness(request, now or datetime.now(UTC))
    auth = parse_authorization(request)
    check_credential_scope(auth, amz_date=request.headers["x-amz-date"], sts_region=sts_region)
    check_signed_headers(request, auth)
    check_session_token(request, auth)
    check_gateways_own_headers(request, auth)
    check_signature(request, auth, lookup_secret)
    sts_arn = ask_sts_who_signed(sts_request(request, auth, sts_endpoint))
    return VerifiedCaller(sts_arn=sts_arn, role_arn=role_arn_of(sts_arn))
