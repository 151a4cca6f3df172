"""An AWS Organization on the embedded local AWS: the central account and N member accounts.

    with LocalAws(delay=0.2) as aws, LocalOrg.start(aws, members=2) as org:
        sagemaker = org.client(org.members[0], "sagemaker")   # acts in that member account
        ...

What it sets up, as a platform team would in AWS:

- an organization managed from the central account (moto's default account, where
  `LocalAws.deploy_stack` deploys) and N member accounts created in it;
- the central stack, template.yaml with DeploymentRole=central, and the policy of its bus
  (moto's CloudFormation lacks AWS::Events::EventBusPolicy: PutPermission does the same);
- in each member account the member stack, the same template with DeploymentRole=member, as
  StackSets would deploy it.

moto keeps accounts apart by credentials: `org.client(account, ...)` assumes
OrganizationAccountAccessRole in that account (the role Organizations creates in the accounts it
creates), and moto maps the keys it returns to that account, as AWS does.

One addition to moto 5.2.5 (`install`): a rule whose target is an event bus forwards the event as
EventBridge does, keeping its id, account, region, time and resources. moto puts a new event on
the target bus instead, in the target's own account, so the central guard could not tell which
account an event came from. The addition runs in the process of the emulator: the organization
needs the local AWS in this process (`LocalAws()` or `ssm-guard local up`, not `isolated=True`).

NOTE: moto does not enforce the central bus's policy (any account may put events on it); the
guard's own membership check (accounts.py) refuses events from outside the organization.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssm_guard.local import runtime as runtime_module
from ssm_guard.local._logging import get_logger

if TYPE_CHECKING:
    from ssm_guard.local.api import LocalAws

log = get_logger(__name__)

ACCESS_ROLE = "OrganizationAccountAccessRole"
MEMBER_STACK = "sagemaker-ssm-guard-member"
CENTRAL_STACK = "sagemaker-ssm-guard-central"
OUTSIDER = "999999999999"
"""An account outside the organization, for showing that its events are refused."""

_originals: dict[str, Any] = {}


# -- EventBridge: rules forward to event buses as EventBridge does ---------------------------


def _is_bus(target: Mapping[str, Any]) -> bool:
    from moto.utilities.arns import parse_arn

    arn = parse_arn(str(target.get("Arn", "")))
    return arn.service == "events" and arn.resource_type == "event-bus"


def _forward(target: Mapping[str, Any], event: dict[str, Any]) -> None:
    from moto.events.models import events_backends
    from moto.utilities.arns import parse_arn

    arn = parse_arn(str(target["Arn"]))
    try:
        bus = events_backends[arn.account][arn.region].describe_event_bus(arn.resource_id)
    except Exception:  # EventBridge drops what it cannot deliver (no such bus): so do we
        log.warning("event bus target not found", extra={"target": target["Arn"]})
        return
    log.info(
        "event forwarded to a bus",
        extra={"target": target["Arn"], "from_account": event.get("account")},
    )
    for rule in list(bus.rules.values()):
        rule.send_to_targets(copy.deepcopy(event))


def _send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
    buses = [target for target in self.targets if _is_bus(target)]
    if not buses:
        _originals["send_to_targets"](self, original_event, transform_input)
        return
    others = copy.copy(self)
    others.targets = [target for target in self.targets if not _is_bus(target)]
    if others.targets:
        _originals["send_to_targets"](others, original_event, transform_input)
    if self.state != "ENABLED" or not self.event_pattern.matches_event(original_event):
        return
    for target in buses:
        _forward(target, original_event)


def install() -> None:
    """Install the forwarding addition (over the emulator's own EventBridge additions)."""
    from moto.events.models import Rule

    if _originals:
        return
    # NOTE: samtranslator warns of "unpublished metrics" for each member stack it translates
    # here; nothing publishes them locally.
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
    _originals["send_to_targets"] = Rule.__dict__["send_to_targets"]
    Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign]


def uninstall() -> None:
    from moto.events.models import Rule

    if _originals and Rule.__dict__.get("send_to_targets") is _send_to_targets:
        Rule.send_to_targets = _originals.pop("send_to_targets")  # type: ignore[method-assign]
    _originals.clear()


# -- the organization ------------------------------------------------------------------------


class LocalOrgError(RuntimeError):
    """The organization could not be set up on the local AWS."""


@dataclass
class LocalOrg:
    aws: LocalAws
    central: str
    organization_id: str
    bus_arn: str
    members: list[str] = field(default_factory=list)
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    _sessions: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def start(
        cls,
        aws: LocalAws,
        *,
        members: int = 2,
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> LocalOrg:
        """Create the organization, deploy the central stack and a member stack in each of
        `members` new accounts."""
        if members < 1:
            raise LocalOrgError("an organization needs at least one member account")
        if runtime_module.current() is None:
            raise LocalOrgError(
                "the organization needs the local AWS in this process (LocalAws() or "
                "`ssm-guard local up`), not isolated=True"
            )
        install()
        overrides = {key: str(value) for key, value in (parameter_overrides or {}).items()}
        organizations = aws.client("organizations", max_attempts=3)
        try:
            found = organizations.describe_organization()["Organization"]
        except Exception:  # noqa: BLE001 - no organization yet: this one creates it
            found = organizations.create_organization(FeatureSet="ALL")["Organization"]
        organization_id = str(found["Id"])
        central = aws.account_id
        stack = aws.deploy_stack(
            stack_name=CENTRAL_STACK,
            parameter_overrides={
                **overrides,
                "DeploymentRole": "central",
                "OrganizationId": organization_id,
            },
        )
        bus_arn = str(stack["outputs"].get("CentralEventBusArn", ""))
        if not bus_arn:
            raise LocalOrgError("the central stack has no CentralEventBusArn output")
        events = aws.client("events", max_attempts=3)
        events.put_permission(
            EventBusName=bus_arn.rsplit("/", 1)[-1],
            Action="events:PutEvents",
            Principal="*",
            StatementId="only-the-organization",
            Condition={
                "Type": "StringEquals",
                "Key": "aws:PrincipalOrgID",
                "Value": organization_id,
            },
        )
        org = cls(aws, central, organization_id, bus_arn, parameter_overrides=overrides)
        for number in range(1, members + 1):
            created = organizations.create_account(
                AccountName=f"ml-team-{number}", Email=f"ml-team-{number}@example.com"
            )["CreateAccountStatus"]
            account = str(created["AccountId"])
            org.deploy_member(account)
            org.members.append(account)
        log.info(
            "organization ready",
            extra={"central": central, "members": org.members, "bus": bus_arn},
        )
        return org

    # -- acting in an account ----------------------------------------------------------------

    def session(self, account: str) -> Any:
        """A boto3 session acting in `account` (the central account's own for it)."""
        import boto3

        from ssm_guard.local.invoker import DUMMY_CREDENTIALS

        if account not in self._sessions:
            if account == self.central:
                credentials = {
                    "aws_access_key_id": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    "aws_secret_access_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    "aws_session_token": DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
                }
            else:
                assumed = self.aws.client("sts").assume_role(
                    RoleArn=f"arn:aws:iam::{account}:role/{ACCESS_ROLE}",
                    RoleSessionName="local-org",
                )["Credentials"]
                credentials = {
                    "aws_access_key_id": assumed["AccessKeyId"],
                    "aws_secret_access_key": assumed["SecretAccessKey"],
                    "aws_session_token": assumed["SessionToken"],
                }
            self._sessions[account] = boto3.session.Session(
                region_name=self.aws.region, **credentials
            )
        return self._sessions[account]

    def client(self, account: str, service: str, *, max_attempts: int = 3) -> Any:
        """A client acting in `account`, on the local AWS, with retries capped."""
        from botocore.config import Config

        config = Config(retries={"max_attempts": max_attempts, "mode": "standard"})
        return self.session(account).client(
            service, endpoint_url=self.aws.endpoint_url, config=config
        )

    # -- member stacks -----------------------------------------------------------------------

    def deploy_member(self, account: str) -> list[str]:
        """The member stack in `account`: template.yaml with DeploymentRole=member, as StackSets
        would deploy it. Returns what moto could not create (skipped)."""
        from ssm_guard.local.deploy import (
            CAPABILITIES,
            _local_code,
            find_template,
            for_moto,
            load_template,
            to_cloudformation,
        )

        path = self.aws.template or find_template()
        parameters = {
            **self.parameter_overrides,
            "DeploymentRole": "member",
            "CentralEventBusArn": self.bus_arn,
        }
        sam, _ = _local_code(load_template(Path(path)), Path(path).parent)
        cfn = to_cloudformation(sam, parameters, region=self.aws.region, account_id=account)
        cfn, skipped = for_moto(cfn, stack_name=MEMBER_STACK)
        cloudformation = self.client(account, "cloudformation", max_attempts=1)
        existing = {
            stack["StackName"]
            for stack in cloudformation.list_stacks()["StackSummaries"]
            if stack["StackStatus"] != "DELETE_COMPLETE"
        }
        deploy = (
            cloudformation.update_stack if MEMBER_STACK in existing else cloudformation.create_stack
        )
        deploy(
            StackName=MEMBER_STACK,
            TemplateBody=json.dumps(cfn),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=CAPABILITIES,
        )
        status = cloudformation.describe_stacks(StackName=MEMBER_STACK)["Stacks"][0]
        if status["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            raise LocalOrgError(
                f"the member stack in {account} ended {status['StackStatus']}: "
                f"{status.get('StackStatusReason', '')}"
            )
        log.info("member stack deployed", extra={"account": account, "skipped": skipped})
        return skipped

    def outsider(self) -> str:
        """An account outside the organization that forwards its events to the central bus
        anyway (what the bus policy forbids in AWS); created once."""
        if OUTSIDER not in self._sessions:
            self.deploy_member(OUTSIDER)
        self.session(OUTSIDER)
        return OUTSIDER

    def describe(self) -> list[str]:
        return [
            f"Organization {self.organization_id}: central account {self.central}, "
            f"members {', '.join(self.members)}",
            f"Central bus {self.bus_arn}; member stacks ({MEMBER_STACK}) forward to it",
        ]

    def stop(self) -> None:
        uninstall()

    def __enter__(self) -> LocalOrg:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


@contextmanager
def organization(aws: LocalAws, members: int = 2, **overrides: str) -> Iterator[LocalOrg]:
    """`LocalOrg.start` as a context manager (the forwarding addition goes with it)."""
    org = LocalOrg.start(aws, members=members, parameter_overrides=overrides)
    try:
        yield org
    finally:
        org.stop()


def up_organization(endpoint_url: str, members: int, overrides: Mapping[str, str]) -> list[str]:
    """`ssm-guard local up --accounts N`: the organization on the emulator running in this
    process at `endpoint_url`; returns what to print."""
    from ssm_guard.cli.common import CliError
    from ssm_guard.local.api import LocalAws

    if members < 1:
        raise CliError("--accounts takes a number of member accounts, 1 or more")
    org = LocalOrg.start(
        LocalAws.connect(endpoint_url), members=members, parameter_overrides=overrides
    )
    example = org.members[0]
    return [
        *org.describe(),
        f"Act in a member account: aws sts assume-role --role-arn "
        f"arn:aws:iam::{example}:role/{ACCESS_ROLE} --role-session-name me "
        "(moto maps the keys it returns to that account)",
    ]
