"""infra/template.yaml: it lints clean, SAM transforms it, and the transformed
template keeps the promises the README makes (least privilege, a dead-letter
queue, visibility six times the timeout, partial batch failures, no secret).

Each promise is checked by a function that lists what breaks it; the
`_would_notice_` tests feed those functions a deliberately broken template, so
none of them can pass by looking at nothing.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from widf_loader.config import LoaderSettings
from widf_local import deploy
from widf_ops.stack_outputs import Deployment

ACCOUNT = "123456789012"
BUCKET = f"widf-loader-landing-{ACCOUNT}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/widf-loader-function-role"
SUFFIXES = {".json", ".json.gz", ".ndjson", ".ndjson.gz"}
# Informational checks too; the experimental ones (e.g. I4010, which asks for
# architecture notes in Metadata) are not correctness checks and stay off.
LINT = ManualArgs(include_checks=["I"], regions=["us-east-1", "eu-west-1"])


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return deploy.load_template()


@pytest.fixture(scope="module")
def transformed(source) -> dict[str, Any]:
    return deploy.sam_transform(source, region="us-east-1")


def resolver(template: dict[str, Any], **parameters: str) -> deploy.Resolver:
    """Resolves the template as CloudFormation would for these parameters in account 123456789012;
    resources resolve to placeholders naming them (`<EventsQueue.Arn>`), the role to its fixed ARN."""
    values = deploy.parameter_values(template, {"SnowflakeAccount": "myorg-myaccount", **parameters})
    pseudo = {"AWS::Region": "us-east-1", "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::StackName": "widf-loader"}
    names = {"FunctionRole.Arn": ROLE_ARN}
    return deploy.Resolver(
        template,
        values | pseudo,
        resource_ref=lambda logical_id: f"<{logical_id}>",
        resource_attribute=lambda logical_id, attribute: names.get(f"{logical_id}.{attribute}", f"<{logical_id}.{attribute}>"),
    )


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def one(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    found = resources_of(template, kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.items()))


def listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# -- the checks ------------------------------------------------------------------


def allowed_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    statements = []
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [properties["PolicyDocument"]]
        else:
            continue
        statements += [s for d in documents for s in listed(d["Statement"]) if s["Effect"] == "Allow"]
    return statements


def privilege_violations(template: dict[str, Any]) -> list[str]:
    """Every way an IAM policy in the (resolved) template grants more than it names."""
    violations = []
    for resource_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role" and resource["Properties"].get("ManagedPolicyArns"):
            violations.append(f"{resource_id} attaches managed policies (they grant on every resource)")
    for statement in allowed_statements(template):
        sid = statement.get("Sid", "a statement")
        if "NotAction" in statement or "NotResource" in statement:
            violations.append(f"{sid} uses NotAction/NotResource")
        actions, targets = listed(statement.get("Action", [])), listed(statement.get("Resource", []))
        violations += [f"{sid} allows {a}" for a in actions if a == "*" or a.endswith(":*") or "*" in a.split(":", 1)[-1]]
        violations += [f"{sid} allows {', '.join(actions)} on every resource" for t in targets if t == "*"]
        for action in (a for a in actions if a.startswith("s3:")):
            prefix = "quarantine/" if action == "s3:PutObject" else "incoming/"
            violations += [f"{sid} allows {action} on {t}" for t in targets if t != f"arn:aws:s3:::{BUCKET}/{prefix}*"]
    return violations


def visibility_violations(template: dict[str, Any]) -> list[str]:
    """Timeouts for which a message could reappear while a run still holds it."""
    violations = []
    function_id, _ = one(template, "AWS::Lambda::Function")
    queue_ids = list(resources_of(template, "AWS::SQS::Queue"))
    for timeout in template["Parameters"]["FunctionTimeout"]["AllowedValues"]:
        r = resolver(template, FunctionTimeout=str(timeout))
        function_timeout = int(r.resolve(template["Resources"][function_id]["Properties"]["Timeout"]))
        for queue_id in queue_ids:
            queue = r.resolve(template["Resources"][queue_id]["Properties"])
            if "RedrivePolicy" in queue and int(queue.get("VisibilityTimeout", 30)) < 6 * function_timeout:
                violations.append(f"{queue_id}: visibility {queue.get('VisibilityTimeout', 30)}s < 6 x {function_timeout}s")
    return violations


def dead_letter_violations(template: dict[str, Any]) -> list[str]:
    _, mapping = one(template, "AWS::Lambda::EventSourceMapping")
    source_id = mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
    redrive = template["Resources"][source_id]["Properties"].get("RedrivePolicy")
    if not redrive:
        return [f"{source_id} has no redrive policy"]
    target = redrive.get("deadLetterTargetArn", {})
    if not (isinstance(target, dict) and target.get("Fn::GetAtt", [None])[0] in resources_of(template, "AWS::SQS::Queue")):
        return [f"{source_id} redrives to {target}, not to a queue of this stack"]
    if target["Fn::GetAtt"][0] == source_id:
        return [f"{source_id} redrives to itself"]
    if int(resolver(template).resolve(redrive["maxReceiveCount"])) < 1:
        return ["maxReceiveCount < 1"]
    return []


def batch_failure_violations(template: dict[str, Any]) -> list[str]:
    mapping_id, mapping = one(template, "AWS::Lambda::EventSourceMapping")
    if "ReportBatchItemFailures" not in mapping["Properties"].get("FunctionResponseTypes", []):
        return [f"{mapping_id} ignores batchItemFailures: a failed file would be deleted with its batch"]
    return []


# -- lint and transform -------------------------------------------------------


def test_the_template_lints_clean():
    matches = lint(deploy.TEMPLATE_PATH.read_text(), config=LINT)
    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches] == []


def test_the_transformed_template_lints_clean_too(transformed):
    matches = lint(json.dumps(transformed), config=LINT)
    assert [f"{m.rule.id}: {m.message}" for m in matches] == []


def test_the_linter_would_notice_a_broken_template(source):
    broken = copy.deepcopy(source)
    broken["Resources"]["EventsQueue"]["Properties"]["VisibilityTimout"] = 180  # a typo'd property
    assert any(m.rule.id.startswith("E") for m in lint(json.dumps(broken), config=LINT))


def test_sam_transforms_the_template_into_plain_cloudformation(source, monkeypatch):
    # The transform needs a region; it is given one, whatever the environment says.
    for variable in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    transformed = deploy.sam_transform(source, region="eu-west-1")
    kinds = {r["Type"] for r in transformed["Resources"].values()}
    assert not {k for k in kinds if k.startswith("AWS::Serverless::")}
    assert {"AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping", "AWS::IAM::Role", "AWS::S3::Bucket"} <= kinds
    assert "Transform" not in transformed
    _, function = one(transformed, "AWS::Lambda::Function")
    assert function["Properties"]["Code"] == {"S3Bucket": "widf-loader-local-artifacts", "S3Key": "widf-loader-lambda.zip"}
    assert (function["Properties"]["Runtime"], function["Properties"]["Handler"]) == ("python3.11", "widf_loader.handler.lambda_handler")


def test_sam_refuses_a_broken_function(source):
    broken = copy.deepcopy(source)
    broken["Resources"]["Function"]["Properties"]["Events"]["LandedFiles"]["Type"] = "NoSuchEvent"
    with pytest.raises(deploy.DeployError, match="SAM transform refused"):
        deploy.sam_transform(broken, region="us-east-1")


# -- least privilege ---------------------------------------------------------------


def test_the_function_role_may_do_exactly_what_loading_needs(transformed):
    resolved = resolver(transformed).resolve(transformed)
    grants = {(action, target) for s in allowed_statements(resolved) for action in listed(s["Action"]) for target in listed(s["Resource"])}
    log_streams = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/widf-loader:*"
    assert grants == {
        ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/incoming/*"),
        ("s3:GetObjectVersion", f"arn:aws:s3:::{BUCKET}/incoming/*"),
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/quarantine/*"),
        ("sqs:ReceiveMessage", "<EventsQueue.Arn>"),
        ("sqs:DeleteMessage", "<EventsQueue.Arn>"),
        ("sqs:GetQueueAttributes", "<EventsQueue.Arn>"),
        ("logs:CreateLogStream", log_streams),
        ("logs:PutLogEvents", log_streams),
    }
    assert privilege_violations(resolved) == []


def test_the_function_runs_as_that_role_which_only_lambda_assumes(transformed):
    _, function = one(transformed, "AWS::Lambda::Function")
    role_id, role = one(transformed, "AWS::IAM::Role")
    assert function["Properties"]["Role"] == {"Fn::GetAtt": [role_id, "Arn"]}
    resolved = resolver(transformed).resolve(role["Properties"])
    assert resolved["RoleName"] == "widf-loader-function-role"  # Snowflake trusts this exact ARN
    assert resolved["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]


@pytest.mark.parametrize(
    "widen",
    [
        lambda s: s.update(Action="s3:*"),
        lambda s: s.update(Action="*"),
        lambda s: s.update(Resource="*"),
        lambda s: s.update(Resource=f"arn:aws:s3:::{BUCKET}/*"),
    ],
    ids=["s3:*", "any action", "any resource", "whole bucket"],
)
def test_the_privilege_check_would_notice_a_widened_policy(transformed, widen):
    widened = resolver(transformed).resolve(transformed)
    statement = next(s for s in allowed_statements(widened) if "s3:GetObject" in listed(s["Action"]))
    widen(statement)
    assert privilege_violations(widened)


def test_the_privilege_check_would_notice_sams_own_policies(transformed):
    widened = resolver(transformed).resolve(transformed)
    _, role = one(widened, "AWS::IAM::Role")
    role["Properties"]["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"]
    assert privilege_violations(widened)


# -- the queue, its dead letters and the event source ---------------------------------


def test_a_failing_file_ends_in_the_dead_letter_queue_after_max_receives(transformed):
    assert dead_letter_violations(transformed) == []
    _, mapping = one(transformed, "AWS::Lambda::EventSourceMapping")
    queue = transformed["Resources"][mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]]["Properties"]
    r = resolver(transformed)
    assert r.resolve(queue["RedrivePolicy"]) == {"deadLetterTargetArn": "<DeadLetterQueue.Arn>", "maxReceiveCount": "3"}
    assert resolver(transformed, MaxReceiveCount="5").resolve(queue["RedrivePolicy"])["maxReceiveCount"] == "5"
    dead_letters = transformed["Resources"]["DeadLetterQueue"]["Properties"]
    assert dead_letters["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]


def test_the_dead_letter_check_would_notice_a_missing_redrive(transformed):
    broken = copy.deepcopy(transformed)
    del broken["Resources"]["EventsQueue"]["Properties"]["RedrivePolicy"]
    assert dead_letter_violations(broken)
    broken = copy.deepcopy(transformed)
    broken["Resources"]["EventsQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] = {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    assert dead_letter_violations(broken)


def test_visibility_timeout_is_at_least_six_times_the_function_timeout(transformed):
    assert visibility_violations(transformed) == []
    queue = resolver(transformed, FunctionTimeout="900").resolve(transformed["Resources"]["EventsQueue"]["Properties"])
    assert int(queue["VisibilityTimeout"]) == 5400 <= 43200  # SQS's maximum


def test_the_visibility_check_would_notice_a_short_timeout(transformed):
    broken = copy.deepcopy(transformed)
    broken["Mappings"]["QueueVisibility"]["300"]["Seconds"] = 1500
    assert visibility_violations(broken) == ["EventsQueue: visibility 1500s < 6 x 300s"]


def test_the_event_source_reports_batch_item_failures_and_is_bounded(transformed):
    assert batch_failure_violations(transformed) == []
    _, mapping = one(transformed, "AWS::Lambda::EventSourceMapping")
    resolved = resolver(transformed).resolve(mapping["Properties"])
    assert resolved["EventSourceArn"] == "<EventsQueue.Arn>"
    assert (resolved["BatchSize"], resolved["MaximumBatchingWindowInSeconds"]) == ("10", "0")
    assert int(resolved["ScalingConfig"]["MaximumConcurrency"]) >= 2


def test_the_batch_failure_check_would_notice_their_absence(transformed):
    broken = copy.deepcopy(transformed)
    _, mapping = one(broken, "AWS::Lambda::EventSourceMapping")
    del mapping["Properties"]["FunctionResponseTypes"]
    assert batch_failure_violations(broken)


# -- the bucket and its notifications ---------------------------------------------


def test_the_landing_bucket_is_private_encrypted_versioned_and_tls_only(transformed):
    r = resolver(transformed)
    bucket = r.resolve(transformed["Resources"]["LandingBucket"]["Properties"])
    assert bucket["BucketName"] == BUCKET
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in (
        "AES256",
        "aws:kms",
    )
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    ((policy_id, policy),) = resources_of(transformed, "AWS::S3::BucketPolicy").items()
    document = r.resolve(policy["Properties"])
    assert document["Bucket"] == "<LandingBucket>"
    assert {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::<LandingBucket>", "arn:aws:s3:::<LandingBucket>/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    } in document["PolicyDocument"]["Statement"]


def test_json_files_under_incoming_notify_the_queue_one_rule_per_suffix(transformed):
    rules = transformed["Resources"]["LandingBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert {r["Event"] for r in rules} == {"s3:ObjectCreated:*"}
    assert all(r["Queue"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]} for r in rules)
    filters = [{f["Name"]: f["Value"] for f in r["Filter"]["S3Key"]["Rules"]} for r in rules]
    assert {f["prefix"] for f in filters} == {"incoming/"}
    assert sorted(f["suffix"] for f in filters) == sorted(SUFFIXES)


def test_only_this_bucket_in_this_account_may_send_to_the_queue(transformed):
    ((_, policy),) = resources_of(transformed, "AWS::SQS::QueuePolicy").items()
    resolved = resolver(transformed).resolve(policy["Properties"])
    assert resolved["Queues"] == ["<EventsQueue>"]
    assert resolved["PolicyDocument"]["Statement"] == [
        {
            "Sid": "LandingBucketNotifications",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": "<EventsQueue.Arn>",
            "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{BUCKET}"}, "StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }
    ]


def test_dead_letters_raise_an_alarm_and_logs_expire(transformed):
    _, alarm = one(transformed, "AWS::CloudWatch::Alarm")
    resolved = resolver(transformed).resolve(alarm["Properties"])
    assert (resolved["Namespace"], resolved["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert resolved["Dimensions"] == [{"Name": "QueueName", "Value": "<DeadLetterQueue.QueueName>"}]
    assert (resolved["ComparisonOperator"], resolved["Threshold"]) == ("GreaterThanThreshold", 0)
    assert "AlarmActions" not in resolved  # no topic given
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:oncall"
    assert resolver(transformed, AlarmTopicArn=topic).resolve(alarm["Properties"])["AlarmActions"] == [topic]
    _, logs = one(transformed, "AWS::Logs::LogGroup")
    assert resolver(transformed).resolve(logs["Properties"]) == {"LogGroupName": "/aws/lambda/widf-loader", "RetentionInDays": "14"}


# -- keyless, and what the stack tells the administrator -------------------------------


def test_no_parameter_or_variable_can_carry_a_secret(source, transformed):
    assert not [name for name, p in source["Parameters"].items() if p.get("NoEcho") or re.search(r"secret|password|key|token", name, re.I)]
    _, function = one(transformed, "AWS::Lambda::Function")
    variables = set(function["Properties"]["Environment"]["Variables"])
    assert not {v for v in variables if re.search(r"PASSWORD|PRIVATE_KEY|TOKEN|SECRET|AUTHENTICATOR", v)}


def test_in_the_cloud_the_function_gets_only_account_and_names_and_starts_keyless(transformed):
    _, function = one(transformed, "AWS::Lambda::Function")
    environment = resolver(transformed).resolve(function["Properties"]["Environment"]["Variables"])
    assert environment == {
        "SNOWFLAKE_ACCOUNT": "myorg-myaccount",
        "SNOWFLAKE_DATABASE": "WIDF_DEMO_DB",
        "SNOWFLAKE_SCHEMA": "PUBLIC",
        "SNOWFLAKE_WAREHOUSE": "COMPUTE_WH",
        "SNOWFLAKE_ROLE": "WIDF_DEMO_ROLE",
        "SNOWFLAKE_PROTOCOL": "https",
        "WIDF_FUNCTION_TIMEOUT_SECONDS": "30",
        "WIDF_STAGE_ABOVE_BYTES": "268435456",  # 256 MiB
        "WIDF_STAGE_PART_BYTES": "100000000",  # Snowflake's file sizing: 100-250 MB compressed
        "SNOWFLAKE_DISABLE_PLATFORM_DETECTION": "true",  # connector 5.x's switch for its post-login metadata probes
    }
    settings = LoaderSettings.from_env(environment)
    assert (settings.stage_above_bytes, settings.stage_part_bytes) == (LoaderSettings.stage_above_bytes, LoaderSettings.stage_part_bytes)
    assert (settings.host, settings.port, settings.workload_identity_host) == (None, None, None)
    assert settings.lock_timeout_seconds < settings.function_timeout_seconds  # no claim outwaits its invocation


def test_locally_the_parameters_point_the_function_at_the_local_endpoints(transformed):
    _, function = one(transformed, "AWS::Lambda::Function")
    local = {
        "SnowflakeAccount": "local",
        "SnowflakeHost": "localhost",
        "SnowflakePort": "40123",
        "SnowflakeProtocol": "http",
        "SnowflakeWorkloadIdentityHost": "http://127.0.0.1:40999",
    }
    environment = resolver(transformed, **local).resolve(function["Properties"]["Environment"]["Variables"])
    settings = LoaderSettings.from_env(environment)
    assert (settings.host, settings.port, settings.protocol, settings.workload_identity_host) == (
        "localhost",
        40123,
        "http",
        "http://127.0.0.1:40999",
    )


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("SnowflakeDatabase", "DB; DROP TABLE X"),
        ("FunctionName", "Widf_Loader"),
        ("FunctionTimeout", "45"),
        ("SnowflakeWorkloadIdentityHost", "http://evil/path"),
        ("BatchSize", "0"),
    ],
)
def test_parameters_are_checked_against_the_templates_constraints(transformed, parameter, value):
    with pytest.raises(deploy.DeployError, match=parameter):
        deploy.parameter_values(transformed, {"SnowflakeAccount": "myorg-myaccount", parameter: value})


def test_the_account_has_no_default(transformed):
    with pytest.raises(deploy.DeployError, match="SnowflakeAccount needs a value"):
        deploy.parameter_values(transformed, {})


def test_outputs_give_the_role_arn_and_the_exact_statement_that_trusts_it(transformed):
    outputs = resolver(transformed).resolve(transformed["Outputs"])
    assert set(Deployment.OUTPUTS.values()) <= set(outputs)
    assert outputs["FunctionRoleArn"]["Value"] == ROLE_ARN
    assert outputs["SnowflakeServiceUserStatement"]["Value"] == (
        f"CREATE USER LAMBDA_LOADER_BOT TYPE = SERVICE WORKLOAD_IDENTITY = (TYPE = AWS ARN = '{ROLE_ARN}') "
        "DEFAULT_ROLE = WIDF_DEMO_ROLE DEFAULT_WAREHOUSE = COMPUTE_WH"
    )
