"""The function is keyless and names reach SQL only as validated identifiers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from widf_loader.config import (
    REFUSED_PREFIXES,
    REFUSED_VARIABLES,
    ConfigError,
    LoaderSettings,
    connection_file_paths,
    refusals,
    refuse_secrets,
)
from widf_ops.admin import SnowflakeNames, iam_role_arn, render

BASE = {"SNOWFLAKE_ACCOUNT": "myorg-myaccount"}


# The whole list, as docs/reliability.md ("Keyless, enforced") gives it with each entry's source:
# (variable, a value it might hold, the words that say why it is refused). Made-up values only.
REFUSED = [
    ("SNOWFLAKE_PASSWORD", "hunter2", "a password"),  # pragma: allowlist secret
    ("SNOWFLAKE_PASSWORD", "", "a password"),  # set at all is enough, even empty
    ("SNOWFLAKE_PASSCODE", "123456", "an MFA passcode"),
    ("SNOWFLAKE_PAT", "pat-made-up-value", "a programmatic access token"),  # pragma: allowlist secret
    ("SNOWFLAKE_TOKEN", "token-made-up-value", "a token"),  # pragma: allowlist secret
    ("SNOWFLAKE_TOKEN_FILE_PATH", "/var/task/token.txt", "the path of a file holding a token"),
    ("SNOWFLAKE_SESSION_TOKEN", "session-made-up-value", "a session token"),  # pragma: allowlist secret
    ("SNOWFLAKE_MASTER_TOKEN", "master-made-up-value", "a master token"),  # pragma: allowlist secret
    ("SNOWFLAKE_OAUTH_TOKEN", "oauth-made-up-value", "an OAuth token"),  # pragma: allowlist secret
    ("SNOWFLAKE_OAUTH_CLIENT_SECRET", "client-made-up-value", "an OAuth client secret"),  # pragma: allowlist secret
    ("SNOWFLAKE_OAUTH_CLIENT_ID", "client-id-made-up", "an OAuth setting"),
    ("SNOWFLAKE_OAUTH_TOKEN_REQUEST_URL", "https://idp.example/token", "an OAuth setting"),
    ("SNOWFLAKE_PRIVATE_KEY", "MIIEvQIBADANBg-made-up", "a private key"),  # pragma: allowlist secret
    ("SNOWFLAKE_PRIVATE_KEY_RAW", "pem-text-made-up", "a private key (PEM text)"),
    ("SNOWFLAKE_PRIVATE_KEY_FILE", "/var/task/rsa_key.p8", "the path of a private key"),
    ("SNOWFLAKE_PRIVATE_KEY_PATH", "/var/task/rsa_key.p8", "the path of a private key"),
    ("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", "made-up-passphrase", "a private key's passphrase"),  # pragma: allowlist secret
    ("SNOWFLAKE_PRIVATE_KEY_FILE_PWD", "made-up-passphrase", "a private key's passphrase"),  # pragma: allowlist secret
    ("SNOWFLAKE_PRIVATE_KEY_PASSWORD", "made-up-passphrase", "a private key's passphrase"),  # pragma: allowlist secret
    ("PRIVATE_KEY_PASSPHRASE", "made-up-passphrase", "which the Snowflake CLI reads"),  # pragma: allowlist secret
    ("SNOWFLAKE_CONNECTIONS", "[admin]\npassword = 'made-up'", "connection definitions"),  # pragma: allowlist secret
    ("SNOWFLAKE_CONNECTIONS_ADMIN_PASSWORD", "made-up-password", "SNOWFLAKE_CONNECTIONS_<NAME>_<KEY>"),  # pragma: allowlist secret
    ("SNOWFLAKE_CONNECTIONS_PROD_ACCOUNT", "myorg-other", "a setting of a named connection"),
    ("SNOWFLAKE_CONNECTION_NAME", "admin", "names a connection in connections.toml"),
    ("SNOWFLAKE_DEFAULT_CONNECTION_NAME", "admin", "names the connection the connector loads"),
    ("SNOWFLAKE_HOME", "/var/task/snowflake", "a folder of connection files"),
    ("SNOWFLAKE_RUNNING_INSIDE_SPCS", "true", "a container services token file with every login"),
    ("SF_TEMPORARY_CREDENTIAL_CACHE_DIR", "/tmp/sf-cache", "a cache of Snowflake credentials"),
    ("SF_TEMPORARY_CREDENTIAL_CACHE_FILE_NAME", "cache.json", "cache of Snowflake credentials"),
]


@pytest.mark.parametrize(("variable", "value", "why"), REFUSED)
def test_each_way_to_a_secret_or_a_connection_is_refused_in_one_line_that_names_it_and_says_why(variable, value, why):
    with pytest.raises(ConfigError) as refused:
        LoaderSettings.from_env(BASE | {variable: value})
    message = str(refused.value)
    assert message.startswith(f"Refusing to start: {variable} is set (")
    assert why in message
    assert "\n" not in message
    assert not value or value not in message  # the value itself is never repeated


def test_the_table_covers_every_refused_variable():
    tested = {variable for variable, _, _ in REFUSED}
    assert set(REFUSED_VARIABLES) <= tested
    assert all(any(v.startswith(prefix) for v in tested) for prefix in REFUSED_PREFIXES)


@pytest.mark.parametrize("authenticator", ["SNOWFLAKE_JWT", "programmatic_access_token", "externalbrowser", "oauth", ""])
def test_loader_refuses_other_authenticators(authenticator):
    with pytest.raises(ConfigError, match="only WORKLOAD_IDENTITY"):
        LoaderSettings.from_env(BASE | {"SNOWFLAKE_AUTHENTICATOR": authenticator})


def test_every_offender_is_named_on_the_one_line():
    with pytest.raises(ConfigError) as refused:
        refuse_secrets({"SNOWFLAKE_PAT": "x", "SNOWFLAKE_CONNECTIONS_A_USER": "y", "SNOWFLAKE_AUTHENTICATOR": "SNOWFLAKE_JWT"})
    message = str(refused.value)
    assert message.count("\n") == 0
    assert all(name in message for name in ("SNOWFLAKE_PAT is set", "SNOWFLAKE_CONNECTIONS_A_USER is set", "SNOWFLAKE_AUTHENTICATOR is"))


def test_the_functions_own_settings_pass(tmp_path):
    # What the template and the local stack give the function; none of it is a secret or a connection.
    env = BASE | {
        "HOME": str(tmp_path),
        "SNOWFLAKE_DATABASE": "WIDF_DEMO_DB",
        "SNOWFLAKE_SCHEMA": "PUBLIC",
        "SNOWFLAKE_WAREHOUSE": "COMPUTE_WH",
        "SNOWFLAKE_ROLE": "WIDF_DEMO_ROLE",
        "SNOWFLAKE_HOST": "localhost",
        "SNOWFLAKE_PORT": "8080",
        "SNOWFLAKE_PROTOCOL": "http",
        "SNOWFLAKE_AUTHENTICATOR": "workload_identity",
        "SNOWFLAKE_WORKLOAD_IDENTITY_HOST": "localhost",
        "SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES": "localhost",
        "SNOWFLAKE_DISABLE_PLATFORM_DETECTION": "true",
        "WIDF_FUNCTION_TIMEOUT_SECONDS": "30",
    }
    assert refusals(env, files=True) == []
    assert LoaderSettings.from_env(env).account == "myorg-myaccount"


@pytest.mark.parametrize(
    ("where", "extra"),
    [
        pytest.param(".snowflake/connections.toml", {}, id="default-snowflake-home-connections"),
        pytest.param(".snowflake/config.toml", {}, id="default-snowflake-home-config"),
        pytest.param(".config/snowflake/connections.toml", {}, id="platform-config-dir"),
        pytest.param("xdg/snowflake/config.toml", {"XDG_CONFIG_HOME": "{home}/xdg"}, id="xdg-config-home"),
        pytest.param("layer/connections.toml", {"SNOWFLAKE_HOME": "{home}/layer"}, id="snowflake-home"),
    ],
)
def test_a_connection_file_where_the_connector_looks_is_refused_at_start_up(tmp_path, where, extra):
    env = BASE | {"HOME": str(tmp_path)} | {k: v.format(home=tmp_path) for k, v in extra.items()}
    assert not [found for found in refusals(env, files=True) if " exists " in found]  # nothing there yet
    path = tmp_path / where
    path.parent.mkdir(parents=True)
    path.write_text("[admin]\naccount = 'myorg-myaccount'\n")
    with pytest.raises(ConfigError) as refused:
        refuse_secrets(env, files=True)
    message = str(refused.value)
    assert f"{path} exists (Snowflake " in message and "which the connector reads" in message
    assert "\n" not in message
    assert str(path) in connection_file_paths(env)
    refuse_secrets({k: v for k, v in env.items() if k != "SNOWFLAKE_HOME"})  # without `files`, files are not looked for


def test_settings_from_a_mapping_never_look_at_this_machines_files(tmp_path):
    # LoaderSettings.from_env(mapping) checks a mapping, e.g. a deployed function's configuration from the
    # administrator's machine, whose own ~/.snowflake is not the function's.
    (tmp_path / ".snowflake").mkdir()
    (tmp_path / ".snowflake" / "connections.toml").write_text("[admin]\n")
    assert LoaderSettings.from_env(BASE | {"HOME": str(tmp_path)}).account == "myorg-myaccount"


def test_connection_is_workload_identity_with_bound_parameters():
    args = LoaderSettings.from_env(BASE).connect_args()
    assert args["authenticator"] == "WORKLOAD_IDENTITY"
    assert args["workload_identity_provider"] == "AWS"
    assert args["paramstyle"] == "qmark"
    assert not {"password", "private_key", "token"} & args.keys()


def test_login_skips_the_connectors_network_platform_probes():
    # Connector 4.x reads this; 5.x ignores it and reads SNOWFLAKE_DISABLE_PLATFORM_DETECTION, which
    # test_template checks the function's environment sets.
    assert LoaderSettings.from_env(BASE).connect_args()["platform_detection_timeout_seconds"] == 0.0


@pytest.mark.parametrize("bad", ["RAW_DATA; DROP TABLE X", "a-b", "1abc", "x y", '"quoted"'])
def test_identifiers_are_validated(bad):
    with pytest.raises(ConfigError, match="is not a plain Snowflake identifier"):
        LoaderSettings.from_env(BASE | {"WIDF_LEDGER_TABLE": bad})


def test_account_is_required():
    with pytest.raises(ConfigError, match="SNOWFLAKE_ACCOUNT is not set"):
        LoaderSettings.from_env({})


def test_assumed_role_arn_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="assumed-role session ARN; Snowflake must trust the IAM role ARN"):
        iam_role_arn("arn:aws:sts::123456789012:assumed-role/loader/widf-loader")


@pytest.mark.parametrize("bad", ["arn:aws:iam::123456789012:role/x' OR '1'='1", "arn:aws:iam::12345:role/x", "role/x"])
def test_only_iam_role_arns_reach_sql(bad):
    with pytest.raises(ConfigError, match="is not an IAM role ARN"):
        SnowflakeNames().variables(bad)


def test_templates_need_every_variable():
    assert render("USE ROLE <% role %>;", {"role": "R"}) == "USE ROLE R;"
    with pytest.raises(ConfigError, match="needs a value for 'role_arn'"):
        render("ARN = '<% role_arn %>'", {})


# Connector 5.x's secret parameters that are not a Snowflake login's: a proxy's, and the key of a programmatic
# access token's session (the token itself is refused).
NOT_A_SNOWFLAKE_LOGIN = {"proxy", "proxy_password", "external_session_id"}


def test_every_secret_parameter_of_the_connector_is_refused_as_its_snowflake_variable():
    from snowflake.connector.connection_config import ConnectionConfig

    sensitive = ConnectionConfig._SENSITIVE_PARAMS - NOT_A_SNOWFLAKE_LOGIN  # noqa: SLF001 - the connector's own list of its secrets
    assert {"password", "private_key", "token"} <= sensitive
    assert [p for p in sorted(sensitive) if not refusals({f"SNOWFLAKE_{p.upper()}": "x"})] == []


def handler_import(env: dict[str, str], script: str = "import widf_loader.handler") -> subprocess.CompletedProcess:
    """A fresh interpreter importing the handler, as Lambda's init does, with this environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SNOWFLAKE_", "SF_", "PRIVATE_KEY"))}
    return subprocess.run([sys.executable, "-c", script], env=clean | env, capture_output=True, text=True, timeout=60)


def test_importing_the_handler_with_a_password_set_fails_with_one_line_naming_it(tmp_path):
    result = handler_import(
        {"HOME": str(tmp_path), "SNOWFLAKE_ACCOUNT": "myorg-myaccount", "SNOWFLAKE_PASSWORD": "hunter2"}
    )  # pragma: allowlist secret
    assert result.returncode == 1
    naming = [line for line in result.stderr.splitlines() if "SNOWFLAKE_PASSWORD" in line]
    assert naming == [result.stderr.splitlines()[-1]], result.stderr  # the exception's line, and no other, names it
    assert naming[0].startswith("widf_loader.config.ConfigError: Refusing to start: SNOWFLAKE_PASSWORD is set (a password). ")
    assert "hunter2" not in result.stderr + result.stdout


def test_the_handler_refuses_before_its_heavy_imports(tmp_path):
    probe = (
        "import sys\n"
        "try:\n    import widf_loader.handler\nexcept Exception as e:\n    print(type(e).__name__)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'snowflake', 'boto3', 'botocore', 'aws_lambda_powertools'}))"
    )
    (tmp_path / ".snowflake").mkdir()
    (tmp_path / ".snowflake" / "connections.toml").write_text("[admin]\n")
    result = handler_import({"HOME": str(tmp_path)}, probe)
    assert result.stdout.split() == ["ConfigError", "[]"], result.stderr
