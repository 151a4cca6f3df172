"""CloudFormation additions to moto 5.2.5, for templates as SAM and CloudFormation accept them.

- `!If [Condition, value, !Ref AWS::NoValue]` inside a list (a policy statement that only
  exists under a condition) leaves a null element in moto; CloudFormation removes the element.
- A managed policy's `PolicyDocument` may be a JSON string (e.g. built with `!Sub`); moto
  encodes it a second time and then rejects it as malformed.
- A role's inline `Policies` keep their documents as Python objects in moto, and
  GetRolePolicy then answers Python's repr of them; AWS answers JSON.
"""

from __future__ import annotations

import json
from typing import Any

from moto.cloudformation import parsing
from moto.iam.models import ManagedPolicy, Role

_originals: dict[str, Any] = {}


def _clean_json(resource_json: Any, resources_map: Any) -> Any:
    cleaned = _originals["clean_json"](resource_json, resources_map)
    if isinstance(resource_json, list) and isinstance(cleaned, list):
        return [item for item in cleaned if item is not None]
    return cleaned


def _managed_policy_from_cloudformation(
    cls: type[ManagedPolicy],
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> ManagedPolicy:
    properties = cloudformation_json.get("Properties", {})
    document = properties.get("PolicyDocument")
    if isinstance(document, str):
        cloudformation_json = {
            **cloudformation_json,
            "Properties": {**properties, "PolicyDocument": json.loads(document)},
        }
    original = _originals["managed_policy"].__func__
    policy: ManagedPolicy = original(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    )
    return policy


def _role_from_cloudformation(
    cls: type[Role],
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Role:
    properties = cloudformation_json.get("Properties", {})
    policies = [
        {**policy, "PolicyDocument": json.dumps(policy["PolicyDocument"])}
        if isinstance(policy.get("PolicyDocument"), dict)
        else policy
        for policy in properties.get("Policies") or []
    ]
    if policies:
        cloudformation_json = {
            **cloudformation_json,
            "Properties": {**properties, "Policies": policies},
        }
    original = _originals["role"].__func__
    role: Role = original(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    )
    return role


def install() -> None:
    if _originals:
        return
    _originals["clean_json"] = parsing.clean_json
    _originals["managed_policy"] = ManagedPolicy.__dict__["create_from_cloudformation_json"]
    _originals["role"] = Role.__dict__["create_from_cloudformation_json"]
    parsing.clean_json = _clean_json
    Role.create_from_cloudformation_json = classmethod(  # type: ignore[assignment]
        _role_from_cloudformation
    )
    ManagedPolicy.create_from_cloudformation_json = classmethod(  # type: ignore[assignment]
        _managed_policy_from_cloudformation
    )


def uninstall() -> None:
    if not _originals:
        return
    parsing.clean_json = _originals.pop("clean_json")
    ManagedPolicy.create_from_cloudformation_json = _originals.pop("managed_policy")
    Role.create_from_cloudformation_json = _originals.pop("role")
