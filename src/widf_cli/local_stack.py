"""The local stack in the administrator's terms: its Snowflake as the local
administrator, and the function deployed there with its resources read from the
stack's outputs (`widf_ops.stack_outputs.Deployment`), as for a cloud stack.

The local stack (`widf_local`) only deploys the template with the values it is
given and keeps what CloudFormation answers; the Snowflake names and the
reading of the outputs are the administrator's, so they are applied here and
the emulator shares no code with what it tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import snowflake.connector

from widf_local import deploy
from widf_local.aws import FunctionSpec
from widf_local.stack import StackInfo, StackPaths
from widf_ops.admin import ADMIN_CONNECTION_OPTIONS, SnowflakeNames
from widf_ops.stack_outputs import FUNCTION_NAME, Deployment


@dataclass(frozen=True)
class LocalFunction:
    """The function on the local stack: its configuration as the runner runs it, and its resources."""

    function: FunctionSpec
    resources: Deployment


def template_parameters(names: SnowflakeNames) -> dict[str, str]:
    """The template's parameters the command chooses; the local stack adds where its Snowflake is."""
    return {
        "FunctionName": FUNCTION_NAME,
        "SnowflakeDatabase": names.database,
        "SnowflakeSchema": names.schema,
        "SnowflakeWarehouse": names.warehouse,
        "SnowflakeRole": names.role,
        "SnowflakeServiceUser": names.user,
    }


def local_function(deployment: deploy.LocalDeployment) -> LocalFunction:
    return LocalFunction(function=deployment.function, resources=Deployment.from_stack_outputs(deployment.outputs))


def deploy_to_local_stack(
    info: StackInfo, paths: StackPaths, names: SnowflakeNames, overrides: Mapping[str, str] | None = None
) -> LocalFunction:
    """`aws deploy` on the local stack; `overrides` (template parameters) win over everything else."""
    return local_function(deploy.deploy(info, paths, template_parameters(names) | dict(overrides or {})))


def deployed(paths: StackPaths) -> LocalFunction | None:
    return local_function(found) if (found := deploy.deployed(paths)) else None


def admin_connection(info: StackInfo, **kwargs) -> snowflake.connector.SnowflakeConnection:
    """The local administrator, the only password in the system (generated, under .local/)."""
    return snowflake.connector.connect(
        user=info.admin_user,
        password=info.admin_password,
        account=info.snowflake_account,
        host=info.snowflake_host,
        port=info.snowflake_port,
        protocol="http",
        role="ACCOUNTADMIN",
        **ADMIN_CONNECTION_OPTIONS | kwargs,
    )


def function_env(info: StackInfo, function: LocalFunction) -> dict[str, str]:
    """The deployed function's environment with a fresh session of its role, as the runner gives them, for
    running the loader outside the runner: the tests in their own process, the benchmark in a fresh one."""
    from widf_local import aws

    credentials = aws.client("sts", info.aws_endpoint).assume_role(
        RoleArn=function.resources.role_arn, RoleSessionName=function.function.name
    )["Credentials"]
    return {
        **function.function.environment,
        "AWS_ENDPOINT_URL": info.aws_endpoint,
        "SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES": "localhost",
        "AWS_REGION": aws.REGION,
        "AWS_DEFAULT_REGION": aws.REGION,
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }
