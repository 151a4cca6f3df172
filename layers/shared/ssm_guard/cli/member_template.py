"""`ssm-guard member-template`: template.yaml as the plain CloudFormation of a member stack.

Service-managed StackSets do not take templates that use macros, and the AWS::Serverless
transform is one (CloudFormation user guide, "Overview of CloudFormation macros"). This command
writes the member stack without it: template.yaml through the SAM transform offline (no AWS
call), DeploymentRole fixed to `member`, and only what a member stack creates (the forwarding
rules and their role, the member role, the session policy, the optional private networking and
session logging). Parameters, conditions and rules a member stack does not use are left out.

It needs the SAM translator (`pip install 'sagemaker-ssm-guard[local]'`).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssm_guard.cli.common import EXIT_OK, EXIT_USAGE, CliError

MEMBER = "member"
Known = bool | None
"""A condition's value in a member stack: True, False, or None (it depends on other
parameters, decided at deploy time)."""


def condition_value(node: Any, conditions: Mapping[str, Any], role: str = MEMBER) -> Known:
    """What a condition is when DeploymentRole is `role` (three-valued, pure)."""
    if isinstance(node, Mapping) and len(node) == 1:
        ((key, value),) = node.items()
        if key == "Condition":
            return condition_value(conditions[value], conditions, role)
        if key == "Fn::Equals":
            left, right = value
            refs = [side for side in (left, right) if side == {"Ref": "DeploymentRole"}]
            others = [side for side in (left, right) if side != {"Ref": "DeploymentRole"}]
            if len(refs) == 1 and isinstance(others[0], str):
                return bool(others[0] == role)
            return None
        if key == "Fn::Not":
            inner = condition_value(value[0], conditions, role)
            return None if inner is None else not inner
        if key in ("Fn::And", "Fn::Or"):
            values = [condition_value(item, conditions, role) for item in value]
            decisive: bool = key == "Fn::Or"
            if decisive in values:
                return decisive
            return None if None in values else not decisive
    return None


def _references(node: Any) -> set[str]:
    """Names a template part refers to: Ref, GetAtt, Sub variables, Condition."""
    found: set[str] = set()
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("Ref", "Condition") and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                found.add(str(target))
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= _sub_names(str(text))
                found |= _references(value[1] if isinstance(value, list) else {})
            elif key == "Fn::If" and isinstance(value, list):
                found.add(str(value[0]))
                found |= _references(value[1:])
            else:
                found |= _references(value)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item)
    return found


def _sub_names(text: str) -> set[str]:
    return {m.split(".")[0] for m in re.findall(r"\$\{([A-Za-z0-9:._]+)\}", text)}


def member_template(cfn: Mapping[str, Any]) -> dict[str, Any]:
    """The member stack from the translated template (pure): resources, outputs and rules a
    member never creates are dropped, then parameters and conditions nothing refers to."""
    template = copy.deepcopy(dict(cfn))
    conditions: dict[str, Any] = template.get("Conditions", {})

    def created(part: Mapping[str, Any]) -> bool:
        name = part.get("Condition")
        return name is None or condition_value({"Condition": name}, conditions) is not False

    template["Resources"] = {k: v for k, v in template["Resources"].items() if created(v)}
    template["Outputs"] = {k: v for k, v in template.get("Outputs", {}).items() if created(v)}
    template["Rules"] = {
        name: rule
        for name, rule in template.get("Rules", {}).items()
        if condition_value(rule.get("RuleCondition"), conditions) is not False
    }
    while True:
        used = _references([template["Resources"], template["Outputs"], template["Rules"]])
        used |= _references([conditions[name] for name in conditions if name in used])
        unused_conditions = set(conditions) - used
        unused_parameters = set(template["Parameters"]) - used - {"DeploymentRole"}
        if not unused_conditions and not unused_parameters:
            break
        for name in unused_conditions:
            del conditions[name]
        for name in unused_parameters:
            del template["Parameters"][name]
    role = template["Parameters"]["DeploymentRole"]
    role["Default"], role["AllowedValues"] = MEMBER, [MEMBER]
    for key in ("Rules", "Outputs", "Conditions"):
        if not template.get(key):
            template.pop(key, None)
    return template


def translate(path: Path) -> dict[str, Any]:
    """template.yaml through the SAM transform, offline; functions' code is never deployed in a
    member stack, so their code locations are placeholders."""
    try:
        import boto3
        from samtranslator.parser.parser import Parser
        from samtranslator.translator.translator import Translator
        from samtranslator.yaml_helper import yaml_parse
    except ModuleNotFoundError as exc:
        raise CliError(
            "the SAM translator is missing: pip install 'sagemaker-ssm-guard[local]'", EXIT_USAGE
        ) from exc
    sam: dict[str, Any] = yaml_parse(path.read_text(encoding="utf-8"))
    for resource in sam.get("Resources", {}).values():
        properties = resource.setdefault("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            properties["CodeUri"] = "s3://not-deployed-in-a-member-stack/function.zip"
        if resource.get("Type") == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = "s3://not-deployed-in-a-member-stack/layer.zip"
    session = boto3.session.Session(region_name="us-east-1")
    translator = Translator(None, Parser(), boto_session=session)
    result: dict[str, Any] = translator.translate(
        sam, parameter_values={}, get_managed_policy_map=lambda: {}
    )
    return result


def run(args: argparse.Namespace) -> int:
    if not args.template.is_file():
        raise CliError(f"no template at {args.template}", EXIT_USAGE)
    text = json.dumps(member_template(translate(args.template)), indent=2, sort_keys=False)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n", encoding="utf-8")
        print(f"member stack template written to {args.output}", file=sys.stderr)
    else:
        print(text)
    return EXIT_OK


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "member-template",
        help="write template.yaml as the plain CloudFormation of a member stack (for StackSets)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--output", "-o", type=Path, help="default: standard output")
    parser.set_defaults(func=run)
