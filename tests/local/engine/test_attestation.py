"""Attestation checks, on attestations built exactly as the connector builds them (botocore's SigV4Auth,
so every signature here is a real one), one test per rule of gateway/identity.py."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from widf_local.gateway.identity import (
    AttestationRejected,
    SignedRequest,
    SigV4Authorization,
    check_credential_scope,
    check_freshness,
    check_gateways_own_headers,
    check_request_shape,
    check_session_token,
    check_signature,
    check_signed_headers,
    decode_attestation,
    parse_authorization,
    role_arn_of,
    sts_request,
    verify_aws_attestation,
)

STS, REGION = "127.0.0.1:4566", "us-east-1"
KEY_ID, SECRET = "ASIALOCALSTSISSUED01", "the-secret-local-sts-issued"  # pragma: allowlist secret (a made-up key for the verifier)
LONG_TERM_KEY_ID = "AKIALOCALIAMUSER0001"  # pragma: allowlist secret (made up: an IAM user's long-term key, no token)
TOKEN = "the-session-token-local-sts-issued"
CALLER = "arn:aws:sts::123456789012:assumed-role/loader/widf-loader"


class ScopedToTheDayBefore(SigV4Auth):
    """botocore's signer with the credential scope dated the day before X-Amz-Date: a genuine signature over a
    scope AWS refuses (the scope's date must be the request's)."""

    def _scope_date(self, request) -> str:
        return (datetime.strptime(request.context["timestamp"], SIGV4_TIMESTAMP) - timedelta(days=1)).strftime("%Y%m%d")

    def credential_scope(self, request) -> str:
        return "/".join([self._scope_date(request), self._region_name, self._service_name, "aws4_request"])

    def scope(self, request) -> str:
        return f"{self.credentials.access_key}/{self.credential_scope(request)}"

    def signature(self, string_to_sign, request) -> str:
        key = self._sign(f"AWS4{self.credentials.secret_key}".encode(), self._scope_date(request))
        for part in (self._region_name, self._service_name, "aws4_request"):
            key = self._sign(key, part)
        return self._sign(key, string_to_sign, hex=True)


class SigningEveryHeader(SigV4Auth):
    """botocore's signer without its list of headers it never signs (Transfer-Encoding, Expect, ...): what a
    signer of one's own may do."""

    def headers_to_sign(self, request) -> HTTPHeaders:
        headers = HTTPHeaders()
        for name, value in request.headers.items():
            headers[name.lower()] = value
        return headers


def attestation(
    *,
    host: str = STS,
    headers: dict | None = None,
    signed_headers: dict | None = None,
    key_id: str = KEY_ID,
    secret: str = SECRET,
    token: str | None = TOKEN,
    region: str = REGION,
    service: str = "sts",
    signer: type[SigV4Auth] = SigV4Auth,
    sign_audience: bool = True,
) -> str:
    """The connector's attestation; `signed_headers` are added before signing, `headers` after it."""
    request = AWSRequest(
        method="POST",
        url=f"http://{host}/?Action=GetCallerIdentity&Version=2011-06-15",
        headers={"Host": host, **({"X-Snowflake-Audience": "snowflakecomputing.com"} if sign_audience else {}), **(signed_headers or {})},
    )
    signer(Credentials(key_id, secret, token), service, region).add_auth(request)
    signed = dict(request.headers.items())
    if not sign_audience:
        signed["X-Snowflake-Audience"] = "snowflakecomputing.com"  # present, but outside the signature
    signed.update(headers or {})
    return base64.b64encode(json.dumps({"url": request.url, "method": "POST", "headers": signed}).encode()).decode()


def issued(key_id: str) -> str | None:
    return SECRET if key_id in (KEY_ID, LONG_TERM_KEY_ID) else None


def decoded(token: str) -> tuple[SignedRequest, SigV4Authorization]:
    request = decode_attestation(token)
    return request, parse_authorization(request)


def test_a_genuine_attestation_passes_every_check():
    request, auth = decoded(attestation())
    check_request_shape(request, STS)
    check_freshness(request, datetime.now(UTC))
    check_credential_scope(auth, amz_date=request.headers["x-amz-date"], sts_region=REGION)
    check_signed_headers(request, auth)
    check_session_token(request, auth)
    check_gateways_own_headers(request, auth)
    check_signature(request, auth, issued)


def test_forged_signature_is_refused():
    request, auth = decoded(attestation(secret="guessed-secret"))
    with pytest.raises(AttestationRejected, match="signature does not match"):
        check_signature(request, auth, issued)


def test_tampered_header_breaks_the_signature():
    request, auth = decoded(attestation(headers={"X-Amz-Security-Token": "someone-elses-token"}))
    with pytest.raises(AttestationRejected, match="signature does not match"):
        check_signature(request, auth, issued)


def test_unsigned_audience_is_refused():
    request, auth = decoded(attestation(sign_audience=False))
    with pytest.raises(AttestationRejected, match="does not sign the 'x-snowflake-audience' header"):
        check_signed_headers(request, auth)


def test_stale_attestation_is_refused():
    request = decode_attestation(attestation())
    with pytest.raises(AttestationRejected, match="outside the allowed clock skew"):
        check_freshness(request, datetime.now(UTC) + timedelta(minutes=16))


def test_attestation_for_another_sts_is_refused_before_any_request():
    # The target is unroutable on purpose: if the gateway dialled it, the test would hang, not pass.
    with pytest.raises(AttestationRejected, match="not the trusted STS endpoint"):
        verify_aws_attestation(attestation(host="203.0.113.9:443"), sts_endpoint=f"http://{STS}", sts_region=REGION, lookup_secret=issued)


def test_garbage_is_not_an_attestation():
    with pytest.raises(AttestationRejected, match="not a base64 JSON signed request"):
        decode_attestation("bm90IGpzb24=")


# -- the credential scope: AKID/DATE/REGION/sts/aws4_request ------------------------------------------


def scope_refusal(token: str) -> str:
    """The credential scope check's refusal, for an attestation whose signature is otherwise genuine."""
    request, auth = decoded(token)
    with pytest.raises(AttestationRejected) as refused:
        check_credential_scope(auth, amz_date=request.headers["x-amz-date"], sts_region=REGION)
    return str(refused.value)


def test_a_scope_dated_another_day_than_x_amz_date_is_refused():
    request, auth = decoded(token := attestation(signer=ScopedToTheDayBefore))
    check_signature(request, auth, issued)  # genuinely signed: only the scope's date is wrong
    assert "credential scope is dated" in scope_refusal(token)


def test_a_scope_for_another_region_is_refused():
    request, auth = decoded(token := attestation(region="eu-west-1"))
    check_signature(request, auth, issued)
    assert "scoped to region 'eu-west-1', not the trusted STS's 'us-east-1'" in scope_refusal(token)


def test_a_scope_for_another_service_is_refused():
    request, auth = decoded(token := attestation(service="iam"))
    check_signature(request, auth, issued)
    assert "scoped to service 'iam', not 'sts'" in scope_refusal(token)


def test_a_scope_with_another_terminator_is_refused():
    request = decode_attestation(attestation())
    authorization = request.headers["authorization"].replace("/aws4_request,", "/aws5_request,")
    token = base64.b64encode(
        json.dumps({"url": request.url, "method": "POST", "headers": {**request.headers, "authorization": authorization}}).encode()
    )
    assert "ends in 'aws5_request', not 'aws4_request'" in scope_refusal(token.decode())


# -- the session token --------------------------------------------------------------------------------


def test_a_session_token_outside_the_signature_is_refused():
    # Signed without a token, the token added after: a signature that does not cover the token it carries.
    request, auth = decoded(attestation(token=None, headers={"X-Amz-Security-Token": TOKEN}))
    check_signature(request, auth, issued)
    with pytest.raises(AttestationRejected, match="X-Amz-Security-Token outside its signature"):
        check_session_token(request, auth)


def test_temporary_credentials_without_their_session_token_are_refused():
    request, auth = decoded(attestation(token=None))
    check_signature(request, auth, issued)
    with pytest.raises(AttestationRejected, match="temporary credentials but carries no session token"):
        check_session_token(request, auth)


def test_a_long_term_key_without_a_token_is_left_to_its_identity():
    # Not refused here: STS names the key's IAM user, which `role_arn_of` refuses (test_an_iam_user_is_not_a_workload;
    # through the gateway, test_forged_logins' test_an_iam_users_genuine_key_is_not_a_workload).
    request, auth = decoded(attestation(key_id=LONG_TERM_KEY_ID, token=None))
    assert "x-amz-security-token" not in request.headers
    check_session_token(request, auth)


# -- the request sent to STS is rebuilt -----------------------------------------------------------------


def test_the_request_to_sts_carries_the_signed_headers_and_the_signature_only():
    forged = {"Content-Length": "1000000", "Transfer-Encoding": "chunked", "X-Forwarded-For": "198.51.100.7", "Cookie": "a=b"}
    request, auth = decoded(attestation(headers=forged))
    replay = sts_request(request, auth, "http://127.0.0.1:9999/")
    assert (replay.method, replay.url) == ("POST", "http://127.0.0.1:9999/?Action=GetCallerIdentity&Version=2011-06-15")
    assert sorted(replay.headers) == ["authorization", "host", "x-amz-date", "x-amz-security-token", "x-snowflake-audience"]
    assert replay.headers["host"] == "127.0.0.1:9999"  # the configured endpoint's, whatever the attestation said
    assert replay.headers["authorization"] == request.headers["authorization"]


def test_a_signed_content_length_of_zero_is_accepted_but_left_to_urllib():
    request, auth = decoded(attestation(signed_headers={"Content-Length": "0"}))
    assert "content-length" in auth.signed_headers
    check_gateways_own_headers(request, auth)
    check_signature(request, auth, issued)
    assert "content-length" not in sts_request(request, auth, f"http://{STS}").headers


@pytest.mark.parametrize("header", [("Content-Length", "1000000"), ("Transfer-Encoding", "chunked"), ("Expect", "100-continue")])
def test_signing_how_the_body_is_framed_is_refused(header):
    request, auth = decoded(attestation(signed_headers=dict([header]), signer=SigningEveryHeader))
    assert header[0].lower() in auth.signed_headers
    check_signature(request, auth, issued)  # genuinely signed, by a caller who holds the key
    with pytest.raises(AttestationRejected, match=f"signs '{header[0].lower()}: {header[1]}', which is not the caller's to choose"):
        check_gateways_own_headers(request, auth)


def test_a_signed_header_spanning_lines_is_refused_before_it_reaches_urllib():
    request, auth = decoded(attestation(signed_headers={"X-Note": "one\r\nInjected: two"}))
    with pytest.raises(AttestationRejected, match="x-note header spans lines"):
        sts_request(request, auth, f"http://{STS}")


class RecordingSts(BaseHTTPRequestHandler):
    """Answers GetCallerIdentity as STS does, after reading the body its Content-Length announces (as any
    server does: a forged length makes it wait for bytes that never come), and records what it received."""

    received: list[dict[str, str]]
    timeout = 30  # a handler waiting for a body that never comes gives up eventually, so the server can stop

    def do_POST(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.rfile.read(int(headers.get("content-length", "0")))
        self.received.append(headers)
        body = (
            f"<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>{CALLER}</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>"
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recording_sts() -> Iterator[tuple[str, list[dict[str, str]]]]:
    received: list[dict[str, str]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (RecordingSts,), {"received": received}))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_a_forged_content_length_reaches_sts_as_the_real_one(recording_sts):
    authority, received = recording_sts
    token = attestation(host=authority, headers={"Content-Length": "1000000", "X-Forwarded-For": "198.51.100.7"})
    caller = verify_aws_attestation(token, sts_endpoint=f"http://{authority}", sts_region=REGION, lookup_secret=issued)
    assert caller.role_arn == "arn:aws:iam::123456789012:role/loader"
    (headers,) = received
    assert headers["content-length"] == "0"
    assert "x-forwarded-for" not in headers
    assert headers["host"] == authority


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
