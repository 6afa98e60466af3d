"""`aws deploy` against the local stack: provision AWS resources in moto and
hand the function to the runner."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import snowflake.connector

from widf_loader.admin import SnowflakeNames
from widf_loader.local import aws
from widf_loader.local.stack import StackInfo, StackPaths

FUNCTION_NAME = "widf-loader"
HANDLER = "widf_loader.handler.lambda_handler"
TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class LocalDeployment:
    function: aws.FunctionSpec
    resources: aws.Deployment


def function_environment(info: StackInfo, names: SnowflakeNames) -> dict[str, str]:
    """The variables the template gives the function, pointed at the local stack."""
    return {
        "SNOWFLAKE_ACCOUNT": info.snowflake_account,
        "SNOWFLAKE_HOST": info.snowflake_host,
        "SNOWFLAKE_PORT": str(info.snowflake_port),
        "SNOWFLAKE_PROTOCOL": "http",
        "SNOWFLAKE_DATABASE": names.database,
        "SNOWFLAKE_SCHEMA": names.schema,
        "SNOWFLAKE_WAREHOUSE": names.warehouse,
        "SNOWFLAKE_ROLE": names.role,
        "SNOWFLAKE_WORKLOAD_IDENTITY_HOST": info.aws_endpoint,
    }


def deploy(info: StackInfo, paths: StackPaths, names: SnowflakeNames) -> LocalDeployment:
    resources = aws.provision_function(info.aws_endpoint, name=FUNCTION_NAME, timeout_seconds=TIMEOUT_SECONDS)
    spec = aws.FunctionSpec(
        name=FUNCTION_NAME,
        handler=HANDLER,
        role_arn=resources.role_arn,
        queue_url=resources.queue_url,
        timeout_seconds=TIMEOUT_SECONDS,
        memory_mb=512,
        batch_size=10,
        environment=function_environment(info, names),
    )
    paths.deployment.write_text(json.dumps(asdict(resources), indent=2))
    paths.function_spec.write_text(spec.to_json())  # last: the runner starts polling when it appears
    return LocalDeployment(function=spec, resources=resources)


def deployed(paths: StackPaths) -> LocalDeployment | None:
    try:
        spec = aws.FunctionSpec.from_json(paths.function_spec.read_text())
        resources = aws.Deployment(**json.loads(paths.deployment.read_text()))
    except FileNotFoundError:
        return None
    return LocalDeployment(function=spec, resources=resources)


def undeploy(paths: StackPaths) -> bool:
    existed = paths.function_spec.exists()
    paths.function_spec.unlink(missing_ok=True)
    paths.deployment.unlink(missing_ok=True)
    return existed


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
        **kwargs,
    )
