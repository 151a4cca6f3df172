"""`make demo-org`: one guard for a whole AWS Organization, end to end on the embedded local AWS.

It runs an organization (a central account and two member accounts, ssm_guard.local.org) with
template.yaml deployed as the central stack and as each member's stack, then, through each
account's own SageMaker API:

* ml-team-1 creates a dev endpoint with SSM access on: the centre attaches the member account's
  session policy to the member's execution role and publishes the target IDs in the member's
  Parameter Store;
* ml-team-2 (alias vision-prod) creates a production endpoint with SSM access on: the centre
  reverts it in that account, and the alert names the account and its alias;
* an account outside the organization forwards an event anyway: refused, alerted, untouched;
* the sweep fans out one run per account and region; `ssm-guard audit --all-accounts` prints one
  table.

It exits 0 only when every check held. The guard is told nothing: the events travel through the
member rules, the central bus and the central rules the template declares.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

from ssm_guard.local.api import LocalAws
from ssm_guard.local.demo import IMAGE, TRUST, Report
from ssm_guard.local.org import LocalOrg

TARGETS = "/sagemaker-ssm-guard/targets"


class Account:
    """One account of the organization, acted in through its own credentials."""

    def __init__(self, org: LocalOrg, account: str) -> None:
        self.id = account
        self.sagemaker = org.client(account, "sagemaker")
        self.iam = org.client(account, "iam")
        self.ssm = org.client(account, "ssm")

    def ssm_endpoint(self, name: str, tags: dict[str, str], instances: int = 1) -> str:
        role = self.iam.create_role(RoleName=f"{name}-execution", AssumeRolePolicyDocument=TRUST)
        self.sagemaker.create_model(
            ModelName=f"{name}-model",
            ExecutionRoleArn=role["Role"]["Arn"],
            PrimaryContainer={"Image": IMAGE},
        )
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"{name}-model",
                    "InitialInstanceCount": instances,
                    "InstanceType": "ml.m5.large",
                    "EnableSSMAccess": True,
                }
            ],
        )
        self.sagemaker.create_endpoint(
            EndpointName=name,
            EndpointConfigName=f"{name}-config",
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
        return str(role["Role"]["Arn"])

    def attached(self, role_arn: str) -> list[str]:
        name = role_arn.rsplit("/", 1)[-1]
        found = self.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        return [p["PolicyArn"] for p in found]

    def targets(self, endpoint: str) -> list[str]:
        try:
            value = self.ssm.get_parameter(Name=f"{TARGETS}/{endpoint}")["Parameter"]["Value"]
        except self.ssm.exceptions.ParameterNotFound:
            return []
        return [t["target"] for t in json.loads(value).get("targets", [])]

    def ssm_on(self, endpoint: str) -> tuple[str, str, list[bool]]:
        described = self.sagemaker.describe_endpoint(EndpointName=endpoint)
        config = self.sagemaker.describe_endpoint_config(
            EndpointConfigName=described["EndpointConfigName"]
        )
        ssm = [bool(v.get("EnableSSMAccess")) for v in config["ProductionVariants"]]
        return described["EndpointStatus"], described["EndpointConfigName"], ssm


class Inbox:
    """An SQS queue subscribed to the central alert topic: what the on-call reads."""

    def __init__(self, aws: LocalAws) -> None:
        self.sqs = aws.client("sqs", max_attempts=3)
        topic = (aws.stack or {}).get("outputs", {}).get("AlertTopicArn", "")
        self.url = self.sqs.create_queue(QueueName="org-demo-on-call")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        aws.client("sns").subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"]
        )

    def read(self) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
            if not batch.get("Messages"):
                return found
            for message in batch["Messages"]:
                body = json.loads(message["Body"])
                found.append({"subject": body["Subject"], "message": body["Message"]})
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


def _wait(probe: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(0.2)
    return False


def _account_line(message: str) -> str:
    return next((line for line in message.splitlines() if line.startswith("Account:")), "")


def run(delay: float, timeout: float) -> Report:
    report = Report()
    started = time.monotonic()
    with LocalAws(delay=delay) as aws, LocalOrg.start(aws, members=2) as org:
        report.section("1. An organization on the local AWS")
        for line in org.describe():
            report.note(line)
        inbox = Inbox(aws)
        dev_team, vision = (Account(org, account) for account in org.members)
        vision.iam.create_account_alias(AccountAlias="vision-prod")
        central = Account(org, org.central)

        report.section(f"2. ml-team-1 ({dev_team.id}): a dev endpoint with SSM access on")
        dev_role = dev_team.ssm_endpoint("fraud-detector-dev", {"environment": "dev"})
        policy = f"arn:aws:iam::{dev_team.id}:policy/ssm-guard-sagemaker-ssm-session-{aws.region}"
        _wait(lambda: policy in dev_team.attached(dev_role), timeout)
        aws.settle(timeout=timeout)
        report.check(policy in dev_team.attached(dev_role), f"its role holds {policy}")
        targets = dev_team.targets("fraud-detector-dev")
        for target in targets:
            report.note(target)
        report.check(len(targets) == 1, "its target ID is in ml-team-1's Parameter Store")
        report.check(
            central.targets("fraud-detector-dev") == [], "and not in the central account's"
        )

        report.section(f"3. ml-team-2 ({vision.id}, vision-prod): production with SSM access on")
        vision.ssm_endpoint("image-classifier-prod", {"environment": "prod"}, instances=2)

        def reverted() -> bool:
            status, config, _ = vision.ssm_on("image-classifier-prod")
            return status == "InService" and config != "image-classifier-prod-config"

        _wait(reverted, timeout)
        aws.settle(timeout=timeout)
        status, config, ssm = vision.ssm_on("image-classifier-prod")
        report.note(f"config image-classifier-prod-config -> {config}")
        report.check(status == "InService" and not any(ssm), "reverted in ml-team-2's account")
        alerts = inbox.read()
        revert_alerts = [a for a in alerts if "image-classifier-prod" in a["subject"]]
        for alert in revert_alerts:
            report.note(f"alert: {alert['subject']}")
            report.note(f"       {_account_line(alert['message'])}")
        report.check(
            any(f"{vision.id} (vision-prod)" in a["message"] for a in revert_alerts),
            "the central alert names the account and its alias",
        )

        outsider = Account(org, org.outsider())
        report.section(f"4. An account outside the organization ({outsider.id})")
        mark = aws.mark()
        rogue_role = outsider.ssm_endpoint("rogue-endpoint", {"environment": "dev"})
        runs = aws.wait_for_invocations(
            function="EnforcerFunction",
            predicate=lambda i: i.endpoint_name == "rogue-endpoint",
            since=mark,
            timeout=timeout,
        )
        aws.settle(timeout=timeout)
        report.note(f"guard decision: {runs[0].decision}")
        report.check(runs[0].decision == "foreign-account", "its event is refused")
        report.check(outsider.attached(rogue_role) == [], "nothing changed in that account")
        report.check(
            any(outsider.id in a["subject"] for a in inbox.read()), "and the centre is alerted"
        )

        report.section("5. The sweep: one run per account and region")
        mark = aws.mark()
        fan_out = aws.fire_schedule("SweepFunction", timeout=timeout)
        units = [
            i.result
            for i in aws.wait_for_invocations(
                function="SweepFunction",
                predicate=lambda i: isinstance(i.result, dict) and "account" in i.result,
                since=mark,
                count=len(org.members) + 1,
                timeout=timeout,
            )
        ]
        report.note(f"scheduled run: {fan_out[0].result}")
        for unit in sorted(units, key=lambda u: str(u["account"])):
            report.note(
                f"{unit['account']} {unit['region']}: {unit.get('endpoints')} endpoints, "
                f"{unit.get('decisions')}"
            )
        report.check(
            {str(u["account"]) for u in units} == {org.central, *org.members},
            "every account of the organization swept, each in its own invocation",
        )

        report.section("6. ssm-guard audit --all-accounts")
        done = subprocess.run(  # noqa: S603 - our own command, fixed arguments
            [sys.executable, "-m", "ssm_guard.cli.main", "audit", "--all-accounts"],
            env={**os.environ, **aws.env()},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for line in done.stdout.splitlines():
            report.note(line)
        report.check(
            done.returncode == 0 and all(a in done.stdout for a in org.members),
            "one table, every member account",
            done.stderr.strip()[-300:],
        )

        report.function_runs(aws.invocations)
    report.section(f"Done in {time.monotonic() - started:.0f}s")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ssm-guard-demo-org", description=__doc__.split("\n")[0])
    parser.add_argument("--delay", type=float, default=0.5, help="endpoint transitions (s)")
    parser.add_argument("--timeout", type=float, default=90.0, help="per wait (s)")
    args = parser.parse_args(argv)
    report = run(args.delay, args.timeout)
    if report.failures:
        print(f"\n{len(report.failures)} check(s) failed: {'; '.join(report.failures)}")
        return 1
    print("\nEvery check held.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
