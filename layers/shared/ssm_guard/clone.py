"""Faithful copies of an endpoint config with SSM access switched off (or on). Pure: no AWS here.

SSM access is a property of a variant in an endpoint config, and configs are immutable: switching
it means creating a copy and pointing the endpoint at the copy (seed page, "Enable SSM access").
The copy takes every field `DescribeEndpointConfig` returns except the config's own identity, so
fields AWS adds to the API later are carried over without a code change (aws-facts 2.2).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ssm_guard.names import MAX_NAME_LENGTH, validate_name

# What DescribeEndpointConfig returns about the config itself rather than its content.
IDENTITY_FIELDS = frozenset(
    {"EndpointConfigName", "EndpointConfigArn", "CreationTime", "ResponseMetadata"}
)
VARIANT_LISTS = ("ProductionVariants", "ShadowProductionVariants")

# Tags the guard puts on the configs it creates: how cleanup knows a config is its own.
CREATED_BY_TAG = "ssm-guard:created-by"
CREATED_BY_VALUE = "sagemaker-ssm-guard"
SOURCE_CONFIG_TAG = "ssm-guard:source-config"
MAX_TAGS = 50
_RESERVED_TAG_PREFIX = "aws:"

HASH_LENGTH = 8
_SSM_MARK = {True: "ssm-on", False: "ssm-off"}
# A name the guard made earlier: `<base>-ssm-off-<hash>`; switching again replaces the suffix.
GUARD_NAME_RE = re.compile(r"-ssm-(?:on|off)-[0-9a-f]{8}$")
GUARD_NAME_FRAGMENT = "-ssm-o"
"""What every name the guard derives contains: ListEndpointConfigs' NameContains lists them."""


class CloneError(ValueError):
    """The config cannot be copied as asked (no variants, an unknown or unfit variant)."""


@dataclass(frozen=True)
class VariantChange:
    """One variant of the source config, and its SSM access before and after the copy."""

    name: str
    shadow: bool
    before: bool
    after: bool

    @property
    def changed(self) -> bool:
        return self.before != self.after


@functools.cache
def _create_input_shape() -> Any:
    """botocore's own CreateEndpointConfig input shape: what the API accepts, member by member.
    Loaded on first use (a revert or a switch), never at import."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model("CreateEndpointConfig").input_shape


def _invalid_when_empty(value: Any, shape: Any) -> bool:
    """An empty value the API would refuse: a structure with required members, or a list with
    a minimum length. Empty values the API allows (a list with no minimum) are kept."""
    if value is None:
        return True
    if shape is None or not isinstance(value, Mapping | list) or value:
        return False
    if isinstance(value, Mapping):
        return bool(getattr(shape, "required_members", None))
    return int(shape.metadata.get("min", 0)) > 0


def _without_absent(value: Any, shape: Any) -> Any:
    """Drop what DescribeEndpointConfig says but CreateEndpointConfig cannot take back: None,
    and empty values the input shape refuses (some answers carry an unset DataCaptureConfig as
    `{}`). A member our botocore does not know yet is copied as it is."""
    if isinstance(value, Mapping):
        members = shape.members if shape is not None and shape.type_name == "structure" else {}
        pruned: dict[str, Any] = {}
        for key, item in value.items():
            member = members.get(key)
            kept = _without_absent(item, member)
            if not _invalid_when_empty(kept, member):
                pruned[key] = kept
        return pruned
    if isinstance(value, list):
        member = shape.member if shape is not None and shape.type_name == "list" else None
        return [_without_absent(item, member) for item in value]
    return value


def config_body(described: Mapping[str, Any]) -> dict[str, Any]:
    """Everything DescribeEndpointConfig returned except the config's identity, deep-copied."""
    body = {k: copy.deepcopy(v) for k, v in described.items() if k not in IDENTITY_FIELDS}
    result: dict[str, Any] = _without_absent(body, _create_input_shape())
    return result


def _variants(body: Mapping[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    found: list[tuple[dict[str, Any], bool]] = []
    for key in VARIANT_LISTS:
        for variant in body.get(key) or []:
            if not isinstance(variant, dict) or not isinstance(variant.get("VariantName"), str):
                raise CloneError(f"a variant in {key} has no VariantName")
            found.append((variant, key == "ShadowProductionVariants"))
    return found


def ssm_capable(variant: Mapping[str, Any]) -> bool:
    """SSM access needs a model on instances: serverless variants and inference-component
    variants (no ModelName) have no instance an SSM agent runs on (aws-facts 2.1)."""
    return bool(variant.get("ModelName")) and not variant.get("ServerlessConfig")


def _switch(
    body: dict[str, Any], *, enable: bool, only: Collection[str] | None
) -> list[VariantChange]:
    variants = _variants(body)
    if not body.get("ProductionVariants"):
        raise CloneError("the endpoint config has no ProductionVariants")
    names = {v["VariantName"] for v, _ in variants}
    unknown = sorted(set(only or ()) - names)
    if unknown:
        raise CloneError(
            f"no variant named {', '.join(unknown)}; the config has {', '.join(sorted(names))}"
        )
    changes: list[VariantChange] = []
    for variant, shadow in variants:
        before = variant.get("EnableSSMAccess") is True
        selected = only is None or variant["VariantName"] in only
        if selected and enable and not ssm_capable(variant):
            if only is not None:
                raise CloneError(
                    f"variant {variant['VariantName']} is serverless or has no model; "
                    "SSM access does not apply to it"
                )
            selected = False
        # Switching off leaves a variant that never named EnableSSMAccess as it was (off by
        # default), so serverless and inference-component variants get no field they ignore.
        if selected and (enable or "EnableSSMAccess" in variant):
            variant["EnableSSMAccess"] = enable
        changes.append(
            VariantChange(
                name=variant["VariantName"],
                shadow=shadow,
                before=before,
                after=variant.get("EnableSSMAccess") is True,
            )
        )
    return changes


def _digest(source_name: str, body: Mapping[str, Any]) -> str:
    canonical = json.dumps({"source": source_name, "config": body}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


def derived_config_name(source_name: str, body: Mapping[str, Any], *, ssm: bool) -> str:
    """`<source>-ssm-off-<hash>`, at most 63 characters. The hash covers the source name and the
    new content (tags excepted), so a retry of the same change finds the config it made before
    instead of piling up copies, and a different change never reuses it."""
    base = GUARD_NAME_RE.sub("", source_name)
    suffix = f"-{_SSM_MARK[ssm]}-{_digest(source_name, body)}"
    base = base[: MAX_NAME_LENGTH - len(suffix)].rstrip("-")
    return validate_name(f"{base}{suffix}", "endpoint config name")


def _tags(source_tags: Mapping[str, str], extra_tags: Mapping[str, str]) -> list[dict[str, str]]:
    # NOTE: keys under `aws:` are reserved to AWS (CloudFormation puts aws:cloudformation:* on
    # the configs it creates); CreateEndpointConfig refuses them, so they cannot be copied.
    tags = {k: v for k, v in source_tags.items() if not k.lower().startswith(_RESERVED_TAG_PREFIX)}
    for key, value in extra_tags.items():
        # NOTE: a resource holds at most 50 tags; the source's own tags come first, so a full
        # set leaves the copy without the guard's marks (cleanup then never deletes it).
        if key in tags or len(tags) < MAX_TAGS:
            tags[key] = value
    return [{"Key": k, "Value": tags[k]} for k in sorted(tags)]


def _clone(
    described: Mapping[str, Any],
    tags: Mapping[str, str],
    *,
    enable: bool,
    variants: Collection[str] | None,
    extra_tags: Mapping[str, str] | None,
) -> tuple[dict[str, Any], list[VariantChange]]:
    source_name = described.get("EndpointConfigName")
    if not isinstance(source_name, str):
        raise CloneError("the described config has no EndpointConfigName")
    body = config_body(described)
    changes = _switch(body, enable=enable, only=variants)
    name = derived_config_name(source_name, body, ssm=enable)
    marks = {CREATED_BY_TAG: CREATED_BY_VALUE, SOURCE_CONFIG_TAG: source_name}
    marks.update(extra_tags or {})
    return {"EndpointConfigName": name, **body, "Tags": _tags(tags, marks)}, changes


def clone_without_ssm(
    described: Mapping[str, Any],
    tags: Mapping[str, str],
    *,
    variants: Collection[str] | None = None,
    extra_tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """CreateEndpointConfig arguments for a copy of `described` (DescribeEndpointConfig output)
    with EnableSSMAccess false on every production and shadow variant that sets it (or only on
    `variants`),
    carrying `tags` (the source config's ListTags) plus the guard's marks."""
    kwargs, _ = _clone(described, tags, enable=False, variants=variants, extra_tags=extra_tags)
    return kwargs


def clone_with_ssm(
    described: Mapping[str, Any],
    tags: Mapping[str, str],
    *,
    variants: Collection[str] | None = None,
    extra_tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The same faithful copy with EnableSSMAccess true on `variants` (default: every variant
    that can take it: a model on instances, not serverless)."""
    kwargs, _ = _clone(described, tags, enable=True, variants=variants, extra_tags=extra_tags)
    return kwargs


def variant_changes(
    described: Mapping[str, Any], *, enable: bool, variants: Collection[str] | None = None
) -> list[VariantChange]:
    """What switching SSM access would change, variant by variant (for dry runs and alerts)."""
    return _switch(config_body(described), enable=enable, only=variants)


def matches_intent(existing: Mapping[str, Any], kwargs: Mapping[str, Any]) -> bool:
    """Whether a config found under the derived name is the copy these arguments describe: same
    variants, same SSM access on each. The hash in the name covers the rest; a config that fails
    this check was made by someone else and is never used."""

    def ssm_by_variant(config: Mapping[str, Any]) -> dict[tuple[str, bool], bool]:
        return {
            (v["VariantName"], shadow): v.get("EnableSSMAccess") is True
            for v, shadow in _variants(config)
        }

    try:
        return ssm_by_variant(existing) == ssm_by_variant(kwargs)
    except CloneError:
        return False


def is_guard_config_name(name: str) -> bool:
    """Names the guard derives end in `-ssm-on-<hash>` or `-ssm-off-<hash>`."""
    return bool(GUARD_NAME_RE.search(name))
