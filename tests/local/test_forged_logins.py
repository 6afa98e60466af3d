"""Forged and untrusted identities against the running gateway: each is refused, in Snowflake's words, and logged.

Every forgery starts from credentials local STS really issued (or IAM really
created) and changes one thing, so the refusal can only be for that change. The
same builder's unforged attestation logs in, which proves the difference is the
forgery and nothing else.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from widf_cli.local_stack import admin_connection
from widf_local import aws

TRUSTED_ROLE, UNTRUSTED_ROLE, USER = "forgery-trusted-role", "forgery-untrusted-role", "FORGERY_TEST_BOT"
REFUSED = ("Unable to find an associated Snowflake user", "Invalid AWS workload identity attestation")


@pytest.fixture(scope="module")
def roles(stack) -> dict[str, str]:
    iam = aws.client("iam", stack.info.aws_endpoint)
    arns = {
        name: iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(aws.LAMBDA_TRUST_POLICY))["Role"]["Arn"]
        for name in (TRUSTED_ROLE, UNTRUSTED_ROLE)
    }
    trust(stack, arns[TRUSTED_ROLE])
    return arns


def trust(stack, role_arn: str) -> None:
    with admin_connection(stack.info) as connection:
        connection.cursor().execute(f"CREATE OR REPLACE USER {USER} TYPE = SERVICE WORKLOAD_IDENTITY = (TYPE = AWS ARN = '{role_arn}')")


def role_credentials(stack, role_arn: str) -> Credentials:
    c = aws.client("sts", stack.info.aws_endpoint).assume_role(RoleArn=role_arn, RoleSessionName="forgery")["Credentials"]
    return Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])


def attestation(
    stack,
    credentials: Credentials,
    *,
    host: str | None = None,
    query: str = "Action=GetCallerIdentity&Version=2011-06-15",
    audience: str | None = "signed",
    region: str = aws.REGION,
    after_signing: Callable[[dict], None] = lambda headers: None,
) -> str:
    """What the connector sends: a pre-signed STS request, base64 JSON; with one thing changed on request."""
    host = host or stack.info.aws_endpoint.split("://", 1)[1]
    headers = {"Host": host}
    if audience == "signed":
        headers["X-Snowflake-Audience"] = "snowflakecomputing.com"
    request = AWSRequest(method="POST", url=f"http://{host}/?{query}", headers=headers)
    SigV4Auth(credentials, "sts", region).add_auth(request)
    signed = dict(request.headers.items())
    if audience == "unsigned":
        signed["X-Snowflake-Audience"] = "snowflakecomputing.com"  # carried, but outside the signature
    after_signing(signed)
    return base64.b64encode(json.dumps({"url": request.url, "method": "POST", "headers": signed}).encode()).decode()


def log_in(stack, token: str) -> dict:
    """The connector's login request, sent as an attacker would: straight to the endpoint."""
    body = {
        "data": {
            "AUTHENTICATOR": "WORKLOAD_IDENTITY",
            "PROVIDER": "AWS",
            "TOKEN": token,
            "CLIENT_APP_ID": "forgery",
            "SESSION_PARAMETERS": {},
        }
    }
    request = urllib.request.Request(
        f"http://{stack.info.snowflake_host}:{stack.info.snowflake_port}/session/v1/login-request",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def refused(answer: dict) -> str:
    assert answer["success"] is False, f"logged in: {answer.get('data', {}).get('sessionInfo')}"
    assert answer["message"].startswith(REFUSED), answer["message"]
    return answer["message"]


def test_the_unforged_attestation_logs_in(stack, roles):
    answer = log_in(stack, attestation(stack, role_credentials(stack, roles[TRUSTED_ROLE])))
    assert answer["success"] is True, answer.get("message")


def core_attestation(stack, credentials: Credentials, monkeypatch: pytest.MonkeyPatch) -> str:
    """The attestation connector 5.x's Rust core builds and signs itself (the tools' connector, this
    process's), from the role's credentials in the environment, as the function's would be."""
    from snowflake.connector._common.wif_util import AttestationProvider, create_attestation

    for name, value in {
        "AWS_ACCESS_KEY_ID": credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
        "AWS_SESSION_TOKEN": credentials.token,
        "AWS_REGION": aws.REGION,
    }.items():
        monkeypatch.setenv(name, value)
    return create_attestation(AttestationProvider.AWS, wif_host=stack.info.aws_endpoint).credential


def test_connector_5s_own_attestation_logs_in_and_is_refused_once_tampered_with(stack, roles, monkeypatch):
    token = core_attestation(stack, role_credentials(stack, roles[TRUSTED_ROLE]), monkeypatch)
    assert log_in(stack, token)["success"] is True
    document = json.loads(base64.b64decode(token))
    document["headers"] = {
        k: ("someone-elses-session-token" if k.lower() == "x-amz-security-token" else v) for k, v in document["headers"].items()
    }
    assert "signature does not match" in refused(log_in(stack, base64.b64encode(json.dumps(document).encode()).decode()))


def test_connector_5s_attestation_of_a_role_no_user_trusts_is_refused_with_its_arn(stack, roles, monkeypatch):
    token = core_attestation(stack, role_credentials(stack, roles[UNTRUSTED_ROLE]), monkeypatch)
    assert f"assumed-role/{UNTRUSTED_ROLE}/forgery" in refused(log_in(stack, token))


def test_a_signature_made_with_a_guessed_secret_is_refused(stack, roles):
    genuine = role_credentials(stack, roles[TRUSTED_ROLE])
    guessed = Credentials(genuine.access_key, "x" * 40, genuine.token)
    assert "signature does not match" in refused(log_in(stack, attestation(stack, guessed)))


def test_a_header_changed_after_signing_is_refused(stack, roles):
    def swap_token(headers: dict) -> None:
        headers["X-Amz-Security-Token"] = "someone-elses-session-token"

    message = refused(log_in(stack, attestation(stack, role_credentials(stack, roles[TRUSTED_ROLE]), after_signing=swap_token)))
    assert "signature does not match" in message


def test_a_content_length_forged_after_signing_neither_stalls_nor_stops_the_login(stack, roles):
    # Forwarded, it made STS wait for a million bytes until the gateway gave up (STS unavailable: a 503
    # here, endless retries for the connector). The request to STS is rebuilt: urllib sends the real length.
    def forge_length(headers: dict) -> None:
        headers["Content-Length"] = "1000000"

    answer = log_in(stack, attestation(stack, role_credentials(stack, roles[TRUSTED_ROLE]), after_signing=forge_length))
    assert answer["success"] is True, answer.get("message")


def test_a_session_token_outside_the_signature_is_refused(stack, roles):
    genuine = role_credentials(stack, roles[TRUSTED_ROLE])

    def add_token(headers: dict) -> None:
        headers["X-Amz-Security-Token"] = genuine.token

    message = refused(log_in(stack, attestation(stack, Credentials(genuine.access_key, genuine.secret_key), after_signing=add_token)))
    assert "X-Amz-Security-Token outside its signature" in message


def test_temporary_credentials_without_their_session_token_are_refused(stack, roles):
    genuine = role_credentials(stack, roles[TRUSTED_ROLE])
    message = refused(log_in(stack, attestation(stack, Credentials(genuine.access_key, genuine.secret_key))))
    assert "temporary credentials but carries no session token" in message


def test_an_attestation_scoped_to_another_region_is_refused(stack, roles):
    message = refused(log_in(stack, attestation(stack, role_credentials(stack, roles[TRUSTED_ROLE]), region="eu-west-1")))
    assert f"scoped to region 'eu-west-1', not the trusted STS's '{aws.REGION}'" in message


@pytest.mark.parametrize("audience", [None, "unsigned"])
def test_a_missing_or_unsigned_audience_is_refused(stack, roles, audience):
    message = refused(log_in(stack, attestation(stack, role_credentials(stack, roles[TRUSTED_ROLE]), audience=audience)))
    assert "x-snowflake-audience" in message.lower()


def test_an_attestation_older_than_15_minutes_is_refused(stack, roles, monkeypatch):
    twenty_minutes_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: twenty_minutes_ago)
    token = attestation(stack, role_credentials(stack, roles[TRUSTED_ROLE]))
    monkeypatch.undo()
    assert "outside the allowed clock skew" in refused(log_in(stack, token))


def test_an_attestation_for_another_sts_is_refused_and_never_followed(stack, roles):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(2)
    connections: list = []
    threading.Thread(target=lambda: connections.append(_accept(listener)), daemon=True).start()
    elsewhere = f"127.0.0.1:{listener.getsockname()[1]}"
    message = refused(log_in(stack, attestation(stack, role_credentials(stack, roles[TRUSTED_ROLE]), host=elsewhere)))
    assert "not the trusted STS endpoint" in message
    listener.close()
    assert connections in ([], [None]), "the gateway connected to the URL inside the attestation"


def _accept(listener: socket.socket):
    try:
        return listener.accept()
    except OSError:
        return None


def test_a_different_sts_action_is_refused(stack, roles):
    query = f"Action=AssumeRole&RoleArn={roles[TRUSTED_ROLE]}&RoleSessionName=x&Version=2011-06-15"
    message = refused(log_in(stack, attestation(stack, role_credentials(stack, roles[TRUSTED_ROLE]), query=query)))
    assert "not an STS GetCallerIdentity request" in message


def test_a_role_no_user_trusts_is_refused_with_its_arn(stack, roles):
    message = refused(log_in(stack, attestation(stack, role_credentials(stack, roles[UNTRUSTED_ROLE]))))
    assert f"assumed-role/{UNTRUSTED_ROLE}/forgery" in message


def test_an_iam_users_genuine_key_is_not_a_workload(stack, roles):
    iam = aws.client("iam", stack.info.aws_endpoint)
    iam.create_user(UserName="forgery-alice")
    key = iam.create_access_key(UserName="forgery-alice")["AccessKey"]
    message = refused(log_in(stack, attestation(stack, Credentials(key["AccessKeyId"], key["SecretAccessKey"]))))
    assert "not an assumed IAM role" in message


@pytest.mark.parametrize("removal", ["ALTER USER {user} UNSET WORKLOAD_IDENTITY", "DROP USER {user}"])
def test_a_role_whose_trust_was_removed_is_refused(stack, roles, removal):
    trust(stack, roles[TRUSTED_ROLE])
    credentials = role_credentials(stack, roles[TRUSTED_ROLE])
    assert log_in(stack, attestation(stack, credentials))["success"] is True
    with admin_connection(stack.info) as connection:
        connection.cursor().execute(removal.format(user=USER))
    try:
        assert f"assumed-role/{TRUSTED_ROLE}/forgery" in refused(log_in(stack, attestation(stack, credentials)))
    finally:
        trust(stack, roles[TRUSTED_ROLE])


def test_every_refusal_is_logged(stack, roles):
    log_in(stack, attestation(stack, role_credentials(stack, roles[UNTRUSTED_ROLE])))
    text = stack.paths.log_file.read_text(errors="replace")
    assert f"no user trusts arn:aws:iam::{aws.ACCOUNT_ID}:role/{UNTRUSTED_ROLE}" in text
    assert "workload identity rejected: the attestation's signature does not match" in text
