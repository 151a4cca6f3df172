"""The production guardrail against an in-process moto account (UpdateEndpoint faked)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from ssm_guard.aws import sagemaker as sm_api
from ssm_guard.clone import is_guard_config_name
from ssm_guard.decisions import Kind, plan
from ssm_guard.enforce import evaluate_endpoint, outcome_for
from ssm_guard.guardrail import (
    cleanup_unused_configs,
    decide_guardrail,
    delete_if_unused,
    guard_ssm_endpoint,
    resolve_endpoint_name,
)

pytestmark = pytest.mark.unit

KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PROD = {"environment": "prod"}
TAG = "ssm-guard:exception-until"


def _in(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _prod_endpoint(account, name="fraud-prod", tags=None, variants=None, **config):
    role = account.role(f"{name}-role")
    account.model(f"{name}-model", role)
    account.endpoint(
        name,
        variants
        or [
            {
                "VariantName": "blue",
                "ModelName": f"{name}-model",
                "EnableSSMAccess": True,
                "InitialInstanceCount": 3,
            }
        ],
        tags=PROD if tags is None else tags,
        **config,
    )
    return role


def _live_config(account, name):
    config_name = account.sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    return account.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)


def _copies(updatable):
    """The configs the guard created (the test's own have other names)."""
    return [c for c in updatable.created if is_guard_config_name(c)]


def _ssm_flags(config):
    return [
        v.get("EnableSSMAccess")
        for v in config["ProductionVariants"] + config.get("ShadowProductionVariants", [])
    ]


# -- enforce mode ----------------------------------------------------------------------------


def test_enforce_reverts_a_production_endpoint_keeping_live_counts(
    account, guard, updatable, alert_inbox
) -> None:
    # GIVEN a production endpoint with SSM on, its variant autoscaled from its config's count
    role = _prod_endpoint(account)
    # WHEN it is evaluated in enforce mode
    outcome = evaluate_endpoint(guard, "fraud-prod")
    # THEN it is updated once to a copy with SSM off, keeping live counts and weights
    assert outcome.decision is Kind.REVERTED
    assert outcome.details["action"] == "reverted"
    assert len(updatable.updates) == 1
    update = updatable.updates[0]
    assert update["RetainAllVariantProperties"] is True
    assert update["EndpointConfigName"] == outcome.details["new_config"]
    live = _live_config(account, "fraud-prod")
    assert live["EndpointConfigName"].startswith("fraud-prod-config-ssm-off-")
    assert _ssm_flags(live) == [False]
    assert live["ProductionVariants"][0]["InitialInstanceCount"] == 3
    # AND no role was given the session policy, and the owners were told
    assert account.attached(role) == []
    [message] = alert_inbox.sns()
    assert message["Subject"] == "[ssm-guard] SSM access reverted on production endpoint fraud-prod"
    assert "\n" not in message["Subject"]
    assert "fraud-prod-config" in message["Message"]
    [event] = alert_inbox.events()
    assert event["detail-type"] == "SageMaker SSM Guard Alert"
    detail = event["detail"]
    assert detail["decision"] == "reverted"
    assert detail["account"] == "123456789012"
    assert detail["region"] == "us-east-1"
    assert detail["old_config"] == "fraud-prod-config"
    assert detail["new_config"] == live["EndpointConfigName"]
    assert detail["variants"] == ["blue"]
    assert detail["console_url"].startswith("https://us-east-1.console.aws.amazon.com/sagemaker/")


def test_revert_copies_kms_data_capture_async_and_shadow_settings(
    account, guard, updatable, alert_inbox
) -> None:
    # GIVEN a production endpoint whose only SSM variant is a shadow, on an encrypted config
    # with data capture and async inference
    role = account.role("r")
    account.model("live", role)
    account.model("candidate", role)
    capture = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 25,
        "DestinationS3Uri": "s3://capture/fraud",
        "KmsKeyId": KMS,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    }
    async_config = {"OutputConfig": {"S3OutputPath": "s3://async/out", "KmsKeyId": KMS}}
    shadow = {
        "VariantName": "candidate",
        "ModelName": "candidate",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
        "EnableSSMAccess": True,
    }
    account.endpoint(
        "shadowed",
        [{"VariantName": "live", "ModelName": "live"}],
        tags=PROD,
        KmsKeyId=KMS,
        DataCaptureConfig=capture,
        AsyncInferenceConfig=async_config,
        ShadowProductionVariants=[shadow],
    )
    source = account.sagemaker.describe_endpoint_config(EndpointConfigName="shadowed-config")
    # WHEN it is evaluated
    outcome = evaluate_endpoint(guard, "shadowed")
    # THEN the new config equals the source but for identity and the shadow's SSM access
    assert outcome.decision is Kind.REVERTED
    assert outcome.ssm_variants == ["candidate"]
    live = _live_config(account, "shadowed")
    for key in ("KmsKeyId", "DataCaptureConfig", "AsyncInferenceConfig", "ProductionVariants"):
        assert live[key] == source[key]
    assert live["ShadowProductionVariants"] == [{**shadow, "EnableSSMAccess": False}]


def test_dry_run_decides_and_changes_nothing(account, guard, updatable, alert_inbox) -> None:
    _prod_endpoint(account)
    guard.dry_run = True
    outcome = evaluate_endpoint(guard, "fraud-prod")
    assert outcome.decision is Kind.REVERTED
    assert outcome.details["action"] == "would-revert"
    assert outcome.reason.startswith("dry run")
    assert updatable.updates == []
    assert _copies(updatable) == []
    assert alert_inbox.sns() == []


# -- monitor mode ----------------------------------------------------------------------------


def test_monitor_alerts_and_attaches_so_ssm_works(account, guard, updatable, alert_inbox) -> None:
    # GIVEN the guard in monitor mode and a production endpoint with SSM on
    guard.settings = dataclasses.replace(guard.settings, guardrail_mode="monitor")
    role = _prod_endpoint(account)
    # WHEN it is evaluated
    outcome = evaluate_endpoint(guard, "fraud-prod")
    # THEN the endpoint is left alone, the role gets the policy, and the owners are told
    assert outcome.decision is Kind.ALERTED
    assert updatable.updates == []
    assert account.attached(role) == [account.policy_arn]
    [message] = alert_inbox.sns()
    assert "monitor mode" in message["Subject"]


# -- exceptions ------------------------------------------------------------------------------


@pytest.fixture
def scheduler_env(monkeypatch):
    monkeypatch.setenv("RECHECK_ROLE_ARN", "arn:aws:iam::123456789012:role/scheduler")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "ssm-guard-enforcer")
    return boto3.client("scheduler")


def test_a_valid_exception_is_granted_once_with_its_expiry_scheduled(
    account, guard, updatable, alert_inbox, scheduler_env
) -> None:
    # GIVEN a production endpoint tagged with an exception two hours ahead
    until = _in(2)
    role = _prod_endpoint(account, tags={**PROD, TAG: until})
    # WHEN it is evaluated twice (a duplicate event)
    outcome = evaluate_endpoint(guard, "fraud-prod")
    again = evaluate_endpoint(guard, "fraud-prod")
    # THEN SSM stays, the role gets the policy, one alert, one expiry re-check scheduled
    assert outcome.decision is Kind.EXCEPTION_GRANTED
    assert again.decision is Kind.EXCEPTION_GRANTED
    assert updatable.updates == []
    assert account.attached(role) == [account.policy_arn]
    [message] = alert_inbox.sns()
    assert message["Subject"] == f"[ssm-guard] SSM exception granted on fraud-prod until {until}"
    [schedule] = scheduler_env.list_schedules()["Schedules"]
    described = scheduler_env.get_schedule(Name=schedule["Name"])
    assert described["ActionAfterCompletion"] == "DELETE"
    assert described["ScheduleExpression"].startswith("at(")
    assert described["Target"]["Arn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:ssm-guard-enforcer"
    )
    payload = json.loads(described["Target"]["Input"])
    assert payload["detail"]["EndpointName"] == "fraud-prod"
    assert payload["detail"]["Reason"] == "expiry"


def test_an_expired_exception_is_reverted_and_alerted(
    account, guard, updatable, alert_inbox
) -> None:
    _prod_endpoint(account, tags={**PROD, TAG: _in(-1)})
    outcome = evaluate_endpoint(guard, "fraud-prod")
    assert outcome.decision is Kind.EXCEPTION_EXPIRED
    assert outcome.details["action"] == "reverted"
    assert len(updatable.updates) == 1
    [message] = alert_inbox.sns()
    assert message["Subject"] == "[ssm-guard] SSM exception expired on fraud-prod; access reverted"


@pytest.mark.parametrize(
    ("value", "why"),
    [("", "has no time"), ("next friday", "not an ISO-8601"), ("far", "far ahead")],
)
def test_a_refused_exception_is_reverted_and_alerted(
    account, guard, updatable, alert_inbox, value, why
) -> None:
    # GIVEN an exception tag that is missing its time, malformed, or too far ahead
    value = _in(48) if value == "far" else value
    why = "more than 24 hours ahead" if why == "far ahead" else why
    _prod_endpoint(account, tags={**PROD, TAG: value})
    # WHEN it is evaluated
    outcome = evaluate_endpoint(guard, "fraud-prod")
    # THEN access is taken back, and the alert says why the exception was refused
    assert outcome.decision is Kind.EXCEPTION_REFUSED
    assert why in outcome.reason
    assert len(updatable.updates) == 1
    [message] = alert_inbox.sns()
    assert message["Subject"] == "[ssm-guard] SSM exception refused on fraud-prod; access reverted"
    assert why in message["Message"]


def test_tags_are_read_again_before_reverting(account, guard, updatable, alert_inbox) -> None:
    # GIVEN a snapshot read before someone tagged a valid exception
    _prod_endpoint(account)
    snapshot = sm_api.read_endpoint(guard.sagemaker, "fraud-prod")
    arn = snapshot.arn
    account.sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": TAG, "Value": _in(1)}])
    the_plan = plan(snapshot, guard.settings)
    # WHEN the guardrail acts on the stale snapshot
    outcome = guard_ssm_endpoint(guard, snapshot, the_plan, outcome_for(snapshot, the_plan))
    # THEN it sees the live tags and grants the exception instead of reverting
    assert outcome.decision is Kind.EXCEPTION_GRANTED
    assert updatable.updates == []


# -- busy endpoints, retries, cleanup --------------------------------------------------------


def test_a_busy_endpoint_is_retried_later_reusing_the_same_config(
    account, guard, updatable, alert_inbox
) -> None:
    # GIVEN a production endpoint that is in the middle of another update
    _prod_endpoint(account)
    updatable.busy = True
    # WHEN it is evaluated
    first = evaluate_endpoint(guard, "fraud-prod")
    # THEN the outcome asks for a retry, the copy is kept, nobody is alerted yet
    assert first.decision is Kind.RETRY_LATER
    assert len(_copies(updatable)) == 1
    assert alert_inbox.sns() == []
    # WHEN the retry comes after the update finished
    updatable.busy = False
    second = evaluate_endpoint(guard, "fraud-prod")
    # THEN the same copy is used, not a second one
    assert second.decision is Kind.REVERTED
    assert len(_copies(updatable)) == 1
    assert second.details["new_config"] == first.details["new_config"]
    assert len(alert_inbox.sns()) == 1


def test_a_refused_update_cleans_up_its_config_and_alerts(
    account, guard, updatable, alert_inbox
) -> None:
    _prod_endpoint(account)
    updatable.fail_with = ("AccessDeniedException", "not authorized to perform UpdateEndpoint")
    outcome = evaluate_endpoint(guard, "fraud-prod")
    assert outcome.decision is Kind.REVERT_FAILED
    assert "AccessDeniedException" in outcome.details["error"]
    assert updatable.configs() == ["fraud-prod-config"]
    [message] = alert_inbox.sns()
    assert message["Subject"].startswith("[ssm-guard] Could not revert SSM access on fraud-prod")


def test_a_config_of_the_derived_name_that_is_not_our_copy_is_never_used(
    account, guard, updatable, alert_inbox
) -> None:
    # GIVEN someone else's config squatting on the derived name, with SSM on
    _prod_endpoint(account)
    guard.dry_run = True
    name = evaluate_endpoint(guard, "fraud-prod").details["new_config"]
    guard.dry_run = False
    account.sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "blue",
                "ModelName": "fraud-prod-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "EnableSSMAccess": True,
            }
        ],
    )
    # WHEN the guard evaluates
    outcome = evaluate_endpoint(guard, "fraud-prod")
    # THEN it neither updates to it nor deletes it
    assert outcome.decision is Kind.REVERT_FAILED
    assert updatable.updates == []
    assert name in updatable.configs()


def test_an_in_use_config_is_never_deleted(account, guard, updatable) -> None:
    # GIVEN an endpoint reverted to our copy, and an old copy of ours nobody uses
    _prod_endpoint(account)
    ours = evaluate_endpoint(guard, "fraud-prod").details["new_config"]
    # WHEN cleanup is asked to delete the copy in use
    # THEN it refuses; a config not made by the guard is never deleted either
    assert delete_if_unused(guard, ours) is False
    assert delete_if_unused(guard, "fraud-prod-config") is False
    assert ours in updatable.configs()


def test_cleanup_deletes_only_old_unused_configs_of_ours(account, guard, updatable) -> None:
    # GIVEN a copy in use and a copy left over by a revert that never happened
    _prod_endpoint(account)
    _prod_endpoint(account, name="other-prod")
    ours = evaluate_endpoint(guard, "fraud-prod").details["new_config"]
    updatable.fail_with = ("ValidationException", "something else")
    updatable.busy = True
    leftover = evaluate_endpoint(guard, "other-prod").details["new_config"]
    # WHEN the sweep's cleanup runs an hour later, first as a dry run
    later = datetime.now(UTC) + timedelta(hours=2)
    guard.dry_run = True
    assert cleanup_unused_configs(guard, now=later) == [leftover]
    assert leftover in updatable.configs()
    guard.dry_run = False
    assert cleanup_unused_configs(guard, now=datetime.now(UTC)) == []
    deleted = cleanup_unused_configs(guard, now=later)
    # THEN only the leftover is gone, and only once it is old enough
    assert deleted == [leftover]
    assert ours in updatable.configs()
    assert "fraud-prod-config" in updatable.configs()


# -- the session policy after a revert -------------------------------------------------------


def test_policy_leaves_a_role_only_when_no_other_ssm_endpoint_uses_it(
    account, guard, updatable
) -> None:
    # GIVEN two roles holding the policy: one shared with a dev SSM endpoint, one prod-only
    shared, alone = account.role("shared"), account.role("alone")
    account.model("m-shared", shared)
    account.model("m-alone", alone)
    account.endpoint(
        "dev-ep", [{"VariantName": "v", "ModelName": "m-shared", "EnableSSMAccess": True}]
    )
    for role in (shared, alone):
        account.iam.attach_role_policy(
            RoleName=role.rsplit("/", 1)[-1], PolicyArn=account.policy_arn
        )
    account.endpoint(
        "prod-ep",
        [
            {"VariantName": "a", "ModelName": "m-shared", "EnableSSMAccess": True},
            {"VariantName": "b", "ModelName": "m-alone", "EnableSSMAccess": True},
        ],
        tags=PROD,
    )
    # WHEN the production endpoint is reverted
    outcome = evaluate_endpoint(guard, "prod-ep")
    # THEN only the prod-only role loses the policy
    assert outcome.decision is Kind.REVERTED
    assert outcome.details["roles_detached"] == [alone]
    assert account.attached(shared) == [account.policy_arn]
    assert account.attached(alone) == []


# -- the loop check --------------------------------------------------------------------------


def test_the_events_of_our_own_revert_end_as_no_ops(account, guard, updatable, alert_inbox) -> None:
    from ssm_guard.config_watch import on_config_state_change
    from ssm_guard.handlers import on_endpoint_state_change

    # GIVEN a production endpoint the guard has reverted
    _prod_endpoint(account)
    reverted = evaluate_endpoint(guard, "fraud-prod")
    assert reverted.decision is Kind.REVERTED
    alert_inbox.sns()
    [alert_event] = alert_inbox.events()
    arn = account.sagemaker.describe_endpoint(EndpointName="fraud-prod")["EndpointArn"]
    # WHEN the events the revert causes arrive: IN_SERVICE (twice), the new config's state
    # change, and the guard's own alert event
    in_service = {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Endpoint State Change",
        "detail": {
            "EndpointName": "fraud-prod",
            "EndpointArn": arn,
            "EndpointStatus": "IN_SERVICE",
        },
    }
    results = [on_endpoint_state_change(in_service, guard) for _ in range(2)]
    config_event = {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Endpoint Config State Change",
        "detail": {"EndpointConfigName": reverted.details["new_config"]},
    }
    watched = on_config_state_change(config_event, guard)
    own = on_endpoint_state_change(alert_event, guard)
    # THEN each is a no-op: no second update, no second alert
    assert [r["decision"] for r in results] == ["no-ssm", "no-ssm"]
    assert watched["decision"] == "no-ssm"
    assert own["decision"] == "ignored"
    assert len(updatable.updates) == 1
    assert alert_inbox.sns() == []
    assert alert_inbox.events() == []


# -- SSM age on non-production endpoints ------------------------------------------------------


def _set_last_modified(name: str, when: datetime) -> None:
    from moto.sagemaker.models import sagemaker_backends

    sagemaker_backends["123456789012"]["us-east-1"].endpoints[name].last_modified_time = when


def test_ssm_age_limit_reverts_old_non_production_access(
    account, guard, updatable, alert_inbox
) -> None:
    guard.settings = dataclasses.replace(guard.settings, max_ssm_age_hours=8)
    _prod_endpoint(account, name="dev-old", tags={"environment": "dev"})
    _prod_endpoint(account, name="dev-new", tags={"environment": "dev"})
    _set_last_modified("dev-old", datetime.now(UTC) - timedelta(hours=9))
    old = evaluate_endpoint(guard, "dev-old")
    new = evaluate_endpoint(guard, "dev-new")
    assert old.decision is Kind.REVERTED
    assert "more than 8 hours" in old.reason
    assert new.decision is Kind.ATTACHED
    assert len(updatable.updates) == 1


def test_decide_guardrail_is_pure(account, guard) -> None:
    _prod_endpoint(account, tags={"environment": "dev"})
    snapshot = sm_api.read_endpoint(account.sagemaker, "fraud-prod")
    now = datetime.now(UTC)
    assert decide_guardrail(snapshot, False, guard.settings, now).action == "allow"
    assert decide_guardrail(snapshot, True, guard.settings, now).action == "take-back"


# -- finding an endpoint from an ARN ----------------------------------------------------------


def test_an_arn_with_the_name_lower_cased_finds_the_endpoint(account, guard, updatable) -> None:
    _prod_endpoint(account, name="Fraud-Prod", tags={})
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/fraud-prod"
    assert resolve_endpoint_name(guard, arn) == "Fraud-Prod"
    assert resolve_endpoint_name(guard, arn.replace("fraud", "none")) is None


# -- the exact calls (botocore Stubber) --------------------------------------------------------


def test_a_concurrent_create_is_reused_and_the_update_keeps_variant_properties(guard) -> None:
    from botocore.stub import Stubber

    from ssm_guard.clone import clone_without_ssm
    from ssm_guard.guardrail import apply_config

    # GIVEN a copy that a concurrent evaluation (or an earlier attempt) created already
    client = boto3.client("sagemaker")
    source = {
        "EndpointConfigName": "c",
        "ProductionVariants": [
            {
                "VariantName": "v",
                "ModelName": "m",
                "InstanceType": "ml.m5.large",
                "EnableSSMAccess": True,
            }
        ],
    }
    kwargs = clone_without_ssm(source, {})
    name = kwargs["EndpointConfigName"]
    existing = {
        "EndpointConfigName": name,
        "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}",
        "ProductionVariants": [{**source["ProductionVariants"][0], "EnableSSMAccess": False}],
        "CreationTime": datetime.now(UTC),
    }
    guard.sagemaker = client
    with Stubber(client) as stub:
        stub.add_client_error(
            "create_endpoint_config",
            "ValidationException",
            f'Cannot create already existing endpoint configuration "arn:...{name}".',
            expected_params=kwargs,
        )
        stub.add_response("describe_endpoint_config", existing, {"EndpointConfigName": name})
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e"},
            {"EndpointName": "e", "EndpointConfigName": name, "RetainAllVariantProperties": True},
        )
        # WHEN the config is applied
        applied = apply_config(guard, "e", kwargs)
        # THEN the existing copy is used, and the update keeps live counts and weights
        stub.assert_no_pending_responses()
    assert applied.status == "updated"
    assert applied.created is False


def test_the_recheck_target_is_the_enforcer_wherever_the_guardrail_runs() -> None:
    from ssm_guard.guardrail import RecheckTarget

    arn = "arn:aws:sagemaker:eu-west-1:111122223333:endpoint/e"
    role = "arn:aws:iam::111122223333:role/scheduler"
    enforcer = "arn:aws:lambda:eu-west-1:111122223333:function:stack-EnforcerFunction-x"
    # The enforcer invokes itself; the sweep names the enforcer; nothing configured: no schedule.
    itself = RecheckTarget.from_env(
        arn,
        {"RECHECK_ROLE_ARN": role, "AWS_LAMBDA_FUNCTION_NAME": "enf", "AWS_REGION": "eu-west-1"},
    )
    sweep = RecheckTarget.from_env(
        arn,
        {
            "RECHECK_ROLE_ARN": role,
            "RECHECK_FUNCTION_ARN": enforcer,
            "AWS_LAMBDA_FUNCTION_NAME": "sw",
        },
    )
    assert itself == RecheckTarget("arn:aws:lambda:eu-west-1:111122223333:function:enf", role)
    assert sweep == RecheckTarget(enforcer, role)
    assert RecheckTarget.from_env(arn, {"AWS_LAMBDA_FUNCTION_NAME": "enf"}) is None
