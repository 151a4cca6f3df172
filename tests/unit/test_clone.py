"""The faithful copy of an endpoint config: every field but its identity, SSM switched."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import botocore.session
import pytest
from botocore.validate import ParamValidator

from ssm_guard.clone import (
    CREATED_BY_TAG,
    SOURCE_CONFIG_TAG,
    CloneError,
    clone_with_ssm,
    clone_without_ssm,
    derived_config_name,
    is_guard_config_name,
    matches_intent,
    variant_changes,
)
from ssm_guard.names import SAGEMAKER_NAME_RE

pytestmark = pytest.mark.unit

CONFIG_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/fraud-prod-config"
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _described(**extra):
    """A DescribeEndpointConfig answer with KMS, data capture, async inference, a shadow variant,
    autoscaling-relevant counts and a field AWS might add tomorrow."""
    return {
        "EndpointConfigName": "fraud-prod-config",
        "EndpointConfigArn": CONFIG_ARN,
        "CreationTime": datetime(2026, 12, 1, tzinfo=UTC),
        "ResponseMetadata": {"RequestId": "x"},
        "ProductionVariants": [
            {
                "VariantName": "blue",
                "ModelName": "fraud-model",
                "InitialInstanceCount": 4,
                "InstanceType": "ml.m5.xlarge",
                "InitialVariantWeight": 0.7,
                "EnableSSMAccess": True,
                "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 2},
                "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
                "ContainerStartupHealthCheckTimeoutInSeconds": 600,
            },
            {
                "VariantName": "green",
                "ModelName": "fraud-model-2",
                "InitialInstanceCount": 2,
                "InstanceType": "ml.m5.xlarge",
                "InitialVariantWeight": 0.3,
            },
        ],
        "ShadowProductionVariants": [
            {
                "VariantName": "shadow",
                "ModelName": "fraud-model-3",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "EnableSSMAccess": True,
            }
        ],
        "DataCaptureConfig": {
            "EnableCapture": True,
            "InitialSamplingPercentage": 20,
            "DestinationS3Uri": "s3://capture/fraud",
            "KmsKeyId": KMS,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
        },
        "KmsKeyId": KMS,
        "AsyncInferenceConfig": {
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
            "OutputConfig": {
                "S3OutputPath": "s3://async/out",
                "KmsKeyId": KMS,
                "NotificationConfig": {"SuccessTopic": "arn:aws:sns:us-east-1:123456789012:ok"},
            },
        },
        "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]},
        "EnableNetworkIsolation": False,
        **extra,
    }


def test_copy_keeps_every_field_but_identity_and_switches_ssm_off_everywhere() -> None:
    # GIVEN a config with SSM on a production and a shadow variant, and a field from the future
    source = _described(FutureField={"Nested": [1, 2]})
    # WHEN it is copied without SSM
    kwargs = clone_without_ssm(source, {"team": "fraud"})
    # THEN the copy equals the source except the identity, the name, the tags and EnableSSMAccess
    expected = copy.deepcopy(source)
    for key in ("EndpointConfigName", "EndpointConfigArn", "CreationTime", "ResponseMetadata"):
        expected.pop(key)
    for variant in expected["ProductionVariants"] + expected["ShadowProductionVariants"]:
        if "EnableSSMAccess" in variant:
            variant["EnableSSMAccess"] = False
    body = {k: v for k, v in kwargs.items() if k not in ("EndpointConfigName", "Tags")}
    assert body == expected
    assert body["FutureField"] == {"Nested": [1, 2]}
    assert "EnableSSMAccess" not in body["ProductionVariants"][1]
    # AND the source was not modified
    assert source["ProductionVariants"][0]["EnableSSMAccess"] is True


def test_copy_is_accepted_by_botocore_create_endpoint_config() -> None:
    # GIVEN the copy of a config using KMS, data capture, async inference, shadows and a VPC
    kwargs = clone_without_ssm(_described(), {"team": "fraud"})
    # WHEN botocore validates it against CreateEndpointConfig's input shape
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateEndpointConfig").input_shape
    report = ParamValidator().validate(kwargs, shape)
    # THEN nothing is wrong with it
    assert not report.has_errors(), report.generate_report()


def test_tags_are_copied_with_the_guards_marks_and_without_reserved_keys() -> None:
    source_tags = {"team": "fraud", "aws:cloudformation:stack-name": "ml", "env": "prod"}
    kwargs = clone_without_ssm(_described(), source_tags)
    tags = {t["Key"]: t["Value"] for t in kwargs["Tags"]}
    assert tags["team"] == "fraud"
    assert tags["env"] == "prod"
    assert "aws:cloudformation:stack-name" not in tags
    assert tags[CREATED_BY_TAG] == "sagemaker-ssm-guard"
    assert tags[SOURCE_CONFIG_TAG] == "fraud-prod-config"


def test_a_full_tag_set_keeps_the_sources_tags_first() -> None:
    source_tags = {f"k{i:02}": "v" for i in range(50)}
    kwargs = clone_without_ssm(_described(), source_tags)
    assert len(kwargs["Tags"]) == 50
    assert {t["Key"] for t in kwargs["Tags"]} == set(source_tags)


def test_new_name_is_valid_stable_and_specific_to_the_change() -> None:
    # GIVEN the same source described twice (a retry) and a source with other content
    first = clone_without_ssm(_described(), {})["EndpointConfigName"]
    again = clone_without_ssm(_described(), {"new": "tag"})["EndpointConfigName"]
    other = clone_without_ssm(_described(KmsKeyId="other-key"), {})["EndpointConfigName"]
    # THEN the name is valid, the retry reuses it (tags do not matter), other content does not
    assert SAGEMAKER_NAME_RE.match(first)
    assert len(first) <= 63
    assert first.startswith("fraud-prod-config-ssm-off-")
    assert first == again
    assert first != other
    assert is_guard_config_name(first)


@pytest.mark.parametrize(
    "source",
    [
        "a" * 63,
        "a" * 40 + "-" * 10 + "b" * 13,
        "x",
        "ends-with-many-" + "9" * 48,
        "prod-config-ssm-off-0123abcd",
    ],
)
def test_derived_names_are_always_valid(source: str) -> None:
    name = derived_config_name(source, {"ProductionVariants": []}, ssm=False)
    assert SAGEMAKER_NAME_RE.match(name)
    assert len(name) <= 63
    assert not name.endswith("-")


def test_switching_back_and_forth_does_not_grow_the_name() -> None:
    described = _described()
    off = clone_without_ssm(described, {})
    described_off = {**off, "EndpointConfigArn": "arn:x"}
    on = clone_with_ssm(described_off, {})
    assert on["EndpointConfigName"].count("-ssm-") == 1
    assert on["EndpointConfigName"].startswith("fraud-prod-config-ssm-on-")


def test_enable_turns_on_only_variants_that_can_take_ssm() -> None:
    # GIVEN a config with a model variant, a serverless one and an inference-component one
    source = _described(
        ProductionVariants=[
            {"VariantName": "model", "ModelName": "m", "InstanceType": "ml.m5.large"},
            {
                "VariantName": "serverless",
                "ModelName": "m",
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1},
            },
            {"VariantName": "components", "InstanceType": "ml.m5.large"},
        ],
        ShadowProductionVariants=None,
    )
    # WHEN SSM is enabled without naming variants
    kwargs = clone_with_ssm(source, {})
    # THEN only the model variant has it, and naming an unfit variant is refused
    flags = {v["VariantName"]: v.get("EnableSSMAccess") for v in kwargs["ProductionVariants"]}
    assert flags == {"model": True, "serverless": None, "components": None}
    assert "ShadowProductionVariants" not in kwargs
    with pytest.raises(CloneError, match="serverless"):
        clone_with_ssm(source, {}, variants=["serverless"])


def test_variant_limits_the_change_and_unknown_variants_are_refused() -> None:
    kwargs = clone_without_ssm(_described(), {}, variants=["shadow"])
    assert kwargs["ProductionVariants"][0]["EnableSSMAccess"] is True
    assert kwargs["ShadowProductionVariants"][0]["EnableSSMAccess"] is False
    changes = variant_changes(_described(), enable=False, variants=["shadow"])
    assert [(c.name, c.shadow, c.changed) for c in changes] == [
        ("blue", False, False),
        ("green", False, False),
        ("shadow", True, True),
    ]
    with pytest.raises(CloneError, match="no variant named nope"):
        clone_without_ssm(_described(), {}, variants=["nope"])


def test_a_config_without_variants_cannot_be_copied() -> None:
    with pytest.raises(CloneError):
        clone_without_ssm({"EndpointConfigName": "c", "ProductionVariants": []}, {})


def test_none_values_are_dropped_not_sent() -> None:
    kwargs = clone_without_ssm(_described(ExplainerConfig=None, KmsKeyId=None), {})
    assert "ExplainerConfig" not in kwargs
    assert "KmsKeyId" not in kwargs


def test_matches_intent_tells_our_copy_from_a_stranger() -> None:
    kwargs = clone_without_ssm(_described(), {})
    ours = {**kwargs, "EndpointConfigArn": "arn:x"}
    stranger = clone_with_ssm(_described(), {})
    assert matches_intent(ours, kwargs)
    assert not matches_intent(stranger, kwargs)


def test_empty_structures_and_lists_are_dropped_as_absent() -> None:
    kwargs = clone_without_ssm(_described(DataCaptureConfig={}, ShadowProductionVariants=[]), {})
    assert "DataCaptureConfig" not in kwargs
    assert "ShadowProductionVariants" not in kwargs
