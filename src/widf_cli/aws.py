"""`aws`: the function and its AWS resources, on the local stack or in the cloud."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from widf_cli.common import (
    JsonOption,
    Target,
    command_group,
    console,
    ctx,
    friendly_errors,
    names,
    print_json,
    print_settings,
    print_table,
    stack_paths,
)
from widf_loader.config import ConfigError
from widf_ops.arns import PARTITION
from widf_ops.doctor import NO_CREDENTIALS, NO_REGION

aws_app = command_group("The function and its AWS resources.\n\nExample: widf-loader aws deploy && widf-loader aws test")

# One set of commands for both targets. Locally they act on the local stack's
# moto; `--target cloud` acts on the account the standard AWS chain names
# (AWS_PROFILE, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL ...), where the SAM CLI deploys
# infra/template.yaml. Either way the function's resources are the stack's outputs.

REPOSITORY = Path(__file__).resolve().parents[2]
TEMPLATE = REPOSITORY / "infra" / "template.yaml"
PACKAGER = REPOSITORY / "infra" / "package.py"
DEFAULT_FUNCTION_NAME = "widf-loader"
# The template's own constraints, checked before a value reaches a command line.
FUNCTION_NAME_PATTERN = r"[a-z][a-z0-9-]{0,38}[a-z0-9]"
STACK_NAME_PATTERN = r"[A-Za-z][A-Za-z0-9-]{0,127}"
ACCOUNT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}"
TOPIC_ARN_PATTERN = rf"arn:{PARTITION}:sns:[a-z0-9-]+:\d{{12}}:[A-Za-z0-9_-]{{1,256}}"
ARCHITECTURES = ("x86_64", "arm64")


def checked(value: str, pattern: str, what: str) -> str:
    import re

    if not re.fullmatch(pattern, value):
        raise ConfigError(f"{what} '{value}' is not valid (it must match {pattern}).")
    return value


class AwsSide:
    """Where the `aws` commands act, and the stack that holds the function."""

    def __init__(self, stack_name: str, endpoint: str | None = None):
        self.stack_name = stack_name
        self.endpoint = endpoint  # the local stack's moto; None: the standard AWS chain

    @property
    def local(self) -> bool:
        return self.endpoint is not None

    def client(self, service: str) -> Any:
        if self.endpoint:
            from widf_ops.stack_outputs import client

            return client(service, self.endpoint)
        import boto3

        return boto3.session.Session().client(service)  # the chain as the environment says now


def aws_side() -> AwsSide:
    if ctx.target is Target.local:
        from widf_local.deploy import STACK_NAME
        from widf_local.stack import read_stack

        return AwsSide(STACK_NAME, read_stack(stack_paths()).aws_endpoint)
    function = cloud_function_name()
    return AwsSide(checked(os.environ.get("WIDF_STACK_NAME") or function, STACK_NAME_PATTERN, "WIDF_STACK_NAME"))


def cloud_function_name() -> str:
    return checked(os.environ.get("WIDF_FUNCTION_NAME") or DEFAULT_FUNCTION_NAME, FUNCTION_NAME_PATTERN, "WIDF_FUNCTION_NAME")


def aws_errors(command: Callable) -> Callable:
    """AWS errors end the command with one line too (inside `friendly_errors`)."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            NoCredentialsError,
            NoRegionError,
        )

        try:
            return command(*args, **kwargs)
        except NoRegionError:
            raise ConfigError(NO_REGION) from None
        except NoCredentialsError:
            raise ConfigError(NO_CREDENTIALS) from None
        except ClientError as e:
            error = e.response.get("Error", {})
            raise ConfigError(f"AWS {error.get('Code', 'error')}: {error.get('Message', e)}") from None
        except BotoCoreError as e:
            raise ConfigError(f"AWS: {e}") from None

    return run


def stack(side: AwsSide) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return side.client("cloudformation").describe_stacks(StackName=side.stack_name)["Stacks"][0]
    except ClientError as e:
        if "does not exist" in str(e):
            return None
        raise


def stack_outputs(side: AwsSide) -> dict[str, str]:
    if (found := stack(side)) is None:
        raise ConfigError(f"There is no stack {side.stack_name}: run `widf-loader aws deploy` first.")
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


def deployment(side: AwsSide) -> Any:
    """The function's resources (`widf_ops.stack_outputs.Deployment`): the stack's outputs."""
    if side.local:
        from widf_cli.local_stack import deployed

        if not (local := deployed(stack_paths())):
            raise ConfigError("No function is deployed: run `widf-loader aws deploy` first.")
        return local.resources
    from widf_ops.stack_outputs import Deployment

    return Deployment.from_stack_outputs(stack_outputs(side))


def confirm(action: str, yes: bool) -> None:
    """Cloud deletions cannot be undone: they need --yes, or a yes at a terminal."""
    if yes or ctx.target is Target.local:
        return
    if not sys.stdin.isatty():
        raise ConfigError(f"{action} cannot be undone: pass --yes to confirm.")
    if not typer.confirm(f"{action}?"):
        raise typer.Exit(1)


@aws_app.command("check")
@friendly_errors
@aws_errors
def aws_check(as_json: JsonOption = False) -> None:
    """Show whom the AWS side acts as (STS caller identity), where, and the stack's state.

    Example: widf-loader --target cloud aws check --json
    """
    import shutil

    side = aws_side()
    sts = side.client("sts")
    identity = sts.get_caller_identity()
    found = stack(side)
    rows = [
        ("target", ctx.target.value),
        ("region", sts.meta.region_name),
        ("account", identity["Account"]),
        ("caller", identity["Arn"]),
        ("stack", f"{side.stack_name}: {found['StackStatus'] if found else 'not deployed'}"),
    ]
    if not side.local:
        rows.append(("SAM CLI", shutil.which("sam") or "not installed (`aws deploy` needs it)"))
    print_settings(rows, "aws", as_json)


def cloud_parameters(arch: str) -> dict[str, str]:
    """The template's parameters from the configuration; what is left out keeps its default."""
    snowflake = names()
    if not (account := os.environ.get("SNOWFLAKE_ACCOUNT")):
        raise ConfigError("Set SNOWFLAKE_ACCOUNT to your Snowflake account identifier (orgname-accountname).")
    parameters = {
        "FunctionName": cloud_function_name(),
        "Architecture": checked(arch, "|".join(ARCHITECTURES), "--arch"),
        "SnowflakeAccount": checked(account, ACCOUNT_PATTERN, "SNOWFLAKE_ACCOUNT"),
        "SnowflakeDatabase": snowflake.database,
        "SnowflakeSchema": snowflake.schema,
        "SnowflakeWarehouse": snowflake.warehouse,
        "SnowflakeRole": snowflake.role,
        "SnowflakeServiceUser": snowflake.user,
    }
    if topic := os.environ.get("WIDF_ALARM_TOPIC_ARN"):
        parameters["AlarmTopicArn"] = checked(topic, TOPIC_ARN_PATTERN, "WIDF_ALARM_TOPIC_ARN")
    return parameters


def sam_deploy_command(stack_name: str, region: str, parameters: dict[str, str]) -> list[str]:
    # Every value was checked against a pattern without spaces or quotes, so one
    # space-separated Key=Value string is exact; no shell is involved.
    return [
        "sam",
        "deploy",
        "--template-file",
        str(TEMPLATE),
        "--stack-name",
        stack_name,
        "--region",
        region,
        "--resolve-s3",  # SAM's managed bucket receives dist/widf-loader-lambda.zip
        "--capabilities",
        "CAPABILITY_NAMED_IAM",  # the role has a fixed name: Snowflake trusts its ARN
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
        "--parameter-overrides",
        " ".join(f"{k}={v}" for k, v in parameters.items()),
    ]


def deploy_to_cloud(side: AwsSide, arch: str, dry_run: bool) -> None:
    import shlex
    import shutil
    import subprocess

    import boto3

    session = boto3.session.Session()
    region = session.region_name
    parameters = cloud_parameters(arch)
    package = [sys.executable, str(PACKAGER), "--arch", arch]
    deploy = sam_deploy_command(side.stack_name, region or "<region>", parameters)
    console.print(
        f"[bold]aws deploy[/] (cloud): stack [bold]{side.stack_name}[/] in {region or 'no region yet'}, from {TEMPLATE.relative_to(REPOSITORY)}"
    )
    console.print(f"  1. package  {shlex.join(package)}", highlight=False, markup=False)
    console.print(f"  2. deploy   {shlex.join(deploy)}", highlight=False, markup=False)
    console.print(
        "  then: `widf-loader snow lambda-wid --role-arn $(widf-loader --target cloud aws role-arn)` lets Snowflake trust the role."
    )
    if dry_run:
        return
    if not TEMPLATE.exists() or not PACKAGER.exists():
        raise ConfigError(f"{TEMPLATE.parent} is missing: deploy from the widf-loader repository.")
    if not region:
        raise ConfigError(NO_REGION)
    if session.get_credentials() is None:
        raise ConfigError(NO_CREDENTIALS)
    identity = side.client("sts").get_caller_identity()
    if not shutil.which("sam"):
        raise ConfigError(
            "The SAM CLI is not installed: install it (https://docs.aws.amazon.com/serverless-application-model/latest/"
            "developerguide/install-sam-cli.html), or deploy with `aws cloudformation package/deploy` as the README shows."
        )
    console.print(f"  as {identity['Arn']} (account {identity['Account']})")
    for step, command in (("package", package), ("sam deploy", deploy)):
        if (code := subprocess.run(command, cwd=REPOSITORY).returncode) != 0:
            raise ConfigError(f"{step} failed (exit {code}); `widf-loader --target cloud aws debug` shows the stack's failed events.")
    outputs = stack_outputs(side)
    print_table(["output", "value"], [(k, v) for k, v in sorted(outputs.items())])


@aws_app.command("deploy")
@friendly_errors
@aws_errors
def aws_deploy(
    arch: Annotated[str, typer.Option(help="cloud: Lambda architecture, x86_64 or arm64 (the package is built for it)")] = "x86_64",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="cloud: print what would run, and run nothing")] = False,
    parameter: Annotated[
        list[str] | None, typer.Option(help="local: a template parameter, KEY=VALUE (repeatable), e.g. MaximumConcurrency=2")
    ] = None,
) -> None:
    """Deploy infra/template.yaml: the bucket, queues, role, log group, alarm and the function.

    Example: widf-loader aws deploy --parameter MaximumConcurrency=2
    """
    if ctx.target is Target.cloud:
        if parameter:
            raise ConfigError("--parameter is for the local stack; for the cloud, set the values in your samconfig or environment.")
        deploy_to_cloud(aws_side(), arch, dry_run)
        return
    if dry_run:
        raise ConfigError("--dry-run is for --target cloud; the local deploy only touches the local stack.")
    overrides = dict(checked(p, r"^[A-Za-z][A-Za-z0-9]*=[\w.:/-]*$", "--parameter (KEY=VALUE)").split("=", 1) for p in parameter or [])
    from widf_cli.local_stack import deploy_to_local_stack
    from widf_local.stack import read_stack

    side = aws_side()
    result = deploy_to_local_stack(read_stack(stack_paths()), stack_paths(), names(), overrides)
    outputs = stack_outputs(side)
    print_table(
        ["output", "value"],
        [
            ("stack", side.stack_name),
            ("function", result.function.name),
            ("role arn", result.resources.role_arn),
            ("bucket", result.resources.bucket),
            ("queue", result.resources.queue_url),
            ("dead-letter queue", result.resources.dlq_url),
            ("trust it in Snowflake", outputs.get("SnowflakeServiceUserStatement", "")),
        ],
    )


@aws_app.command("role-arn")
@friendly_errors
@aws_errors
def aws_role_arn() -> None:
    """Print the function's IAM role ARN (what the Snowflake service user must trust).

    Example: widf-loader snow lambda-wid --role-arn "$(widf-loader aws role-arn)"
    """
    print(deployment(aws_side()).role_arn)


@aws_app.command("test")
@friendly_errors
@aws_errors
def aws_test(count: Annotated[int, typer.Option(min=1, max=10000, help="events in the file")] = 20) -> None:
    """Upload a sample JSON file under incoming/; the function loads it.

    Example: widf-loader aws test --count 100
    """
    import orjson

    from widf_local import samples

    side = aws_side()
    bucket = deployment(side).bucket
    key = f"incoming/widf-loader-test-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.json"
    events = samples.sample_events(count, seed=int(time.time()))
    side.client("s3").put_object(Bucket=bucket, Key=key, Body=orjson.dumps(events), ContentType="application/json")
    console.print(f"[green]✓[/] Uploaded s3://{bucket}/{key} ({count} events); `widf-loader aws logs --follow` shows the load.")


def duration_seconds(text: str) -> int:
    """`30m`, `2h`, `1d`, `90s`; a bare number is minutes (widf_ops.durations)."""
    from widf_ops.durations import parse_duration

    if (back := parse_duration(text)) is None:
        raise ConfigError(f"--since '{text}' is not a duration such as 30m, 2h or 1d.")
    return int(back.total_seconds())


@aws_app.command("logs")
@friendly_errors
@aws_errors
def aws_logs(
    since: Annotated[str, typer.Option(help="how far back: 30m, 2h, 1d (a bare number is minutes)")] = "30m",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines until Ctrl-C")] = False,
    raw: Annotated[bool, typer.Option("--raw", help="each line exactly as the function wrote it (JSON), e.g. for jq")] = False,
) -> None:
    """Print the function's log lines: level, message, file id and load id; metrics as name=value.

    Example: widf-loader aws logs --since 10m --follow
    """
    from widf_cli.log_lines import readable

    side = aws_side()
    group = deployment(side).log_group
    logs = side.client("logs")
    start = int((time.time() - duration_seconds(since)) * 1000)
    printed_at_start: set[str] = set()  # events at `start` already printed (the next poll starts there)
    while True:
        kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start}
        while True:
            page = logs.filter_log_events(**kwargs)
            for event in page["events"]:
                if event.get("eventId") in printed_at_start:
                    continue
                if event["timestamp"] > start:
                    start, printed_at_start = event["timestamp"], set()
                printed_at_start.add(event.get("eventId", ""))
                if raw:
                    print(event["message"], flush=True)  # not through rich: it would wrap and colour the JSON
                    continue
                stamp = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
                console.print(Text.assemble((f"{stamp:%H:%M:%S} ", "dim"), readable(event["message"])), highlight=False)
            if not (token := page.get("nextToken")):
                break
            kwargs["nextToken"] = token
        if not follow:
            return
        time.sleep(2)  # CloudWatch Logs cannot push; poll as `aws logs tail --follow` does


@aws_app.command("debug")
@friendly_errors
@aws_errors
def aws_debug(limit: Annotated[int, typer.Option(min=1, max=1000, help="failed events to show")] = 20, as_json: JsonOption = False) -> None:
    """Show the stack's status, its failed events, and the depth of the queue and the dead-letter queue.

    Example: widf-loader aws debug --limit 5
    """
    side = aws_side()
    if (found := stack(side)) is None:
        raise ConfigError(f"There is no stack {side.stack_name}: run `widf-loader aws deploy` first.")
    failed = failed_stack_events(side, limit)
    depths = queue_depths(side, {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])})
    if as_json:
        print_json(
            {
                "stack": side.stack_name,
                "status": found["StackStatus"],
                "reason": found.get("StackStatusReason"),
                "failed_events": [dict(zip(FAILED_EVENT_COLUMNS, row, strict=True)) for row in failed],
                "queues": [dict(zip(QUEUE_COLUMNS, row, strict=True)) for row in depths],
            }
        )
        return
    console.print(f"Stack {side.stack_name}: [bold]{found['StackStatus']}[/] {found.get('StackStatusReason') or ''}")
    if failed:
        print_table(FAILED_EVENT_COLUMNS, failed, title="Failed stack events (newest first)")
    else:
        console.print("No failed stack events.")
    if depths:
        print_table(QUEUE_COLUMNS, depths)


FAILED_EVENT_COLUMNS = ["time", "resource", "status", "reason"]
QUEUE_COLUMNS = ["queue", "waiting", "in flight"]


def failed_stack_events(side: AwsSide, limit: int) -> list[tuple]:
    """The stack's failed events, newest first."""
    cfn = side.client("cloudformation")
    failed = [
        e
        for page in cfn.get_paginator("describe_stack_events").paginate(StackName=side.stack_name)
        for e in page["StackEvents"]
        if "FAILED" in e["ResourceStatus"]
    ][:limit]
    return [
        (f"{e['Timestamp']:%Y-%m-%d %H:%M:%S}", e.get("LogicalResourceId", ""), e["ResourceStatus"], e.get("ResourceStatusReason", ""))
        for e in failed
    ]


def queue_depths(side: AwsSide, outputs: dict[str, str]) -> list[tuple[str, int, int]]:
    """(queue, waiting, in flight) for the events queue and the dead-letter queue."""
    from widf_ops.queues import queue_depth

    sqs = side.client("sqs")
    depths = []
    for label, output in (("queue", "EventsQueueUrl"), ("dead-letter queue", "DeadLetterQueueUrl")):
        if url := outputs.get(output):
            depth = queue_depth(sqs, url)
            depths.append((label, depth.waiting, depth.in_flight))
    return depths


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker; return how many."""
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        for start in range(0, len(versions), 1000):  # delete_objects takes at most 1000
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": versions[start : start + 1000], "Quiet": True})
            if errors := answer.get("Errors"):
                raise ConfigError(f"s3://{bucket}/{errors[0]['Key']} was not deleted: {errors[0].get('Message', errors[0].get('Code'))}")
            deleted += len(versions[start : start + 1000])
    return deleted


def bucket_holds_objects(s3: Any, bucket: str) -> bool:
    page = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
    return bool(page.get("Versions") or page.get("DeleteMarkers"))


def delete_stack(side: AwsSide) -> None:
    from botocore.exceptions import WaiterError

    bucket = stack_outputs(side).get("LandingBucketName")
    s3 = side.client("s3")
    if bucket and bucket_holds_objects(s3, bucket):
        raise ConfigError(
            f"s3://{bucket} still holds objects and CloudFormation deletes only empty buckets: run `widf-loader aws empty-bucket` first."
        )
    cfn = side.client("cloudformation")
    cfn.delete_stack(StackName=side.stack_name)
    try:
        cfn.get_waiter("stack_delete_complete").wait(
            StackName=side.stack_name, WaiterConfig={"Delay": 1 if side.local else 10, "MaxAttempts": 180}
        )
    except WaiterError:
        raise ConfigError(f"Stack {side.stack_name} was not deleted: `widf-loader aws debug` shows why.") from None


YesOption = Annotated[bool, typer.Option("--yes", "-y", help="cloud: confirm the deletion")]


@aws_app.command("empty-bucket")
@friendly_errors
@aws_errors
def aws_empty_bucket(yes: YesOption = False) -> None:
    """Delete every object version and delete marker in the landing bucket.

    Example: widf-loader --target cloud aws empty-bucket --yes
    """
    side = aws_side()
    if stack(side) is None:
        console.print(f"There is no stack {side.stack_name}: nothing to empty.")
        return
    bucket = stack_outputs(side)["LandingBucketName"]
    confirm(f"Delete every object version in s3://{bucket}", yes)
    console.print(f"[green]✓[/] s3://{bucket} emptied ({empty_bucket(side.client('s3'), bucket)} object versions and delete markers).")


@aws_app.command("clean-stack")
@friendly_errors
@aws_errors
def aws_clean_stack(yes: YesOption = False) -> None:
    """Delete the stack (its bucket must be empty: see `empty-bucket`); locally the function stops first.

    Example: widf-loader aws clean-stack
    """
    side = aws_side()
    if stack(side) is None:
        console.print(f"There is no stack {side.stack_name}: nothing to delete.")
        return
    confirm(f"Delete stack {side.stack_name}", yes)
    if side.local:
        from widf_local.deploy import undeploy

        undeploy(stack_paths())
    delete_stack(side)
    console.print(f"[green]✓[/] Stack {side.stack_name} deleted.")


@aws_app.command("clean")
@friendly_errors
@aws_errors
def aws_clean(yes: YesOption = False) -> None:
    """Remove everything `aws deploy` created: the function stops, the bucket is emptied, the stack is deleted.

    Example: widf-loader --target cloud aws clean --yes
    """
    side = aws_side()
    if side.local:
        from widf_local.deploy import undeploy

        undeploy(stack_paths())
    if stack(side) is None:
        console.print("Nothing was deployed.")
        return
    bucket = stack_outputs(side)["LandingBucketName"]
    confirm(f"Delete every object version in s3://{bucket} and stack {side.stack_name}", yes)
    emptied = empty_bucket(side.client("s3"), bucket)
    delete_stack(side)
    console.print(f"[green]✓[/] Stack {side.stack_name} deleted ({emptied} object versions removed from s3://{bucket}).")
