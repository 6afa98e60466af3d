"""`aws deploy` against the local stack, from the same template as the cloud.

infra/template.yaml is transformed offline (aws-sam-translator, as
CloudFormation's own SAM transform does) and sent to moto's CloudFormation;
what moto leaves undone is applied from the transformed template's resolved
properties (`aws.apply_what_cloudformation_skipped`). The function and its
SQS event-source mapping stay out of moto: moto would consume the queue
itself and try to run the function in Docker. The local runner is the Lambda
service instead, and `.local/function.json` - the function's configuration,
read from the same transformed template - is what it runs.

`.local/deployment.json` keeps the stack's outputs as CloudFormation answers
them; the commands read the function's resources from them as they read a
cloud stack's. What the template's parameters are set to is the caller's to
say, apart from where the local stack's Snowflake is.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from widf_local import aws
from widf_local.aws import DeployError
from widf_local.stack import StackInfo, StackPaths

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
STACK_NAME = "widf-loader"  # named as a cloud stack is by default: after the function
# `sam package` replaces a local CodeUri with where it uploaded the zip; the
# transform accepts nothing else. Locally nothing is uploaded: the runner runs
# the installed package.
LOCAL_CODE_URI = "s3://widf-loader-local-artifacts/widf-loader-lambda.zip"
FUNCTION_TYPE = "AWS::Lambda::Function"
EVENT_SOURCE_TYPE = "AWS::Lambda::EventSourceMapping"


@dataclass(frozen=True)
class LocalDeployment:
    function: aws.FunctionSpec
    outputs: dict[str, str]  # the stack's, OutputKey -> OutputValue


# -- the template --------------------------------------------------------------


NO_TRANSLATOR = "The local deploy transforms infra/template.yaml with aws-sam-translator: install the dev extra (`make install`)."


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    try:
        from samtranslator.yaml_helper import yaml_parse  # understands !Ref, !Sub and the other short forms
    except ImportError:
        raise DeployError(NO_TRANSLATOR) from None
    try:
        return yaml_parse(path.read_text())
    except FileNotFoundError:
        raise DeployError(f"{path} is missing: run widf-loader from its repository.") from None


def sam_transform(template: Mapping[str, Any], *, region: str, code_uri: str = LOCAL_CODE_URI) -> dict[str, Any]:
    """The SAM template as plain CloudFormation, offline."""
    import boto3

    try:
        from samtranslator.metrics.metrics import Metrics
        from samtranslator.model.exceptions import InvalidDocumentException
        from samtranslator.parser.parser import Parser
        from samtranslator.translator.translator import Translator
    except ImportError:
        raise DeployError(NO_TRANSLATOR) from None

    template = copy.deepcopy(dict(template))
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and not str(properties.get("CodeUri", "")).startswith("s3://"):
            properties["CodeUri"] = code_uri
    # The session only tells the transform its region (for ARNs); it sends no request.
    metrics = Metrics()  # publishes nowhere; published so that it does not warn about it
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=region), metrics=metrics)
    try:
        return translator.translate(template, parameter_values={}, get_managed_policy_map=dict)
    except InvalidDocumentException as e:
        raise DeployError(f"The SAM transform refused the template: {'; '.join(c.message for c in e.causes)}") from None
    finally:
        metrics.publish()


def parameter_values(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """Every parameter's value, checked against the template's own constraints, as CloudFormation checks them."""
    declared = template.get("Parameters", {})
    if unknown := sorted(set(given) - set(declared)):
        raise DeployError(f"The template has no parameter {', '.join(unknown)}.")
    values = {}
    for name, spec in declared.items():
        if name in given:
            value = str(given[name])
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise DeployError(f"Template parameter {name} needs a value ({spec.get('Description', 'no description')}).")
        allowed = [str(v) for v in spec.get("AllowedValues", [])]
        if allowed and value not in allowed:
            raise DeployError(f"Template parameter {name} is '{value}'; allowed: {', '.join(allowed)}.")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            raise DeployError(
                f"Template parameter {name} is '{value}': {spec.get('ConstraintDescription', 'it must match ' + spec['AllowedPattern'])}."
            )
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                raise DeployError(f"Template parameter {name} must be a number, not '{value}'.") from None
            if not float(spec.get("MinValue", number)) <= number <= float(spec.get("MaxValue", number)):
                raise DeployError(f"Template parameter {name} is {value}; allowed: {spec.get('MinValue')} to {spec.get('MaxValue')}.")
        values[name] = value
    return values


NO_VALUE = object()  # AWS::NoValue: the property disappears


@dataclass(frozen=True)
class Resolver:
    """The intrinsic functions a deployed template uses, resolved the way CloudFormation resolves them."""

    template: Mapping[str, Any]
    values: Mapping[str, str]  # parameters and pseudo parameters (AWS::Region, ...)
    resource_ref: Callable[[str], str]
    resource_attribute: Callable[[str, str], str]

    def condition(self, name: str) -> bool:
        return self._truth(self.template["Conditions"][name])

    def _truth(self, expression: Any) -> bool:
        ((function, argument),) = expression.items()
        match function:
            case "Fn::Equals":
                return self.resolve(argument[0]) == self.resolve(argument[1])
            case "Fn::Not":
                return not self._truth(argument[0])
            case "Fn::And":
                return all(self._truth(a) for a in argument)
            case "Fn::Or":
                return any(self._truth(a) for a in argument)
            case "Condition":
                return self.condition(argument)
        raise DeployError(f"Unsupported condition function {function}.")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" or key.startswith("Fn::"):
                return self._function(key, argument)
        return {k: r for k, v in value.items() if (r := self.resolve(v)) is not NO_VALUE}

    def _reference(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.values:
            return self.values[name]
        return self.resource_ref(name)

    def _function(self, function: str, argument: Any) -> Any:
        match function:
            case "Ref":
                return self._reference(argument)
            case "Fn::GetAtt":
                logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.resource_attribute(logical_id, attribute)
            case "Fn::If":
                condition, when_true, when_false = argument
                return self.resolve(when_true if self.condition(condition) else when_false)
            case "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                return self._substitute(text, {k: self.resolve(v) for k, v in variables.items()})
            case "Fn::FindInMap":
                mapping, top, second = (self.resolve(a) for a in argument)
                return self.template["Mappings"][mapping][str(top)][str(second)]
            case "Fn::Join":
                separator, items = argument
                return separator.join(str(i) for i in self.resolve(items))
            case "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or":
                return self._truth({function: argument})
        raise DeployError(f"The local deploy does not resolve {function}.")

    def _substitute(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                return str(self.resource_attribute(*name.split(".", 1)))
            return str(self._reference(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def references(value: Any) -> set[str]:
    """The logical ids and parameters a template fragment refers to."""
    if isinstance(value, list):
        return set().union(*(references(v) for v in value)) if value else set()
    if not isinstance(value, dict):
        return set()
    found: set[str] = set()
    for key, argument in value.items():
        if key == "Ref" and isinstance(argument, str):
            found.add(argument)
        elif key == "Fn::GetAtt":
            found.add((argument.split(".", 1) if isinstance(argument, str) else argument)[0])
        elif key == "Fn::Sub":
            text = argument if isinstance(argument, str) else argument[0]
            found |= {name.split(".", 1)[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text)}
        found |= references(argument)
    return found


def without_resources(template: Mapping[str, Any], logical_ids: set[str]) -> dict[str, Any]:
    """The template minus these resources and the outputs that report them."""
    kept = {k: v for k, v in template["Resources"].items() if k not in logical_ids}
    for logical_id, resource in kept.items():
        depends_on = resource.get("DependsOn", [])
        if needed := (references(resource) | set([depends_on] if isinstance(depends_on, str) else depends_on)) & logical_ids:
            raise DeployError(f"{logical_id} needs {', '.join(sorted(needed))}, which the local stack leaves to the runner.")
    outputs = {k: v for k, v in template.get("Outputs", {}).items() if not references(v) & logical_ids}
    return {**template, "Resources": kept, "Outputs": outputs}


# -- the local deployment --------------------------------------------------------


def local_stack_parameters(info: StackInfo) -> dict[str, str]:
    """The template's parameters that point the function at the local stack's Snowflake."""
    return {
        "SnowflakeAccount": info.snowflake_account,
        "SnowflakeHost": info.snowflake_host,
        "SnowflakePort": str(info.snowflake_port),
        "SnowflakeProtocol": "http",
        "SnowflakeWorkloadIdentityHost": info.aws_endpoint,
        # Staged parts smaller than Snowflake's sizing: a file of a few dozen MB still makes several.
        "StagePartBytes": str(8 * 1024 * 1024),
    }


def pseudo_parameters(info: StackInfo, stack_name: str) -> dict[str, str]:
    return {
        "AWS::Region": info.region,
        "AWS::AccountId": info.account_id,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": stack_name,
    }


def sqs_triggered_function(template: Mapping[str, Any]) -> tuple[str, str]:
    """The logical ids of the one function and its SQS event source, which the runner plays."""
    resources = template["Resources"]
    functions = [k for k, v in resources.items() if v["Type"] == FUNCTION_TYPE]
    mappings = [k for k, v in resources.items() if v["Type"] == EVENT_SOURCE_TYPE]
    if len(functions) != 1 or len(mappings) != 1:
        raise DeployError(
            f"The local runner runs one function with one SQS event source; the template has {len(functions)} and {len(mappings)}."
        )
    mapping = resources[mappings[0]]["Properties"]
    if references(mapping["FunctionName"]) != {functions[0]}:
        raise DeployError(f"Event source {mappings[0]} does not trigger {functions[0]}.")
    if "ReportBatchItemFailures" not in mapping.get("FunctionResponseTypes", []):
        # Without it Lambda ignores batchItemFailures and deletes the whole batch; the runner always honours them.
        raise DeployError(f"Event source {mappings[0]} must report batch item failures (FunctionResponseTypes: [ReportBatchItemFailures]).")
    return functions[0], mappings[0]


def function_spec(template: Mapping[str, Any], resolver: Resolver, queue_url_of: Callable[[str], str]) -> aws.FunctionSpec:
    """The function's configuration as Lambda would hold it, from the transformed template."""
    function_id, mapping_id = sqs_triggered_function(template)
    function = resolver.resolve(template["Resources"][function_id]["Properties"])
    # Not its FunctionName: a Ref to the function, which only the runner knows.
    mapping = {k: resolver.resolve(v) for k, v in template["Resources"][mapping_id]["Properties"].items() if k != "FunctionName"}
    return aws.FunctionSpec(
        name=function["FunctionName"],
        handler=function["Handler"],
        role_arn=function["Role"],
        queue_url=queue_url_of(mapping["EventSourceArn"]),
        timeout_seconds=int(function.get("Timeout", 3)),
        memory_mb=int(function.get("MemorySize", 128)),
        batch_size=int(mapping.get("BatchSize", 10)),
        environment={k: str(v) for k, v in function.get("Environment", {}).get("Variables", {}).items()},
        max_concurrency=int((mapping.get("ScalingConfig") or {}).get("MaximumConcurrency", 1)),
    )


def deploy(info: StackInfo, paths: StackPaths, parameters: Mapping[str, str], template_path: Path = TEMPLATE_PATH) -> LocalDeployment:
    """Deploy the template with these parameter values (over the local stack's own, which they may override)."""
    template = sam_transform(load_template(template_path), region=info.region)
    parameters = parameter_values(template, local_stack_parameters(info) | dict(parameters))
    runner_plays = {k for k, v in template["Resources"].items() if v["Type"] in (FUNCTION_TYPE, EVENT_SOURCE_TYPE)}
    sqs_triggered_function(template)  # refuse what the runner cannot play before anything is created
    in_moto = without_resources(template, runner_plays)
    stack = aws.deploy_stack(info.aws_endpoint, STACK_NAME, in_moto, parameters)

    def attribute(logical_id: str, name: str) -> str:
        return aws.resource_attribute(info.aws_endpoint, template["Resources"][logical_id]["Type"], stack.physical_ids[logical_id], name)

    resolver = Resolver(template, parameters | pseudo_parameters(info, STACK_NAME), stack.physical_ids.__getitem__, attribute)
    aws.apply_what_cloudformation_skipped(
        info.aws_endpoint,
        {logical_id: resolver.resolve(resource) for logical_id, resource in in_moto["Resources"].items()},
        stack.physical_ids,
    )
    sqs = aws.client("sqs", info.aws_endpoint)
    spec = function_spec(template, resolver, lambda arn: sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"])
    paths.deployment.write_text(json.dumps(stack.outputs, indent=2))
    paths.function_spec.write_text(spec.to_json())  # last: the runner starts polling when it appears
    return LocalDeployment(function=spec, outputs=stack.outputs)


def deployed(paths: StackPaths) -> LocalDeployment | None:
    try:
        spec = aws.FunctionSpec.from_json(paths.function_spec.read_text())
        outputs = json.loads(paths.deployment.read_text())
    except FileNotFoundError:
        return None
    return LocalDeployment(function=spec, outputs=outputs)


def update_function_configuration(
    paths: StackPaths, *, timeout_seconds: int, environment: dict[str, str] | None = None
) -> aws.FunctionSpec:
    """What `aws lambda update-function-configuration --timeout [--environment]` does: the next invocation runs with it."""
    if (current := deployed(paths)) is None:
        raise DeployError("No function is deployed: run `widf-loader aws deploy` first.")
    spec = replace(
        current.function, timeout_seconds=timeout_seconds, environment=current.function.environment if environment is None else environment
    )
    paths.function_spec.write_text(spec.to_json())
    return spec


def undeploy(paths: StackPaths) -> bool:
    """Stop running the function (the runner stops polling); the stack stays."""
    existed = paths.function_spec.exists()
    paths.function_spec.unlink(missing_ok=True)
    paths.deployment.unlink(missing_ok=True)
    return existed
