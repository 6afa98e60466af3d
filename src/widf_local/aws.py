"""Local AWS: moto in server mode, and what moto's CloudFormation leaves undone.

`aws deploy` sends the SAM template (transformed offline) to moto's
CloudFormation. moto creates the queues, the role and its policy, the log
group and the bucket, but skips some resource types and properties; they are
applied here from the same template's resolved properties, never from a
second description. moto accepts any credentials; the runner still assumes
the role so the function sees exactly what it would see in Lambda.

moto itself is imported only where it runs. The clients and the stack's state
are the local stack's own, not the administrator's tools' (`widf_ops`): an
emulator that shared their code could hide the very mistakes it is there to
show.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from widf_local.stack import StackError

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
# moto serves any credentials; these are its documented placeholders, not secrets.
ADMIN_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

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

    original = notifications._get_s3_event  # noqa: SLF001 - moto's one place that builds an S3 event record
    if getattr(original, "completed", False):
        return

    def with_version_and_sequencer(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict:
        event = original(event_name, bucket, key, notification_id)
        obj = event["Records"][0]["s3"]["object"]
        if getattr(key, "version_id", None) and key.version_id != "null":
            obj["versionId"] = key.version_id
        obj["sequencer"] = f"{time.time_ns():016X}"
        return event

    with_version_and_sequencer.completed = True  # type: ignore[attr-defined]  # a mark on the function: patch once per process
    notifications._get_s3_event = with_version_and_sequencer  # noqa: SLF001 - see above


def atomic_sqs_receives() -> None:
    """Make moto's ReceiveMessage take a message atomically, as SQS does.

    moto checks that a message is visible and then marks it received, with nothing in between
    to stop a concurrent ReceiveMessage (the runner's pollers, on moto's threaded server) taking
    the same message: a second delivery of nearly every message two pollers race for. SQS
    delivers at least once, but its duplicates are rare; the loader handles them, and tests that
    count duplicates need the emulator to make them only when asked. One lock around the scan,
    released while a long poll waits for messages.
    """
    from moto.sqs.models import Queue, SQSBackend

    original_receive, original_wait = SQSBackend.receive_message, Queue.wait_for_messages
    if getattr(original_receive, "atomic", False):
        return
    lock = threading.Lock()

    def receive_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original_receive(self, *args, **kwargs)

    def wait_for_messages(self: Any, timeout: int) -> None:
        lock.release()  # only receive_message waits, and it holds the lock
        try:
            original_wait(self, timeout)
        finally:
            lock.acquire()

    receive_message.atomic = True  # type: ignore[attr-defined]  # a mark on the function: patch once per process
    SQSBackend.receive_message, Queue.wait_for_messages = receive_message, wait_for_messages  # type: ignore[method-assign]  # the patch itself


def start_moto(port: int, faults: Any = None) -> Any:
    """moto's threaded server; with a `faults.FaultInjector`, behind the fault middleware."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    from widf_local.faults import FaultyAws

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:  # moto's own, with the middleware around its app
            app = DomainDispatcherApplication(create_backend_app)
            wrapped = FaultyAws(app, faults) if faults is not None else app
            self._server = make_server(self._ip_address, self._port, wrapped, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    complete_s3_event_records()
    atomic_sqs_receives()
    server = Server(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


def issued_secret(access_key_id: str) -> str | None:
    """The secret local STS issued with this access key, while it is valid.

    Only callable inside the process that runs moto: this is how the gateway
    verifies SigV4 signatures without trusting anything the caller sent.
    """
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    now = datetime.now(UTC).replace(tzinfo=None)
    for account_backends in list(sts_backends.values()):
        for backend in list(account_backends.values()):
            role = backend.get_assumed_role_from_access_key(access_key_id)
            if role and role.expiration > now:
                return role.secret_access_key
    # An IAM user's long-term key is genuine too; STS then names a user, which no
    # Snowflake user can trust, and the refusal says so.
    for account in list(iam_backends.values()):
        for iam in list(account.values()):
            key = iam.access_keys.get(access_key_id)
            if key is not None and key.status == "Active":
                return key.secret_access_key
    return None


class DeployError(StackError):
    """The local stack could not be deployed as the template describes it."""


def client(service: str, endpoint: str, region: str = REGION, **credentials: str):
    import boto3  # here: a command that reads the stack's state without calling AWS starts without it

    return boto3.client(service, endpoint_url=endpoint, region_name=region, **(credentials or ADMIN_CREDENTIALS))


def error_message(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Message") or str(error)


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
    max_concurrency: int = 1  # the event source's ScalingConfig.MaximumConcurrency

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FunctionSpec:
        return cls(**json.loads(text))


# -- CloudFormation in moto ----------------------------------------------------


@dataclass(frozen=True)
class StackState:
    status: str
    outputs: dict[str, str]  # OutputKey -> OutputValue
    physical_ids: dict[str, str]  # logical id -> physical id, for what moto's CloudFormation created


def stack_state(endpoint: str, name: str) -> StackState | None:
    cfn = client("cloudformation", endpoint)
    try:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as e:
        if "does not exist" in error_message(e):
            return None
        raise
    resources = cfn.describe_stack_resources(StackName=name)["StackResources"]
    return StackState(
        status=stack["StackStatus"],
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        physical_ids={r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources if "LogicalResourceId" in r},
    )


def deploy_stack(endpoint: str, name: str, template: Mapping[str, Any], parameters: Mapping[str, str]) -> StackState:
    """Create the stack, or update it in place (the bucket keeps its objects)."""
    cfn = client("cloudformation", endpoint)
    request = {
        "StackName": name,
        "TemplateBody": json.dumps(template),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "Capabilities": ["CAPABILITY_NAMED_IAM"],
    }
    creating = stack_state(endpoint, name) is None
    try:
        if creating:
            cfn.create_stack(**request)
        else:
            cfn.update_stack(**request)
        waiter = cfn.get_waiter("stack_create_complete" if creating else "stack_update_complete")
        waiter.wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    except ClientError as e:
        if "No updates are to be performed" not in error_message(e):
            raise DeployError(f"CloudFormation refused stack {name}: {error_message(e)}") from None
    except WaiterError as e:
        raise DeployError(f"Stack {name} did not deploy: {e}; `widf-loader aws debug` shows its failed events.") from None
    state = stack_state(endpoint, name)
    assert state is not None
    return state


def delete_stack(endpoint: str, name: str) -> bool:
    if stack_state(endpoint, name) is None:
        return False
    cfn = client("cloudformation", endpoint)
    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return True


def resource_attribute(endpoint: str, resource_type: str, physical_id: str, attribute: str) -> str:
    """`Fn::GetAtt`, answered by the local services themselves."""
    match resource_type, attribute:
        case "AWS::SQS::Queue", "Arn":
            return client("sqs", endpoint).get_queue_attributes(QueueUrl=physical_id, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        case "AWS::SQS::Queue", "QueueName":
            return physical_id.rsplit("/", 1)[-1]
        case "AWS::SQS::Queue", "QueueUrl":
            return physical_id
        case "AWS::IAM::Role", "Arn":
            return client("iam", endpoint).get_role(RoleName=physical_id)["Role"]["Arn"]
        case "AWS::S3::Bucket", "Arn":
            return f"arn:aws:s3:::{physical_id}"
        case "AWS::Logs::LogGroup", "Arn":
            groups = client("logs", endpoint).describe_log_groups(logGroupNamePrefix=physical_id)["logGroups"]
            return next(g["arn"] for g in groups if g["logGroupName"] == physical_id)
    raise DeployError(
        f"The local deploy cannot resolve Fn::GetAtt {attribute} of {resource_type}: teach widf_local/aws.py::resource_attribute."
    )


# -- what moto's CloudFormation skips or garbles (moto 5.2), applied from the resolved template --


def _bucket(endpoint: str, bucket: str, properties: Mapping[str, Any], logical_id: str) -> None:
    # moto's CloudFormation applies only BucketEncryption and Tags to a bucket.
    s3 = client("s3", endpoint)
    if versioning := properties.get("VersioningConfiguration"):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning["Status"]})
    if public_access := properties.get("PublicAccessBlockConfiguration"):
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=public_access)
    if ownership := properties.get("OwnershipControls"):
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=ownership)
    if notifications := properties.get("NotificationConfiguration"):
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=notification_request(logical_id, notifications))


_NOTIFICATION_TARGETS = {
    "QueueConfigurations": ("Queue", "QueueArn"),
    "TopicConfigurations": ("Topic", "TopicArn"),
    "LambdaConfigurations": ("Function", "LambdaFunctionArn"),
}


def notification_request(logical_id: str, configuration: Mapping[str, Any]) -> dict[str, Any]:
    """A bucket's NotificationConfiguration, from CloudFormation's shape to the S3 API's."""
    request: dict[str, Any] = {}
    for kind, (target, arn_key) in _NOTIFICATION_TARGETS.items():
        for index, rule in enumerate(configuration.get(kind, []), start=1):
            entry: dict[str, Any] = {
                "Id": f"{logical_id}-{kind.removesuffix('Configurations').lower()}-{index}",
                arn_key: rule[target],
                "Events": [rule["Event"]],
            }
            if rules := rule.get("Filter", {}).get("S3Key", {}).get("Rules"):
                entry["Filter"] = {"Key": {"FilterRules": rules}}
            request.setdefault(kind, []).append(entry)
    if configuration.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        request["EventBridgeConfiguration"] = {}
    return request


def without_tls_only(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The policy minus its deny-unless-TLS statements: moto enforces them, and the
    local endpoint is plain HTTP, so they would refuse every local request."""

    def tls_only(statement: Mapping[str, Any]) -> bool:
        secure = statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
        return statement.get("Effect") == "Deny" and str(secure).lower() == "false"

    return {**policy, "Statement": [s for s in policy.get("Statement", []) if not tls_only(s)]}


def _bucket_policy(endpoint: str, _: str, properties: Mapping[str, Any], __: str) -> None:
    policy = without_tls_only(properties["PolicyDocument"])
    if policy["Statement"]:
        client("s3", endpoint).put_bucket_policy(Bucket=properties["Bucket"], Policy=json.dumps(policy))


def _queue_policy(endpoint: str, _: str, properties: Mapping[str, Any], __: str) -> None:
    sqs = client("sqs", endpoint)
    for queue_url in properties["Queues"]:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])})


def _alarm(endpoint: str, _: str, properties: Mapping[str, Any], __: str) -> None:
    numbers = {"Period": int, "EvaluationPeriods": int, "DatapointsToAlarm": int, "Threshold": float}
    request = {k: numbers[k](v) if k in numbers else v for k, v in properties.items()}
    client("cloudwatch", endpoint).put_metric_alarm(**request)


def _role_policies(endpoint: str, role_name: str, properties: Mapping[str, Any], __: str) -> None:
    # moto's CloudFormation keeps inline policies as Python dicts, which IAM then
    # answers as their repr (not JSON); put them again as the documents they are.
    iam = client("iam", endpoint)
    for policy in properties.get("Policies", []):
        iam.put_role_policy(RoleName=role_name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"]))


_SKIPPED_BY_MOTO = {
    "AWS::IAM::Role": _role_policies,
    "AWS::S3::Bucket": _bucket,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::SQS::QueuePolicy": _queue_policy,
    "AWS::CloudWatch::Alarm": _alarm,
}


def apply_what_cloudformation_skipped(
    endpoint: str, resources: Mapping[str, Mapping[str, Any]], physical_ids: Mapping[str, str]
) -> list[str]:
    """Apply, from the resolved template, what moto's CloudFormation leaves out; return the logical ids touched."""
    applied = []
    for logical_id, resource in resources.items():
        if apply := _SKIPPED_BY_MOTO.get(resource["Type"]):
            try:
                apply(endpoint, physical_ids.get(logical_id, ""), resource.get("Properties", {}), logical_id)
            except ClientError as e:
                raise DeployError(f"Applying {logical_id} ({resource['Type']}) to the local stack failed: {error_message(e)}") from None
            applied.append(logical_id)
    return applied
