"""`widf-loader aws ...`: the local deploy builds the stack from infra/template.yaml
in moto's CloudFormation, and the cloud commands - pointed at moto through the
standard AWS chain (AWS_ENDPOINT_URL) - read and clean that same stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import snowflake.connector
from botocore.exceptions import ClientError

from helpers import become_role
from widf_cli.local_stack import admin_connection, deployed
from widf_local import aws
from widf_local.deploy import STACK_NAME
from widf_local.pytest_plugin import Stack, started_stack
from widf_ops.stack_outputs import wait_for

# Every test here runs against a local stack: the module's (`stack`) or one of its own (`disposable`).
pytestmark = pytest.mark.stack
ROLE_ARN = f"arn:aws:iam::{aws.ACCOUNT_ID}:role/widf-loader-function-role"


def widf(state_dir: Path, *args: str, **environment: str) -> subprocess.CompletedProcess:
    """The command as a user runs it, with no AWS, Snowflake or widf setting but these."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SNOWFLAKE_", "WIDF_"))}
    return subprocess.run(
        [sys.executable, "-m", "widf_cli", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        env=inherited
        | {"COLUMNS": "250", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}
        | environment,
    )


def cloud(stack: Stack, *args: str, **environment: str) -> subprocess.CompletedProcess:
    """`--target cloud`, with the standard chain pointed at the local stack's moto."""
    chain = {
        "AWS_ENDPOINT_URL": stack.info.aws_endpoint,
        "AWS_ACCESS_KEY_ID": aws.ADMIN_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": aws.ADMIN_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": aws.REGION,
    }
    return widf(stack.state_dir, "--target", "cloud", *args, **(chain | environment))


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    return " ".join(result.stderr.split())


@pytest.fixture(scope="module")
def deployment(stack):
    stack.cli("aws", "deploy")
    return deployed(stack.paths)


@pytest.fixture(scope="module")
def disposable(tmp_path_factory) -> Iterator[Stack]:
    """A stack of its own for the tests that delete what they deploy."""
    yield from started_stack(tmp_path_factory.mktemp("disposable"))


def client(stack: Stack, service: str):
    return aws.client(service, stack.info.aws_endpoint)


# -- the local deploy ---------------------------------------------------------------


def test_deploy_builds_the_templates_stack_in_local_cloudformation(stack, deployment):
    cfn = client(stack, "cloudformation")
    assert cfn.describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    created = {
        r["LogicalResourceId"] for r in cfn.describe_stack_resources(StackName=STACK_NAME)["StackResources"] if "LogicalResourceId" in r
    }
    assert {"LandingBucket", "EventsQueue", "DeadLetterQueue", "FunctionRole", "FunctionLogGroup"} <= created
    # The runner is the Lambda service: moto must neither hold the function nor poll the queue.
    assert client(stack, "lambda").list_event_source_mappings()["EventSourceMappings"] == []
    assert client(stack, "lambda").list_functions()["Functions"] == []


def test_the_function_configuration_comes_from_the_template(stack, deployment):
    function = deployment.function
    assert (function.name, function.handler, function.role_arn) == ("widf-loader", "widf_loader.handler.lambda_handler", ROLE_ARN)
    assert (function.timeout_seconds, function.memory_mb, function.batch_size) == (30, 512, 10)
    info = stack.info
    assert function.environment == {
        "SNOWFLAKE_ACCOUNT": "local",
        "SNOWFLAKE_HOST": "localhost",
        "SNOWFLAKE_PORT": str(info.snowflake_port),
        "SNOWFLAKE_PROTOCOL": "http",
        "SNOWFLAKE_WORKLOAD_IDENTITY_HOST": info.aws_endpoint,
        "SNOWFLAKE_DATABASE": "WIDF_DEMO_DB",
        "SNOWFLAKE_SCHEMA": "PUBLIC",
        "SNOWFLAKE_WAREHOUSE": "COMPUTE_WH",
        "SNOWFLAKE_ROLE": "WIDF_DEMO_ROLE",
        "WIDF_FUNCTION_TIMEOUT_SECONDS": "30",
        "WIDF_STAGE_ABOVE_BYTES": "268435456",
        "WIDF_STAGE_PART_BYTES": str(8 * 1024 * 1024),  # the local stack's parts, smaller than Snowflake's sizing
        "SNOWFLAKE_DISABLE_PLATFORM_DETECTION": "true",
    }
    queue_arn = client(stack, "sqs").get_queue_attributes(QueueUrl=function.queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    assert queue_arn.endswith(":widf-loader-events")


def test_queues_role_and_logs_are_as_the_template_says(stack, deployment):
    sqs = client(stack, "sqs")
    queue = sqs.get_queue_attributes(QueueUrl=deployment.resources.queue_url, AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=deployment.resources.dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert int(queue["VisibilityTimeout"]) == 6 * deployment.function.timeout_seconds
    assert json.loads(queue["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}
    policy = json.loads(queue["Policy"])["Statement"]
    assert [(s["Principal"], s["Action"], s["Condition"]["ArnEquals"]["aws:SourceArn"]) for s in policy] == [
        ({"Service": "s3.amazonaws.com"}, "sqs:SendMessage", f"arn:aws:s3:::{deployment.resources.bucket}")
    ]
    iam = client(stack, "iam")
    role_name = ROLE_ARN.rsplit("/", 1)[1]
    (policy_name,) = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    statements = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]["Statement"]
    s3_grants = {
        (a, s["Resource"])
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        if a.startswith("s3:")
    }
    bucket = deployment.resources.bucket
    assert s3_grants == {
        ("s3:GetObject", f"arn:aws:s3:::{bucket}/incoming/*"),
        ("s3:GetObjectVersion", f"arn:aws:s3:::{bucket}/incoming/*"),
        ("s3:PutObject", f"arn:aws:s3:::{bucket}/quarantine/*"),
    }
    (group,) = client(stack, "logs").describe_log_groups(logGroupNamePrefix=deployment.resources.log_group)["logGroups"]
    assert group["retentionInDays"] == 14


def test_what_moto_skips_is_applied_from_the_template(stack, deployment):
    s3, bucket = client(stack, "s3"), deployment.resources.bucket
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    rules = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert {r["QueueArn"].rsplit(":", 1)[1] for r in rules} == {"widf-loader-events"}
    filters = sorted(tuple(sorted((f["Name"], f["Value"]) for f in r["Filter"]["Key"]["FilterRules"])) for r in rules)
    assert filters == sorted((("prefix", "incoming/"), ("suffix", s)) for s in (".json", ".json.gz", ".ndjson", ".ndjson.gz"))
    (alarm,) = client(stack, "cloudwatch").describe_alarms(AlarmNamePrefix="widf-loader")["MetricAlarms"]
    assert (alarm["MetricName"], alarm["Dimensions"], alarm["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": "widf-loader-dlq"}],
        0.0,
    )


def test_the_tls_only_bucket_policy_would_refuse_every_local_request(stack, deployment):
    """Why the local stack leaves the template's TLS-only statement out: moto enforces it, and the local endpoint is HTTP."""
    s3, bucket = client(stack, "s3"), "tls-only-probe"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            }
        ),
    )
    with pytest.raises(ClientError, match="Forbidden|AccessDenied"):
        s3.put_object(Bucket=bucket, Key="incoming/x.json", Body=b"[]")
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=deployment.resources.bucket)


def test_deploying_again_updates_in_place_and_keeps_the_files(stack, deployment):
    s3, bucket = client(stack, "s3"), deployment.resources.bucket
    s3.put_object(Bucket=bucket, Key="kept/across-deploys.txt", Body=b"still here")  # outside incoming/: nothing loads it
    stack.cli("aws", "deploy")
    assert s3.get_object(Bucket=bucket, Key="kept/across-deploys.txt")["Body"].read() == b"still here"
    assert deployed(stack.paths) == deployment
    assert client(stack, "cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"


def test_role_arn_is_what_snowflake_must_trust(stack, deployment):
    assert stack.cli("aws", "role-arn").stdout.strip() == ROLE_ARN


def test_the_stacks_statement_makes_snowflake_trust_the_function_role(stack, deployment, names, monkeypatch):
    stack.cli("snow", "setup")
    statement = aws.stack_state(stack.info.aws_endpoint, STACK_NAME).outputs["SnowflakeServiceUserStatement"]
    with admin_connection(stack.info) as connection:
        connection.cursor().execute(f"DROP USER IF EXISTS {names.user}")
        connection.cursor().execute(statement)
        connection.cursor().execute(f"GRANT ROLE {names.role} TO USER {names.user}")
    # This process becomes the function's session, as the runner makes it.
    become_role(monkeypatch, stack, deployment.function.role_arn, deployment.function.name)
    environment = deployment.function.environment
    with snowflake.connector.connect(
        account=environment["SNOWFLAKE_ACCOUNT"],
        host=environment["SNOWFLAKE_HOST"],
        port=int(environment["SNOWFLAKE_PORT"]),
        protocol=environment["SNOWFLAKE_PROTOCOL"],
        workload_identity_host=environment["SNOWFLAKE_WORKLOAD_IDENTITY_HOST"],
        authenticator="WORKLOAD_IDENTITY",
        workload_identity_provider="AWS",
        login_timeout=30,
    ) as connection:
        assert connection.cursor().execute("SELECT CURRENT_USER()").fetchone() == (names.user,)


def logged(stack: Stack, group: str, text: str) -> bool | None:
    events = client(stack, "logs").filter_log_events(logGroupName=group)["events"]
    return True if any(text in e["message"] for e in events) else None


def test_aws_test_uploads_a_sample_that_the_function_picks_up(stack, deployment):
    uploaded = stack.cli("aws", "test", "--count", "3").stdout
    uri = re.search(r"s3://\S+\.json", uploaded).group(0)
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    assert key.startswith("incoming/") and client(stack, "s3").head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    assert wait_for(lambda: logged(stack, deployment.resources.log_group, uri), seconds=60), f"the function never logged {uri}"
    assert key.rsplit("/", 1)[1] in stack.cli("aws", "logs", "--since", "10m").stdout


def test_debug_shows_the_stack_and_its_queues(stack, deployment):
    result = stack.cli("aws", "debug")
    assert f"Stack {STACK_NAME}:" in result.stdout and "No failed stack events." in result.stdout
    assert re.search(r"dead-letter queue\s*│\s*\d+", result.stdout)


def test_logs_refuse_a_duration_they_cannot_read(stack, deployment):
    assert "--since '5x' is not a duration" in one_line_error(stack.cli("aws", "logs", "--since", "5x", check=False))


# -- the cloud commands, through the standard AWS chain ---------------------------------


def test_cloud_commands_find_the_stack_through_the_standard_chain(stack, deployment):
    check = cloud(stack, "aws", "check")
    assert check.returncode == 0, check.stderr
    assert aws.ACCOUNT_ID in check.stdout
    assert re.search(rf"{STACK_NAME}: (CREATE|UPDATE)_COMPLETE", check.stdout)
    assert cloud(stack, "aws", "role-arn").stdout.strip() == ROLE_ARN


@pytest.mark.parametrize("command", ["empty-bucket", "clean"])
def test_cloud_deletions_need_confirmation(stack, deployment, command):
    assert "pass --yes to confirm" in one_line_error(cloud(stack, "aws", command))
    assert client(stack, "s3").head_bucket(Bucket=deployment.resources.bucket)


def test_cloud_deploy_prints_its_plan_with_the_configured_parameters(stack):
    result = cloud(
        stack,
        "aws",
        "deploy",
        "--dry-run",
        SNOWFLAKE_ACCOUNT="myorg-myaccount",
        SNOWFLAKE_DATABASE="analytics",
        WIDF_FUNCTION_NAME="json-loader",
    )
    assert result.returncode == 0, result.stderr
    plan = " ".join(result.stdout.split())
    assert "infra/package.py --arch x86_64" in plan
    assert "sam deploy --template-file" in plan and "--stack-name json-loader --region us-east-1" in plan
    assert "--capabilities CAPABILITY_NAMED_IAM" in plan
    assert "FunctionName=json-loader Architecture=x86_64 SnowflakeAccount=myorg-myaccount SnowflakeDatabase=ANALYTICS" in plan


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SNOWFLAKE_ACCOUNT", "acct; rm -rf ~"), ("WIDF_FUNCTION_NAME", "Loader Fn")],
)
def test_cloud_deploy_refuses_values_that_do_not_fit_the_template(stack, variable, value):
    result = cloud(stack, "aws", "deploy", "--dry-run", **({"SNOWFLAKE_ACCOUNT": "myorg-myaccount"} | {variable: value}))
    assert variable in one_line_error(result)


def test_cloud_deploy_without_a_region_says_so_after_its_plan(stack):
    result = widf(
        stack.state_dir,
        "--target",
        "cloud",
        "aws",
        "deploy",
        SNOWFLAKE_ACCOUNT="myorg-myaccount",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # pragma: allowlist secret (moto's documented dummy)
    )
    assert "No AWS region" in one_line_error(result)
    assert "sam deploy" in result.stdout


def test_cloud_deploy_without_credentials_says_so(stack):
    result = widf(
        stack.state_dir, "--target", "cloud", "aws", "deploy", SNOWFLAKE_ACCOUNT="myorg-myaccount", AWS_DEFAULT_REGION="eu-west-1"
    )
    assert "No AWS credentials" in one_line_error(result)


def test_cloud_deploy_without_the_sam_cli_says_so(stack, tmp_path):
    result = cloud(stack, "aws", "deploy", SNOWFLAKE_ACCOUNT="myorg-myaccount", PATH=str(tmp_path))  # nothing on PATH
    assert "The SAM CLI is not installed" in one_line_error(result)


def test_without_credentials_cloud_commands_fail_in_one_line(stack):
    result = widf(stack.state_dir, "--target", "cloud", "aws", "check", AWS_DEFAULT_REGION="eu-west-1")
    assert "No AWS credentials" in one_line_error(result)


# -- cleaning up (a stack of their own) -------------------------------------------------


def put_versions(stack: Stack, bucket: str) -> None:
    s3 = client(stack, "s3")
    for body in (b"first", b"second"):
        s3.put_object(Bucket=bucket, Key="kept/twice.txt", Body=body)
    s3.put_object(Bucket=bucket, Key="kept/deleted.txt", Body=b"gone")
    s3.delete_object(Bucket=bucket, Key="kept/deleted.txt")  # a delete marker


def test_cloud_clean_stack_needs_an_empty_bucket_and_empty_bucket_removes_every_version(disposable):
    disposable.cli("aws", "deploy")
    bucket = deployed(disposable.paths).resources.bucket
    put_versions(disposable, bucket)
    assert "run `widf-loader aws empty-bucket` first" in one_line_error(cloud(disposable, "aws", "clean-stack", "--yes"))
    emptied = cloud(disposable, "aws", "empty-bucket", "--yes")
    assert emptied.returncode == 0, emptied.stderr
    assert "(4 object versions and delete markers)" in " ".join(emptied.stdout.split())
    listing = client(disposable, "s3").list_object_versions(Bucket=bucket)
    assert not listing.get("Versions") and not listing.get("DeleteMarkers")
    deleted = cloud(disposable, "aws", "clean-stack", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    with pytest.raises(ClientError, match="does not exist"):
        client(disposable, "cloudformation").describe_stacks(StackName=STACK_NAME)


def test_local_clean_stops_the_function_and_removes_the_stack(disposable):
    disposable.cli("aws", "deploy")
    bucket = deployed(disposable.paths).resources.bucket
    put_versions(disposable, bucket)
    disposable.cli("aws", "clean")
    assert deployed(disposable.paths) is None  # the runner stops polling
    with pytest.raises(ClientError, match="does not exist"):
        client(disposable, "cloudformation").describe_stacks(StackName=STACK_NAME)
    assert bucket not in {b["Name"] for b in client(disposable, "s3").list_buckets()["Buckets"]}
    assert "Nothing was deployed." in disposable.cli("aws", "clean").stdout
