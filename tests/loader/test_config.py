"""The function is keyless and names reach SQL only as validated identifiers."""

from __future__ import annotations

import pytest

from widf_loader.config import ConfigError, LoaderSettings
from widf_ops.admin import SnowflakeNames, iam_role_arn, render

BASE = {"SNOWFLAKE_ACCOUNT": "myorg-myaccount"}


@pytest.mark.parametrize("secret", ["SNOWFLAKE_PASSWORD", "SNOWFLAKE_PRIVATE_KEY", "SNOWFLAKE_PRIVATE_KEY_PATH", "SNOWFLAKE_TOKEN"])
def test_loader_refuses_to_start_with_a_secret(secret):
    with pytest.raises(ConfigError, match=f"Refusing to start: {secret} is set"):
        LoaderSettings.from_env(BASE | {secret: "hunter2"})  # pragma: allowlist secret


def test_loader_refuses_other_authenticators():
    with pytest.raises(ConfigError, match="only WORKLOAD_IDENTITY"):
        LoaderSettings.from_env(BASE | {"SNOWFLAKE_AUTHENTICATOR": "SNOWFLAKE_JWT"})


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
