"""One guard for a whole AWS Organization: events from member accounts are acted on there,
through the member role; foreign accounts and broken members change nothing and are alerted.

moto keeps accounts apart by credentials: AssumeRole into a role of account B returns keys that
moto maps to B, as AWS does. Member accounts here are built through such credentials.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from _org import (
    CENTRAL,
    FOREIGN,
    MEMBER,
    OTHER_MEMBER,
    REGION,
    AccountOf,
    broken_member,
    endpoint_event,
)
from botocore.exceptions import ClientError

from ssm_guard import accounts
from ssm_guard.accounts import (
    AccountRefusedError,
    MemberGuard,
    OrgSettings,
    Place,
    PlaceError,
    place_of,
)
from ssm_guard.aws import sts as sts_api
from ssm_guard.config_watch import on_config_state_change
from ssm_guard.discovery import on_targets_trigger
from ssm_guard.enforce import Guard
from ssm_guard.handlers import on_endpoint_state_change
from ssm_guard.settings import SettingsError

pytestmark = pytest.mark.unit

# -- where an event comes from ----------------------------------------------------------------


def test_the_envelope_names_the_account_and_region() -> None:
    assert place_of(endpoint_event(MEMBER, "ep")) == Place(MEMBER, REGION)


def test_a_recheck_event_without_envelope_is_placed_by_its_endpoint_arn() -> None:
    # GIVEN the guard's own re-check event: Scheduler invokes the enforcer with the ARN only
    arn = f"arn:aws:sagemaker:eu-west-1:{MEMBER}:endpoint/ep"
    event = {"source": "sagemaker-ssm-guard", "resources": [arn], "detail": {"EndpointArn": arn}}
    # THEN it is about the endpoint's account and region
    assert place_of(event, REGION) == Place(MEMBER, "eu-west-1")


def test_a_cloudtrail_tag_call_is_placed_by_the_resource_it_tagged() -> None:
    arn = f"arn:aws:sagemaker:{REGION}:{MEMBER}:endpoint/ep"
    event = {
        "source": "aws.sagemaker",
        "detail-type": "AWS API Call via CloudTrail",
        "detail": {"requestParameters": {"resourceArn": arn}},
    }
    assert place_of(event, REGION) == Place(MEMBER, REGION)


def test_a_schedule_or_a_hand_made_event_is_the_guards_own_place() -> None:
    scheduled = {
        "source": "aws.events",
        "account": CENTRAL,
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{CENTRAL}:rule/sweep"],
    }
    assert place_of(scheduled, REGION) == Place(CENTRAL, REGION)
    assert place_of({}, REGION) is None
    assert place_of("not an event", REGION) is None


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (endpoint_event(MEMBER, "ep", account=FOREIGN), "does not own the resource"),
        (endpoint_event(MEMBER, "ep", region="eu-west-1"), "not the region of the resource"),
        (endpoint_event(MEMBER, "ep", account="12345"), "12-digit"),
        (endpoint_event(MEMBER, "ep", region="moon-1"), "not a region"),
    ],
)
def test_an_event_that_contradicts_itself_is_refused(event: dict, why: str) -> None:
    with pytest.raises(PlaceError, match=why):
        place_of(event, REGION)


def test_settings_refuse_what_the_template_cannot_give() -> None:
    with pytest.raises(SettingsError, match="DEPLOYMENT_ROLE"):
        OrgSettings.from_env({"DEPLOYMENT_ROLE": "everywhere"})
    with pytest.raises(SettingsError, match="12 digits"):
        OrgSettings.from_env({"DEPLOYMENT_ROLE": "central", "MEMBER_ACCOUNTS": "1234,5678"})
    with pytest.raises(SettingsError, match="region"):
        OrgSettings.from_env({"DEPLOYMENT_ROLE": "central", "GUARDED_REGIONS": "us-east-1,mars"})


def test_the_session_name_says_which_function_acts() -> None:
    settings = OrgSettings.from_env(
        {"NAME_PREFIX": "ssm-guard", "AWS_LAMBDA_FUNCTION_NAME": "stack-EnforcerFunction-AB12"}
    )
    assert settings.session_name == "ssm-guard-stack-EnforcerFunction-AB12"
    assert len(accounts.session_name("p", "x" * 100)) == 64


# -- the single-account default is unchanged --------------------------------------------------


def test_a_single_account_deployment_gets_the_plain_guard_without_any_call(
    account, monkeypatch
) -> None:
    # GIVEN the default deployment (no DEPLOYMENT_ROLE) and an event from another account
    from _handler_runs import record_calls

    monkeypatch.delenv("DEPLOYMENT_ROLE", raising=False)
    calls = record_calls(monkeypatch)
    event = endpoint_event(MEMBER, "ep")
    # WHEN the handlers screen it and ask for a guard
    refusal = accounts.refused(event)
    guard = accounts.guard_for_event(event)
    # THEN nothing is refused, the guard is the usual one, and no AWS call was made for it
    assert refusal is None
    assert type(guard) is Guard
    assert calls == []


def test_a_single_account_enforcer_acts_as_before(account, guard) -> None:
    # GIVEN the default deployment and an SSM endpoint of this account
    role = account.role("dev-role")
    account.model("dev-model", role)
    account.endpoint(
        "dev-ep", [{"VariantName": "v", "ModelName": "dev-model", "EnableSSMAccess": True}]
    )
    # WHEN its event arrives
    result = on_endpoint_state_change(endpoint_event(CENTRAL, "dev-ep"), guard)
    # THEN the session policy is attached here, as without any organization
    assert result["decision"] == "attached"
    assert account.attached(role) == [account.policy_arn]


# -- the assumed role: actions land in the member account --------------------------------------


def test_a_member_event_attaches_the_member_accounts_policy_to_the_member_role(central) -> None:
    # GIVEN a member account with its session policy and a dev endpoint with SSM access on
    member = AccountOf(MEMBER)
    policy = member.session_policy()
    role = member.ssm_endpoint("dev-ep", tags={"environment": "dev"})
    # WHEN the endpoint's event reaches the central enforcer
    result = on_endpoint_state_change(endpoint_event(MEMBER, "dev-ep"))
    # THEN the member's policy went onto the member's role, through the member role
    assert result["decision"] == "attached", result
    assert member.attached(role) == [policy]
    assert policy.startswith(f"arn:aws:iam::{MEMBER}:policy/")
    # AND nothing of the kind exists in the central account
    names = [r["RoleName"] for r in central.iam.list_roles()["Roles"]]
    assert "dev-ep-role" not in names


def test_member_targets_are_published_in_the_members_parameter_store(central) -> None:
    # GIVEN a member endpoint with SSM access on
    member = AccountOf(MEMBER)
    member.ssm_endpoint("dev-ep")
    # WHEN its event reaches the central targets function
    result = on_targets_trigger(endpoint_event(MEMBER, "dev-ep"))
    # THEN the parameter is in the member's Parameter Store, not in the central one
    name = "/sagemaker-ssm-guard/targets/dev-ep"
    assert result["endpoint_name"] == "dev-ep"
    assert member.ssm.get_parameter(Name=name)["Parameter"]["Name"] == name
    with pytest.raises(ClientError, match="ParameterNotFound"):
        central.ssm.get_parameter(Name=name)


def test_a_member_guard_keeps_alerts_and_records_in_the_central_account(central) -> None:
    # WHEN the centre asks for a guard acting in a member account
    guard = accounts.guard_for(Place(MEMBER, REGION))
    assert isinstance(guard, MemberGuard)
    assert guard.settings.policy_arn == (
        f"arn:aws:iam::{MEMBER}:policy/ssm-guard-sagemaker-ssm-session-{REGION}"
    )
    # THEN what it reads and changes is the member's; alerts go to the central topic (the
    # member account has no topic at all)
    assert guard.client("sts").get_caller_identity()["Account"] == MEMBER
    assert guard.client("ssm").meta.region_name == REGION
    assert guard.client("sns").list_topics()["Topics"]


def test_member_credentials_are_assumed_once_while_they_last(central, monkeypatch) -> None:
    assumed: list[str] = []
    real = sts_api.assume_role

    def counting(client: Any, role_arn: str, session_name: str) -> Any:
        assumed.append(role_arn)
        return real(client, role_arn, session_name)

    monkeypatch.setattr(sts_api, "assume_role", counting)
    accounts.guard_for(Place(MEMBER, REGION))
    accounts.guard_for(Place(MEMBER, "eu-west-1"))
    assert assumed == [f"arn:aws:iam::{MEMBER}:role/ssm-guard-member"]


def test_an_alert_names_the_member_account_and_its_alias(central, alert_inbox) -> None:
    # GIVEN a member account with an alias and a production config with SSM access on
    member = AccountOf(MEMBER)
    member.iam.create_account_alias(AccountAlias="fraud-team-prod")
    member.ssm_endpoint("fraud-prod", tags={"environment": "prod"})
    event = {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Endpoint Config State Change",
        "account": MEMBER,
        "region": REGION,
        "resources": [f"arn:aws:sagemaker:{REGION}:{MEMBER}:endpoint-config/fraud-prod-config"],
        "detail": {"EndpointConfigName": "fraud-prod-config"},
    }
    # WHEN the central config watch reads it (through the member role)
    result = on_config_state_change(event)
    # THEN the central topic's alert names the member account and its alias
    assert result["decision"] == "config-early-warning"
    (message,) = alert_inbox.sns()
    assert f"Account:       {MEMBER} (fraud-team-prod)" in message["Message"]


# -- a foreign account's event changes nothing and is alerted ----------------------------------


def test_an_event_from_a_foreign_account_changes_nothing_and_is_alerted(
    central, alert_inbox
) -> None:
    # GIVEN an account outside the organization with an SSM endpoint
    foreign = AccountOf(FOREIGN)
    role = foreign.ssm_endpoint("dev-ep")
    # WHEN its event reaches the central enforcer
    result = on_endpoint_state_change(endpoint_event(FOREIGN, "dev-ep"))
    # THEN nothing changed there, and the centre is alerted
    assert result["decision"] == "foreign-account"
    assert "not a member" in result["reason"]
    assert result["alert"] == "sent"
    assert foreign.attached(role) == []
    (message,) = alert_inbox.sns()
    assert FOREIGN in message["Subject"]
    assert "nothing was read or changed" in message["Message"]


def test_an_event_whose_account_disagrees_with_its_endpoint_is_refused(central) -> None:
    member = AccountOf(MEMBER)
    role = member.ssm_endpoint("dev-ep")
    event = endpoint_event(MEMBER, "dev-ep", account=OTHER_MEMBER)
    result = on_endpoint_state_change(event)
    assert result["decision"] == "foreign-account"
    assert member.attached(role) == []


def test_the_targets_function_refuses_quietly_the_enforcer_alerts(central, alert_inbox) -> None:
    result = on_targets_trigger(endpoint_event(FOREIGN, "dev-ep"))
    assert result["decision"] == "foreign-account"
    assert alert_inbox.sns() == []


def test_membership_comes_from_the_organization_when_no_list_is_given(central, monkeypatch) -> None:
    # GIVEN an organization managed from the central account, with one member account
    organizations = boto3.client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    created = organizations.create_account(AccountName="ml", Email="ml@example.com")
    member_id = created["CreateAccountStatus"]["AccountId"]
    monkeypatch.delenv("MEMBER_ACCOUNTS")
    settings = OrgSettings.from_env()
    # THEN its accounts are members, and any other account is not
    assert member_id in accounts.member_accounts(settings)
    assert accounts.check_place(Place(member_id, REGION), settings) is None
    refusal = accounts.check_place(Place(FOREIGN, REGION), settings)
    assert refusal is not None
    assert str(refusal.decision) == "foreign-account"


def test_an_unreadable_organization_refuses_every_other_account(central, monkeypatch) -> None:
    # GIVEN no list, and a central account that may not call ListAccounts (AWS answers
    # AccessDenied to any account but the management account and a delegated administrator)
    from ssm_guard.aws import organizations as org_api

    def denied(client: Any) -> frozenset[str]:
        raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "ListAccounts")

    monkeypatch.delenv("MEMBER_ACCOUNTS")
    monkeypatch.setattr(org_api, "active_account_ids", denied)
    # WHEN a member's event is screened
    refusal = accounts.refused(endpoint_event(MEMBER, "dev-ep"))
    # THEN the member cannot be confirmed: refused, with what to do
    assert refusal is not None
    assert "cannot be read" in refusal.reason
    assert "MemberAccounts" in refusal.reason


# -- a broken member is reported; the others carry on ------------------------------------------


def test_a_member_whose_role_cannot_be_assumed_is_reported_and_alerted(
    central, alert_inbox, monkeypatch
) -> None:
    broken_member(monkeypatch, MEMBER)
    result = on_endpoint_state_change(endpoint_event(MEMBER, "dev-ep"))
    assert result["decision"] == "member-unreachable"
    assert "arn:aws:iam::111111111111:role/ssm-guard-member" in result["reason"]
    assert "AccessDenied" in result["reason"]
    (message,) = alert_inbox.sns()
    assert "member role unreachable" in message["Subject"]


def test_every_member_is_visited_a_broken_one_as_its_own_outcome(central, monkeypatch) -> None:
    broken_member(monkeypatch, OTHER_MEMBER)
    units = list(accounts.each_member(OrgSettings.from_env(), dry_run=True))
    found = {unit.place.account: unit for unit in units}
    assert sorted(found) == sorted([MEMBER, OTHER_MEMBER, CENTRAL])
    assert isinstance(found[MEMBER].guard, MemberGuard)
    assert found[MEMBER].guard.dry_run
    assert type(found[CENTRAL].guard) is Guard
    assert found[OTHER_MEMBER].guard is None
    assert found[OTHER_MEMBER].refusal is not None
    assert str(found[OTHER_MEMBER].refusal.decision) == "member-unreachable"


def test_guard_for_never_returns_a_guard_for_a_foreign_account(central) -> None:
    with pytest.raises(AccountRefusedError, match="not a member"):
        accounts.guard_for(Place(FOREIGN, REGION))
