"""Pure decisions: production tags, roles, and containers SSM cannot reach."""

from __future__ import annotations

import pytest

from ssm_guard.decisions import is_production, plan, unreachable_reason
from ssm_guard.endpoint import Container, EndpointSnapshot, ModelInfo, Variant, variants_of
from ssm_guard.settings import Settings, SettingsError

pytestmark = pytest.mark.unit
ROLE_A = "arn:aws:iam::123456789012:role/team-a"
ROLE_B = "arn:aws:iam::123456789012:role/service/team-b"


def snapshot(config: dict, models: dict[str, ModelInfo], tags: dict | None = None):
    return EndpointSnapshot(
        name="ep",
        arn="arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep",
        status="InService",
        config_name=config.get("EndpointConfigName", "cfg"),
        config=config,
        variants=variants_of(config),
        tags=tags or {},
        models=models,
    )


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"environment": "prod"}, True),
        ({"Environment": "Production"}, True),
        ({"ENV": "PROD"}, True),
        ({"environment": "dev"}, False),
        ({"stage": "prod"}, False),
        ({}, False),
    ],
)
def test_production_tags_compare_case_insensitively(tags: dict, expected: bool) -> None:
    assert is_production(tags, Settings()) is expected


def test_deployer_chosen_production_tags() -> None:
    settings = Settings(production_tag_keys=("tier",), production_tag_values=("critical",))
    assert is_production({"Tier": "Critical"}, settings)
    assert not is_production({"environment": "prod"}, settings)


def test_each_distinct_role_of_ssm_variants_is_planned_once() -> None:
    # GIVEN two SSM variants on one role, one on another, and one without SSM
    config = {
        "ProductionVariants": [
            {"VariantName": "a", "ModelName": "m1", "EnableSSMAccess": True},
            {"VariantName": "b", "ModelName": "m2", "EnableSSMAccess": True},
            {"VariantName": "c", "ModelName": "m3"},
        ],
        "ShadowProductionVariants": [
            {"VariantName": "s", "ModelName": "m3", "EnableSSMAccess": True}
        ],
    }
    models = {
        "m1": ModelInfo("m1", ROLE_A, (Container("container_0"),)),
        "m2": ModelInfo("m2", ROLE_A, (Container("container_0"),)),
        "m3": ModelInfo("m3", ROLE_B, (Container("container_0"),)),
    }
    # WHEN the plan is made
    result = plan(snapshot(config, models), Settings())
    # THEN each role appears once with its variants, shadow variants included
    assert result.roles == {ROLE_A: ("a", "b"), ROLE_B: ("s",)}
    assert result.ssm_variants == ("a", "b", "s")


def test_no_ssm_means_no_roles() -> None:
    config = {"ProductionVariants": [{"VariantName": "a", "ModelName": "m1"}]}
    result = plan(snapshot(config, {}), Settings())
    assert not result.ssm_on
    assert result.roles == {}


@pytest.mark.parametrize(
    ("variant", "model", "reason_part"),
    [
        (Variant("v", "m", True, serverless=True), None, "serverless"),
        (Variant("v", None, True), None, "inference-component"),
        (Variant("v", "m", True), ModelInfo("m", ROLE_A, network_isolation=True), "isolation"),
        (
            Variant("v", "m", True),
            ModelInfo("m", ROLE_A, (Container("c", model_package="arn:pkg"),)),
            "Marketplace",
        ),
        (
            Variant("v", "m", True),
            ModelInfo(
                "m",
                ROLE_A,
                (Container("c", "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"),),
            ),
            "first-party",
        ),
    ],
)
def test_containers_ssm_cannot_reach_are_recognised(variant, model, reason_part) -> None:
    assert reason_part in (unreachable_reason(variant, model) or "")


def test_deep_learning_containers_are_reachable() -> None:
    image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu"
    model = ModelInfo("m", ROLE_A, (Container("c", image),))
    assert unreachable_reason(Variant("v", "m", True), model) is None


@pytest.mark.parametrize(
    "env",
    [
        {"GUARDRAIL_MODE": "off"},
        {"TARGETS_PARAMETER_PREFIX": "no-slash"},
        {"TARGETS_PARAMETER_PREFIX": "/aws/reserved"},
        {"MAX_EXCEPTION_HOURS": "soon"},
    ],
)
def test_bad_settings_fail_with_a_clear_message(env: dict) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(env)
