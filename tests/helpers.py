"""What the tests share that is not a fixture: paths, and the helpers that need the tools or the command
(widf_ops, widf_cli). Imported as `helpers` (pyproject's pytest `pythonpath` puts tests/ on sys.path); the
stack itself comes from the local stack's pytest plugin, widf_local.pytest_plugin."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from widf_local.pytest_plugin import Stack
    from widf_local.stack import StackInfo

TESTS = Path(__file__).resolve().parent
REPOSITORY = TESTS.parent


def admin_connections_toml(home: Path, info: StackInfo, name: str = "admin") -> Path:
    """A connections.toml in `home` (SNOWFLAKE_HOME) naming the local administrator, as a user writes one:
    readable by its owner only, which connector 5.x checks. (5.x reads no SNOWFLAKE_CONNECTIONS text.)"""
    path = home / "connections.toml"
    path.write_text(
        f'[{name}]\naccount = "{info.snowflake_account}"\nuser = "{info.admin_user}"\npassword = "{info.admin_password}"\n'
        f'host = "{info.snowflake_host}"\nport = {info.snowflake_port}\nprotocol = "http"\nrole = "ACCOUNTADMIN"\n'
    )
    path.chmod(0o600)
    return path


def function_env(stack: Stack, loader) -> dict[str, str]:
    """The function's environment and its role's credentials, as the runner gives them."""
    from widf_local import aws

    credentials = aws.client("sts", stack.info.aws_endpoint).assume_role(
        RoleArn=loader.resources.role_arn, RoleSessionName=loader.function.name
    )["Credentials"]
    return {
        **loader.function.environment,
        "AWS_ENDPOINT_URL": stack.info.aws_endpoint,
        "SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES": "localhost",
        "AWS_REGION": aws.REGION,
        "AWS_DEFAULT_REGION": aws.REGION,
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def sqs_batch(*messages: tuple[str, str]) -> dict:
    """The Lambda SQS event for (message id, body) pairs, built by the runner's own code."""
    from widf_local.runner import sqs_event

    return sqs_event([{"MessageId": m, "ReceiptHandle": f"r-{m}", "Body": b} for m, b in messages], "arn:aws:sqs:us-east-1:123456789012:q")
