"""Where the deployed function's resources are, found the same way on the local
stack and in the cloud: the outputs of the stack deployed from
infra/template.yaml (`Deployment`), with clients for an explicit endpoint
(`client`), and a poll for what an upload should cause (`wait_for`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import boto3

from widf_loader.config import ConfigError

FUNCTION_NAME = "widf-loader"
REGION = "us-east-1"
# moto serves any credentials; these are its documented placeholders, not secrets.
ADMIN_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

T = TypeVar("T")
WAIT_SECONDS = 90


class DeployError(ConfigError):
    """The stack could not be deployed as the template describes it."""


def client(service: str, endpoint: str, region: str = REGION, **credentials: str):
    return boto3.client(service, endpoint_url=endpoint, region_name=region, **(credentials or ADMIN_CREDENTIALS))


@dataclass(frozen=True)
class Deployment:
    """Where the function's resources are: the stack's outputs, locally and in the cloud."""

    bucket: str
    queue_url: str
    dlq_url: str
    role_arn: str
    log_group: str

    # The output of infra/template.yaml each field comes from.
    OUTPUTS: ClassVar[dict[str, str]] = {
        "bucket": "LandingBucketName",
        "queue_url": "EventsQueueUrl",
        "dlq_url": "DeadLetterQueueUrl",
        "role_arn": "FunctionRoleArn",
        "log_group": "FunctionLogGroupName",
    }

    @classmethod
    def from_stack_outputs(cls, outputs: Mapping[str, str]) -> Deployment:
        if missing := [name for name in cls.OUTPUTS.values() if name not in outputs]:
            raise DeployError(f"The stack has no output {', '.join(missing)}: was it deployed from infra/template.yaml?")
        return cls(**{field_name: outputs[output] for field_name, output in cls.OUTPUTS.items()})


def wait_for(condition: Callable[[], T | None], seconds: float = WAIT_SECONDS) -> T | None:
    """Poll an observable condition until it holds or the time is up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (result := condition()) is not None:
            return result
        time.sleep(0.5)
    return None
