"""Local AWS: moto in server mode, and the resources the function needs.

`provision_function` builds what the SAM template builds in the cloud: the
landing bucket and its notification, the queue with its dead-letter queue,
the function's execution role with a least-privilege policy, and its log
group. moto accepts any credentials; the runner still assumes the role so
the function sees exactly what it would see in Lambda.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
# moto serves any credentials; these are its documented placeholders, not secrets.
ADMIN_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

LANDING_PREFIX = "incoming/"
LANDING_SUFFIXES = (".json", ".json.gz", ".ndjson", ".ndjson.gz")
LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def complete_s3_event_records() -> None:
    """Give moto's S3 notifications the fields real S3 sends and moto leaves out.

    Real records carry the object's versionId (in a versioned bucket) and a
    sequencer that orders events for one key; the loader's file identity and
    event context depend on both.
    """
    from moto.s3 import notifications

    original = notifications._get_s3_event
    if getattr(original, "completed", False):
        return

    def with_version_and_sequencer(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict:
        event = original(event_name, bucket, key, notification_id)
        obj = event["Records"][0]["s3"]["object"]
        if getattr(key, "version_id", None) and key.version_id != "null":
            obj["versionId"] = key.version_id
        obj["sequencer"] = f"{time.time_ns():016X}"
        return event

    with_version_and_sequencer.completed = True  # type: ignore[attr-defined]
    notifications._get_s3_event = with_version_and_sequencer


def start_moto(port: int) -> ThreadedMotoServer:
    complete_s3_event_records()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


def client(service: str, endpoint: str, region: str = REGION, **credentials: str):
    return boto3.client(service, endpoint_url=endpoint, region_name=region, **(credentials or ADMIN_CREDENTIALS))


def issued_secret(access_key_id: str) -> str | None:
    """The secret local STS issued with this access key, while it is valid.

    Only callable inside the process that runs moto: this is how the gateway
    verifies SigV4 signatures without trusting anything the caller sent.
    """
    from moto.sts.models import sts_backends

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for account_backends in list(sts_backends.values()):
        for backend in list(account_backends.values()):
            role = backend.get_assumed_role_from_access_key(access_key_id)
            if role and role.expiration > now:
                return role.secret_access_key
    return None


@dataclass(frozen=True)
class FunctionSpec:
    """What the runner needs to run the function, as a Lambda service would know it."""

    name: str
    handler: str
    role_arn: str
    queue_url: str
    timeout_seconds: int
    memory_mb: int
    batch_size: int
    environment: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FunctionSpec:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Deployment:
    bucket: str
    queue_url: str
    dlq_url: str
    role_arn: str
    log_group: str


def function_role_policy(bucket: str, queue_arn: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": f"arn:aws:s3:::{bucket}/{LANDING_PREFIX}*"},
            {
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
                "Resource": queue_arn,
            },
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws/lambda/*",
            },
        ],
    }


def provision_function(endpoint: str, *, name: str, timeout_seconds: int, max_receive_count: int = 3) -> Deployment:
    """Create (or find) everything the function needs; safe to run again."""
    s3, sqs, iam, logs = (client(s, endpoint) for s in ("s3", "sqs", "iam", "logs"))
    bucket = f"{name}-landing-{ACCOUNT_ID}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=f"{name}-events",
        Attributes={
            # Lambda's advice: at least six times the function timeout, so a retry never overlaps a run.
            "VisibilityTimeout": str(6 * timeout_seconds),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": f"landing{suffix.replace('.', '-')}",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": LANDING_PREFIX}, {"Name": "suffix", "Value": suffix}]}},
                }
                for suffix in LANDING_SUFFIXES
            ]
        },
    )

    role_name = f"{name}-function-role"
    try:
        role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role_name, PolicyName="load-from-landing", PolicyDocument=json.dumps(function_role_policy(bucket, queue_arn)))

    log_group = f"/aws/lambda/{name}"
    if not logs.describe_log_groups(logGroupNamePrefix=log_group)["logGroups"]:
        logs.create_log_group(logGroupName=log_group)
        logs.put_retention_policy(logGroupName=log_group, retentionInDays=14)
    return Deployment(bucket=bucket, queue_url=queue_url, dlq_url=dlq_url, role_arn=role_arn, log_group=log_group)
