"""What template.yaml lets each Lambda function do: the IAM statements of its role.

The SAM template is turned into CloudFormation offline (samtranslator, no managed-policy lookup),
so policy templates, SAM-made roles and attached policies all read the same way. Intrinsics are
rendered as readable text (`!Ref X` -> `${X}`); both branches of an `!If` count.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from samtranslator.yaml_helper import intrinsics_multi_constructor

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FUNCTION = "AWS::Serverless::Function"

# Policies Lambda itself uses for the function (logs, traces, ENIs, DLQ and destinations): they
# may cover a call, but are never "a permission without a call".
PLATFORM_MANAGED_POLICIES = frozenset(
    {
        "AWSLambdaBasicExecutionRole",
        "AWSLambdaVPCAccessExecutionRole",
        "AWSXrayWriteOnlyAccess",
        "AWSXRayDaemonWriteAccess",
    }
)
_PLATFORM_POLICY_NAME = re.compile(r"^(DeadLetterQueuePolicy|.+EventInvokeConfigOn\w+Policy)$")


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation short tags (`!Ref`, `!Sub`...), without touching SafeLoader."""


_CfnLoader.add_multi_constructor("!", intrinsics_multi_constructor)


@cache
def sam_template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # noqa: S506
    return loaded


@cache
def cloudformation() -> dict[str, Any]:
    """The template after the SAM transform, code locations replaced by placeholders."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(sam_template())
    for resource in sam.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == FUNCTION:
            properties["CodeUri"] = "s3://placeholder/function.zip"
        if resource.get("Type") == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = "s3://placeholder/layer.zip"
    session = boto3.session.Session(region_name="us-east-1")
    translator = Translator(None, Parser(), boto_session=session)
    result: dict[str, Any] = translator.translate(
        sam, parameter_values={}, get_managed_policy_map=lambda: {}
    )
    return result


@dataclass(frozen=True)
class FunctionCode:
    logical_id: str
    app_file: Path
    handler: str
    module: str


def functions() -> dict[str, FunctionCode]:
    """Every function of the template, with the file and function its handler names."""
    sam = sam_template()
    globals_fn = (sam.get("Globals") or {}).get("Function") or {}
    found: dict[str, FunctionCode] = {}
    for logical_id, resource in sam["Resources"].items():
        if resource.get("Type") != FUNCTION:
            continue
        properties = resource.get("Properties") or {}
        code_uri = properties.get("CodeUri", globals_fn.get("CodeUri"))
        handler = properties.get("Handler", globals_fn.get("Handler"))
        if not isinstance(code_uri, str) or not isinstance(handler, str):
            raise AssertionError(f"{logical_id}: CodeUri and Handler must be plain strings")
        module_path, _, function_name = handler.rpartition(".")
        app_file = ROOT / code_uri / (module_path.replace(".", "/") + ".py")
        module = ".".join(Path(code_uri).parts + tuple(module_path.split(".")))
        found[logical_id] = FunctionCode(logical_id, app_file, function_name, module)
    return found


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: dict[str, Any]
    source: str
    platform: bool = False
    not_resource: bool = False

    def condition_keys(self) -> set[str]:
        return {key.lower() for keys in self.condition.values() for key in keys}


def render(value: Any) -> Any:
    """Intrinsics as readable text: `{"Ref": "X"}` -> `${X}`, `Fn::Sub` -> its string."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key == "Ref":
            return "${" + str(inner) + "}"
        if key == "Fn::Sub":
            return inner[0] if isinstance(inner, list) else inner
        if key == "Fn::GetAtt":
            parts = inner if isinstance(inner, list) else str(inner).split(".")
            return "${" + ".".join(map(str, parts)) + "}"
        if key == "Fn::Join":
            separator, items = inner
            return separator.join(str(render(i)) for i in items)
    if isinstance(value, dict):
        return {k: render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v) for v in value]
    return value


def alternatives(value: Any) -> list[Any]:
    """Both branches of `Fn::If` (recursively); `AWS::NoValue` is no value at all."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, yes, no = value["Fn::If"]
        return alternatives(yes) + alternatives(no)
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def _items(value: Any) -> list[Any]:
    found: list[Any] = []
    for alternative in alternatives(value):
        if isinstance(alternative, list):
            for item in alternative:
                found.extend(alternatives(item))
        else:
            found.append(alternative)
    return found


def _document(raw: Any) -> dict[str, Any]:
    """A policy document given as an object, a JSON string or an `Fn::Sub` of a JSON string."""
    if isinstance(raw, dict) and set(raw) == {"Fn::Sub"}:
        raw = raw["Fn::Sub"][0] if isinstance(raw["Fn::Sub"], list) else raw["Fn::Sub"]
        raw = raw.replace("${!", "${")
    if isinstance(raw, str):
        loaded: dict[str, Any] = json.loads(raw)
        return loaded
    return raw  # type: ignore[no-any-return]


def _statements(document: Any, source: str, platform: bool) -> Iterator[Statement]:
    for raw in _items(_document(document).get("Statement", [])):
        actions = tuple(str(render(a)) for a in _items(raw.get("Action", [])))
        resource_key = "NotResource" if "NotResource" in raw else "Resource"
        resources = tuple(str(render(r)) for r in _items(raw.get(resource_key, [])))
        condition = render(raw.get("Condition") or {})
        sid = raw.get("Sid")
        yield Statement(
            effect=str(raw.get("Effect", "Allow")),
            actions=actions,
            resources=resources,
            condition=condition if isinstance(condition, dict) else {},
            source=f"{source} Sid {sid}" if sid else source,
            platform=platform,
            not_resource=resource_key == "NotResource",
        )


def _role_of(cfn: dict[str, Any], function_id: str) -> str:
    role = cfn["Resources"][function_id]["Properties"].get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        target = role["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".")[0])
    raise AssertionError(
        f"{function_id} has no role of its own in template.yaml: give each function its own "
        "role (SAM `Policies:`) so it holds only the actions it calls"
    )


def _refers_to(value: Any, logical_id: str) -> bool:
    return any(item == {"Ref": logical_id} for item in _items(value))


@dataclass
class RolePolicies:
    role: str
    statements: list[Statement] = field(default_factory=list)
    managed_arns: list[str] = field(default_factory=list)


def function_policies(function_id: str) -> RolePolicies:
    """Every statement the role of one function holds, wherever the template declares it."""
    cfn = cloudformation()
    resources = cfn["Resources"]
    role_id = _role_of(cfn, function_id)
    role = resources[role_id]["Properties"]
    found = RolePolicies(role=role_id)
    for policy in _items(role.get("Policies", [])):
        name = str(policy.get("PolicyName", ""))
        platform = bool(_PLATFORM_POLICY_NAME.match(name))
        found.statements.extend(
            _statements(policy["PolicyDocument"], f"{function_id} policy {name}", platform)
        )
    for arn in _items(role.get("ManagedPolicyArns", [])):
        if isinstance(arn, dict) and set(arn) == {"Ref"} and arn["Ref"] in resources:
            managed = resources[arn["Ref"]]["Properties"]
            found.statements.extend(
                _statements(managed["PolicyDocument"], f"managed policy {arn['Ref']}", False)
            )
        else:
            found.managed_arns.append(str(render(arn)))
    for logical_id, resource in resources.items():
        kind = resource.get("Type")
        properties = resource.get("Properties") or {}
        if kind in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            attached = _refers_to(properties.get("Roles", []), role_id)
        elif kind == "AWS::IAM::RolePolicy":
            attached = properties.get("RoleName") == {"Ref": role_id}
        else:
            continue
        if attached:
            found.statements.extend(
                _statements(properties["PolicyDocument"], f"{kind} {logical_id}", False)
            )
    return found


def managed_policy_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]
