"""What the guard decides about one endpoint. Pure functions over plain data: no AWS here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from ssm_guard.endpoint import EndpointSnapshot, ModelInfo, Variant
from ssm_guard.settings import Settings


class Kind(StrEnum):
    """Every outcome of an evaluation; the value is what logs, metrics and alerts say."""

    NO_SSM = "no-ssm"
    ATTACHED = "attached"
    COMPLIANT = "compliant"
    NOT_IN_SERVICE = "not-in-service"
    ENDPOINT_GONE = "endpoint-gone"
    ENDPOINT_UNREADABLE = "endpoint-unreadable"
    ROLE_POLICY_QUOTA = "role-policy-quota-exceeded"
    SSM_UNREACHABLE = "ssm-unreachable"
    ROLE_MISSING = "role-missing"
    MALFORMED_EVENT = "malformed-event"
    # The production guardrail (guardrail.py).
    REVERTED = "reverted"
    RETRY_LATER = "retry-later"
    ALERTED = "alerted"
    REVERT_FAILED = "revert-failed"
    EXCEPTION_GRANTED = "exception-granted"
    EXCEPTION_REFUSED = "exception-refused"
    EXCEPTION_EXPIRED = "exception-expired"
    CONFIG_EARLY_WARNING = "config-early-warning"
    IGNORED = "ignored"
    # Reliability (retry.py): AWS refused the evaluation for good; reported once, not retried.
    FAILED = "failed"
    # Organization-wide deployments (accounts.py): nothing is changed, the centre is alerted.
    FOREIGN_ACCOUNT = "foreign-account"
    MEMBER_UNREACHABLE = "member-unreachable"


# SageMaker first-party (built-in) algorithm images: SSM cannot connect to them (seed page).
# DLCs and the framework images are supported, so only algorithm repositories are listed.
FIRST_PARTY_ALGORITHM_REPOSITORIES = frozenset(
    {
        "blazingtext",
        "factorization-machines",
        "forecasting-deepar",
        "image-classification",
        "ipinsights",
        "kmeans",
        "knn",
        "lda",
        "linear-learner",
        "ntm",
        "object-detection",
        "object2vec",
        "pca",
        "randomcutforest",
        "semantic-segmentation",
        "seq2seq",
    }
)


def _lower_set(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in values)


def is_production(tags: Mapping[str, str], settings: Settings) -> bool:
    """An endpoint is production when any production tag key carries a production value, both
    compared case-insensitively (`Environment=Prod` counts)."""
    keys = _lower_set(settings.production_tag_keys)
    values = _lower_set(settings.production_tag_values)
    return any(k.strip().lower() in keys and v.strip().lower() in values for k, v in tags.items())


def image_repository(image: str) -> str:
    """`123.dkr.ecr.us-east-1.amazonaws.com/kmeans:1` -> `kmeans`."""
    path = image.split("/", 1)[1] if "/" in image else image
    return path.split("@", 1)[0].split(":", 1)[0].lower()


def unreachable_reason(variant: Variant, model: ModelInfo | None) -> str | None:
    """Why SSM cannot open a session into this variant's containers, or None when it can.

    The seed page rules out first-party algorithm containers, AWS Marketplace models and
    containers with network isolation; inference-component and serverless variants have no
    instances SageMaker runs an SSM agent on.
    """
    if variant.serverless:
        return "serverless variants run on no instance an SSM agent can reach"
    if variant.model_name is None:
        # NOTE: EnableSSMAccess is ignored without a ModelName (inference-component endpoints);
        # Terraform's provider documents the same (aws-facts 2.1).
        return "inference-component endpoints ignore EnableSSMAccess"
    if model is None:
        return None
    if model.network_isolation:
        return "the model has network isolation, so no SSM session can start"
    for container in model.containers:
        if container.model_package:
            return "model packages (AWS Marketplace) cannot take an SSM session"
        if image_repository(container.image) in FIRST_PARTY_ALGORITHM_REPOSITORIES:
            return "first-party algorithm containers cannot take an SSM session"
    return None


def role_for_variant(snapshot: EndpointSnapshot, variant: Variant) -> str | None:
    """A variant's containers run under its model's execution role; a variant with no model
    (inference components) runs under the endpoint config's ExecutionRoleArn."""
    if variant.model_name:
        model = snapshot.models.get(variant.model_name)
        return model.execution_role_arn if model else None
    return snapshot.config_execution_role


@dataclass(frozen=True)
class Plan:
    """The decision before IAM is read: which roles need the session policy, and why."""

    production: bool
    ssm_variants: tuple[str, ...] = ()
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unreachable: Mapping[str, str] = field(default_factory=dict)

    @property
    def ssm_on(self) -> bool:
        return bool(self.ssm_variants)


def plan(snapshot: EndpointSnapshot, settings: Settings) -> Plan:
    """Roles that need the policy (role -> variants) and variants SSM cannot reach."""
    roles: dict[str, list[str]] = {}
    unreachable: dict[str, str] = {}
    for variant in snapshot.ssm_variants:
        model = snapshot.models.get(variant.model_name) if variant.model_name else None
        reason = unreachable_reason(variant, model)
        if reason:
            unreachable[variant.name] = reason
            continue
        role = role_for_variant(snapshot, variant)
        if role:
            roles.setdefault(role, []).append(variant.name)
        else:
            unreachable[variant.name] = "no execution role found for the variant"
    return Plan(
        production=is_production(snapshot.tags, settings),
        ssm_variants=tuple(v.name for v in snapshot.ssm_variants),
        roles={role: tuple(names) for role, names in sorted(roles.items())},
        unreachable=unreachable,
    )
