"""Deploys `template.yaml` into the emulator, the one source of truth for resources and rules.

1. Load the SAM template (CloudFormation tags such as `!Ref`, `!Sub` become their JSON forms).
2. Point every function's CodeUri and layer's ContentUri at a dummy object in a local S3
   bucket, remembering which local directory each stood for.
3. Transform SAM into CloudFormation offline with samtranslator (no managed-policy lookup).
4. Drop what moto's CloudFormation cannot create (logged, references replaced by placeholders)
   and layer ARNs from outside the template (the venv provides those libraries locally).
5. `CreateStack` (or `UpdateStack`) in moto with the parameter overrides.
6. Map each deployed function to its local code: the invoker runs `CodeUri/Handler` with the
   environment moto resolved (`GetFunctionConfiguration`), so no list of functions, variables
   or rules exists in Python.
"""

from __future__ import annotations

import copy
import io
import json
import re
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ssm_guard.local._logging import get_logger
from ssm_guard.local.invoker import DUMMY_CREDENTIALS, FunctionSpec
from ssm_guard.local.runtime import Runtime

log = get_logger(__name__)

CODE_BUCKET = "ssm-guard-local-code"
DEFAULT_STACK_NAME = "sagemaker-ssm-guard"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
_S3_URI = re.compile(r"^s3://")


class DeployError(RuntimeError):
    """The template could not be deployed into the emulator."""


# -- template loading ----------------------------------------------------------------------


class _TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form intrinsic functions."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):  # the two whose JSON form has no "Fn::"
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)
# CloudFormation reads dates as strings (AWSTemplateFormatVersion: 2010-09-09).
_TemplateLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        template = yaml.load(stream, Loader=_TemplateLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(template, dict) or "Resources" not in template:
        raise DeployError(f"{path} is not a CloudFormation/SAM template")
    return template


def find_template(start: Path | None = None) -> Path:
    """`template.yaml` in `start` (default: the current directory) or a parent, else the
    project this package belongs to."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "template.yaml"
        if candidate.is_file():
            return candidate
    # layers/shared/ssm_guard/local/deploy.py -> the repository root
    candidate = Path(__file__).resolve().parents[4] / "template.yaml"
    if candidate.is_file():
        return candidate
    raise DeployError("no template.yaml found here, in a parent folder or in the project")


def default_stack_name(template_path: Path) -> str:
    """The stack name `sam deploy` would use (samconfig.toml), else the project's name."""
    config = template_path.parent / "samconfig.toml"
    if config.is_file():
        data = tomllib.loads(config.read_text(encoding="utf-8"))
        name = data.get("default", {}).get("global", {}).get("parameters", {}).get("stack_name")
        if isinstance(name, str) and name:
            return name
    return DEFAULT_STACK_NAME


# -- SAM to CloudFormation -----------------------------------------------------------------


def _local_code(template: dict[str, Any], root: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """Replace local code paths with dummy S3 objects; return the template and key -> path."""
    template = copy.deepcopy(template)
    code: dict[str, Path] = {}
    globals_function = template.get("Globals", {}).get("Function", {})
    global_code_uri = globals_function.pop("CodeUri", None)
    for logical_id, resource in template["Resources"].items():
        properties = resource.setdefault("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function":
            key = "CodeUri"
            properties.setdefault(key, global_code_uri)
        elif kind == "AWS::Serverless::LayerVersion":
            key = "ContentUri"
        elif kind == "AWS::Lambda::Function" and isinstance(properties.get("Code"), str):
            key = "Code"
        else:
            continue
        location = properties.get(key)
        if not isinstance(location, str) or _S3_URI.match(location):
            log.warning("resource has no local code", extra={"logical_id": logical_id})
            continue
        s3_key = f"{logical_id}.zip"
        code[s3_key] = (root / location).resolve()
        if kind == "AWS::Lambda::Function":
            properties[key] = {"S3Bucket": CODE_BUCKET, "S3Key": s3_key}
        else:
            properties[key] = f"s3://{CODE_BUCKET}/{s3_key}"
    return template, code


def to_cloudformation(
    template: dict[str, Any], parameters: dict[str, Any], *, region: str, account_id: str
) -> dict[str, Any]:
    """samtranslator, offline: no managed-policy lookup, pseudo parameters given."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.arn_generator import ArnGenerator
    from samtranslator.translator.translator import Translator

    ArnGenerator.BOTO_SESSION_REGION_NAME = region
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    values = {
        **parameters,
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::Partition": "aws",
    }
    result: dict[str, Any] = translator.translate(
        copy.deepcopy(template), parameter_values=values, get_managed_policy_map=lambda: {}
    )
    return result


def _supported_types() -> set[str]:
    from moto.cloudformation.parsing import NULL_MODELS, get_model_map

    return set(get_model_map()) | set(NULL_MODELS)


def _replace_references(node: Any, dropped: dict[str, str]) -> Any:
    """Refs/GetAtts/Subs of dropped resources become placeholder strings."""
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in dropped:
            return dropped[node["Ref"]]
        if set(node) == {"Fn::GetAtt"}:
            target = node["Fn::GetAtt"]
            name = target[0] if isinstance(target, list) else str(target).split(".")[0]
            if name in dropped:
                return dropped[name]
        if set(node) == {"Fn::Sub"}:
            value = node["Fn::Sub"]
            text = value[0] if isinstance(value, list) else value
            if isinstance(text, str):
                for name, placeholder in dropped.items():
                    text = re.sub(
                        r"\$\{" + re.escape(name) + r"(\.[A-Za-z.]+)?\}", placeholder, text
                    )
                node = {"Fn::Sub": [text, value[1]] if isinstance(value, list) else text}
        return {key: _replace_references(value, dropped) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace_references(item, dropped) for item in node]
    return node


def for_moto(cfn: dict[str, Any], *, stack_name: str) -> tuple[dict[str, Any], list[str]]:
    """Strip what moto's CloudFormation cannot create; return the template and what was cut."""
    cfn = copy.deepcopy(cfn)
    supported = _supported_types()
    resources = cfn["Resources"]
    dropped: dict[str, str] = {}
    for logical_id, resource in list(resources.items()):
        kind = resource.get("Type", "")
        if kind == "AWS::IAM::RolePolicy" and kind not in supported:
            # moto creates the equivalent AWS::IAM::Policy; keep the inline policy visible.
            properties = resource.get("Properties", {})
            resource["Type"] = "AWS::IAM::Policy"
            resource["Properties"] = {
                "PolicyName": properties.get("PolicyName"),
                "PolicyDocument": properties.get("PolicyDocument"),
                "Roles": [properties.get("RoleName")],
            }
            continue
        if kind not in supported:
            dropped[logical_id] = f"{stack_name}-{logical_id}-not-emulated"
            del resources[logical_id]
            log.warning(
                "resource type not emulated, skipped",
                extra={"logical_id": logical_id, "type": kind},
            )
    for logical_id, resource in resources.items():
        depends = resource.get("DependsOn")
        if isinstance(depends, str):
            depends = [depends]
        if depends:
            resource["DependsOn"] = [name for name in depends if name not in dropped]
        if resource.get("Type") == "AWS::Lambda::Function":
            layers = resource.get("Properties", {}).get("Layers") or []
            local = [
                layer
                for layer in layers
                if isinstance(layer, dict) and layer.get("Ref") in resources
            ]
            for layer in layers:
                if layer not in local:
                    log.info(
                        "external layer skipped, the local environment provides it",
                        extra={"logical_id": logical_id, "layer": layer},
                    )
            if layers:
                resource["Properties"]["Layers"] = local
    if dropped:
        cfn["Resources"] = _replace_references(resources, dropped)
        if "Outputs" in cfn:
            cfn["Outputs"] = _replace_references(cfn["Outputs"], dropped)
    return cfn, sorted(dropped)


# -- deployment ----------------------------------------------------------------------------


@dataclass
class DeployedStack:
    stack_name: str
    template: str
    outputs: dict[str, str] = field(default_factory=dict)
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack_name": self.stack_name,
            "template": self.template,
            "outputs": self.outputs,
            "functions": self.functions,
            "rules": self.rules,
            "skipped": self.skipped,
        }


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "code runs from the local checkout\n")
    return buffer.getvalue()


def deploy_stack(
    rt: Runtime,
    *,
    template_path: Path | None = None,
    parameter_overrides: dict[str, Any] | None = None,
    stack_name: str | None = None,
) -> DeployedStack:
    """Deploy the template into the running emulator and register its functions."""
    import boto3
    from botocore.config import Config

    path = (template_path or find_template()).resolve()
    name = stack_name or default_stack_name(path)
    overrides = {key: str(value) for key, value in (parameter_overrides or {}).items()}
    settings = rt.settings
    sam, code = _local_code(load_template(path), path.parent)
    cfn = to_cloudformation(sam, overrides, region=settings.region, account_id=settings.account_id)
    cfn, skipped = for_moto(cfn, stack_name=name)

    session = boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=settings.region,
    )
    config = Config(retries={"max_attempts": 1, "mode": "standard"})
    s3 = session.client("s3", endpoint_url=rt.endpoint_url, config=config)
    cloudformation = session.client("cloudformation", endpoint_url=rt.endpoint_url, config=config)
    s3.create_bucket(Bucket=CODE_BUCKET)
    archive = _empty_zip()
    for key in code:
        s3.put_object(Bucket=CODE_BUCKET, Key=key, Body=archive)

    body = json.dumps(cfn)
    parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in overrides.items()]
    existing = {
        stack["StackName"]
        for stack in cloudformation.list_stacks()["StackSummaries"]
        if stack["StackStatus"] != "DELETE_COMPLETE"
    }
    if name in existing:
        cloudformation.update_stack(
            StackName=name, TemplateBody=body, Parameters=parameters, Capabilities=CAPABILITIES
        )
    else:
        cloudformation.create_stack(
            StackName=name, TemplateBody=body, Parameters=parameters, Capabilities=CAPABILITIES
        )
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    if stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise DeployError(
            f"stack {name} ended {stack['StackStatus']}: {stack.get('StackStatusReason', '')}"
        )
    physical = {
        item["LogicalResourceId"]: item.get("PhysicalResourceId", "")
        for item in cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
    }
    deployed = DeployedStack(
        stack_name=name,
        template=str(path),
        outputs={o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])},
        skipped=skipped,
    )
    specs = _function_specs(rt, cfn, physical, code)
    _stringify_environments(rt, [spec.name for spec in specs])
    rt.register_functions(specs)
    deployed.functions = {spec.logical_id: spec.to_dict() for spec in specs}
    deployed.rules = _rules(cfn, physical)
    log.info(
        "stack deployed",
        extra={
            "stack_name": name,
            "functions": sorted(deployed.functions),
            "rules": sorted(deployed.rules),
            "skipped": skipped,
        },
    )
    return deployed


def _stringify_environments(rt: Runtime, names: list[str]) -> None:
    """Lambda environment values are strings; moto keeps a Number parameter's Ref as a number."""
    from moto.awslambda.utils import get_backend

    backend = get_backend(rt.settings.account_id, rt.settings.region)
    for name in names:
        function = backend.get_function(name)
        function.environment_vars = {
            key: (str(value).lower() if isinstance(value, bool) else str(value))
            for key, value in (function.environment_vars or {}).items()
        }


def _function_specs(
    rt: Runtime, cfn: dict[str, Any], physical: dict[str, str], code: dict[str, Path]
) -> list[FunctionSpec]:
    from moto.awslambda.utils import get_backend

    backend = get_backend(rt.settings.account_id, rt.settings.region)
    resources = cfn["Resources"]
    specs = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        properties = resource.get("Properties", {})
        name = physical.get(logical_id)
        if not name:
            log.info("function not created, its condition is false", extra={"id": logical_id})
            continue
        s3_key = (properties.get("Code") or {}).get("S3Key")
        if s3_key not in code:
            log.warning(
                "function has no local code, not invocable", extra={"logical_id": logical_id}
            )
            continue
        layer_dirs = []
        for layer in properties.get("Layers") or []:
            layer_resource = (
                resources.get(layer.get("Ref", "")) if isinstance(layer, dict) else None
            )
            content = (layer_resource or {}).get("Properties", {}).get("Content") or {}
            if content.get("S3Key") in code:
                layer_dirs.append(code[content["S3Key"]])
        log_group = (properties.get("LoggingConfig") or {}).get("LogGroup")
        if isinstance(log_group, dict) and "Ref" in log_group:
            log_group = physical.get(log_group["Ref"])
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                name=name,
                arn=backend.get_function(name).function_arn,
                handler=str(backend.get_function(name).handler),
                code_dir=code[s3_key],
                layer_dirs=tuple(layer_dirs),
                log_group=log_group
                if isinstance(log_group, str) and log_group
                else f"/aws/lambda/{name}",
            )
        )
    return specs


def _rules(cfn: dict[str, Any], physical: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The deployed rules, for display: pattern or schedule, and target logical ids."""
    rules = {}
    for logical_id, resource in cfn["Resources"].items():
        if resource.get("Type") != "AWS::Events::Rule" or not physical.get(logical_id):
            continue  # not a rule, or not created because its condition is false
        properties = resource.get("Properties", {})
        targets = []
        for target in properties.get("Targets") or []:
            arn = target.get("Arn")
            ref = arn.get("Fn::GetAtt", [None])[0] if isinstance(arn, dict) else None
            targets.append(ref or arn)
        rules[logical_id] = {
            "name": physical.get(logical_id, ""),
            "event_pattern": properties.get("EventPattern"),
            "schedule": properties.get("ScheduleExpression"),
            "targets": targets,
        }
    return rules
