"""`make demo`: the guard end to end on an embedded local AWS, in under a minute.

It starts an ephemeral local AWS, deploys template.yaml into it, and creates through the
SageMaker API what a platform team has on a normal day:

* a dev endpoint with SSM access on two variants, one of them a multi-container model;
* a production-tagged endpoint with SSM access on (it should not have it);
* a plain endpoint without SSM access.

Then it waits for the guard, prints what the guard did as a person would want to read it, and
exits 0 only when every check held. Nothing here tells the guard what to do: the endpoints'
events reach the functions through the rules the template declares.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ssm_guard.local.api import LocalAws
from ssm_guard.local.invoker import Invocation

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311"
DEV, PROD, PLAIN = "fraud-detector-dev", "image-classifier-prod", "churn-scorer"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@dataclass
class Report:
    """Checks in the order they ran; the demo passes when all of them held."""

    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def section(self, title: str) -> None:
        self.lines.append("")
        self.lines.append(title)
        print(f"\n{title}", flush=True)

    def note(self, text: str) -> None:
        self.lines.append(f"    {text}")
        print(f"    {text}", flush=True)

    def check(self, ok: bool, text: str, why: str = "") -> bool:
        mark = "ok  " if ok else "FAIL"
        line = f"  {mark} {text}" + ("" if ok or not why else f"  ({why})")
        self.lines.append(line)
        print(line, flush=True)
        if not ok:
            self.failures.append(text)
        return ok

    def function_runs(self, invocations: list[Invocation]) -> None:
        """The last section of every demo: what ran, and whether anything raised."""
        errors = [i for i in invocations if not i.ok]
        self.section("7. Function runs")
        self.note(f"{len(invocations)} invocations, {len(errors)} errors")
        for failed in errors:
            self.note(failed.summary())
        self.check(not errors, "no function raised")


class Demo:
    def __init__(self, aws: LocalAws, report: Report) -> None:
        self.aws = aws
        self.report = report
        self.sagemaker = aws.client("sagemaker", max_attempts=3)
        self.iam = aws.client("iam", max_attempts=3)
        self.ssm = aws.client("ssm", max_attempts=3)
        self.sqs = aws.client("sqs", max_attempts=3)
        self.sns = aws.client("sns", max_attempts=3)
        self.outputs: dict[str, str] = dict((aws.stack or {}).get("outputs") or {})
        self.alert_queue_url = ""

    # -- building the account, through the AWS APIs a user would call ---------------------

    def role(self, name: str) -> str:
        role = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
        return str(role["Role"]["Arn"])

    def endpoint(self, name: str, variants: list[dict[str, Any]], tags: dict[str, str]) -> None:
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[
                {"InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0, **variant}
                for variant in variants
            ],
            Tags=[{"Key": "team", "Value": "ml-platform"}],
        )
        self.sagemaker.create_endpoint(
            EndpointName=name,
            EndpointConfigName=f"{name}-config",
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )

    def subscribe_to_alerts(self) -> None:
        topic = self.outputs.get("AlertTopicArn")
        if not topic:
            return
        queue = self.sqs.create_queue(QueueName="demo-on-call-inbox")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        self.alert_queue_url = queue

    def build(self) -> dict[str, str]:
        roles = {
            "scoring": self.role("fraud-scoring-execution"),
            "pipeline": self.role("fraud-pipeline-execution"),
            "vision": self.role("vision-execution"),
            "churn": self.role("churn-execution"),
        }
        self.sagemaker.create_model(
            ModelName="fraud-xgb",
            ExecutionRoleArn=roles["scoring"],
            PrimaryContainer={"Image": IMAGE},
        )
        self.sagemaker.create_model(
            ModelName="fraud-pipeline",
            ExecutionRoleArn=roles["pipeline"],
            Containers=[
                # No ContainerHostname: SageMaker names them container_0, container_1.
                {"Image": IMAGE},
                {"Image": IMAGE},
            ],
            InferenceExecutionConfig={"Mode": "Direct"},
        )
        self.sagemaker.create_model(
            ModelName="vision-resnet",
            ExecutionRoleArn=roles["vision"],
            PrimaryContainer={"Image": IMAGE},
        )
        self.sagemaker.create_model(
            ModelName="churn-lr",
            ExecutionRoleArn=roles["churn"],
            PrimaryContainer={"Image": IMAGE},
        )
        self.endpoint(
            DEV,
            [
                {
                    "VariantName": "champion",
                    "ModelName": "fraud-xgb",
                    "InitialInstanceCount": 2,
                    "EnableSSMAccess": True,
                },
                {
                    "VariantName": "challenger",
                    "ModelName": "fraud-pipeline",
                    "InitialInstanceCount": 1,
                    "EnableSSMAccess": True,
                },
            ],
            {"environment": "dev", "owner": "fraud-team"},
        )
        self.endpoint(
            PROD,
            [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "vision-resnet",
                    "InitialInstanceCount": 3,
                    "EnableSSMAccess": True,
                }
            ],
            {"Environment": "Production", "owner": "vision-team"},
        )
        self.endpoint(
            PLAIN,
            [{"VariantName": "AllTraffic", "ModelName": "churn-lr", "InitialInstanceCount": 1}],
            {"environment": "test"},
        )
        return roles

    # -- reading what the guard did -------------------------------------------------------

    def attached(self, role_arn: str) -> list[str]:
        name = role_arn.rsplit("/", 1)[-1]
        found = self.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        return [p["PolicyArn"] for p in found]

    def config_ssm(self, config_name: str) -> list[bool]:
        config = self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        return [bool(v.get("EnableSSMAccess")) for v in config["ProductionVariants"]]

    def alerts(self) -> list[dict[str, Any]]:
        if not self.alert_queue_url:
            return []
        found: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.alert_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                body = json.loads(message["Body"])
                found.append({"subject": body.get("Subject", ""), "message": body.get("Message")})

    def published_targets(self, endpoint: str) -> list[str]:
        prefix = self.outputs.get("TargetsParameterPrefix", "/sagemaker-ssm-guard/targets")
        pages = self.ssm.get_paginator("get_parameters_by_path").paginate(
            Path=f"{prefix}/{endpoint}", Recursive=True
        )
        targets: list[str] = []
        names = [p["Name"] for page in pages for p in page.get("Parameters", [])]
        try:
            single = self.ssm.get_parameter(Name=f"{prefix}/{endpoint}")["Parameter"]
            names.insert(0, single["Name"])
        except self.ssm.exceptions.ParameterNotFound:
            pass
        for name in names:
            value = json.loads(self.ssm.get_parameter(Name=name)["Parameter"]["Value"])
            targets.extend(t["target"] for t in value.get("targets", []))
        return targets


def _wait(what: str, probe: Callable[[], bool], timeout: float, report: Report) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(0.2)
    report.note(f"(gave up waiting for {what} after {timeout:.0f}s)")
    return False


def _ssm_guard(aws: LocalAws, *args: str) -> str:
    """Run the `ssm-guard` command as a person would, pointed at the local AWS."""
    done = subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [sys.executable, "-m", "ssm_guard.cli.main", *args],
        env={**os.environ, **aws.env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout if done.returncode == 0 else f"(exit {done.returncode}) {done.stderr}"


def _decisions(invocations: list[Invocation], endpoint: str) -> list[str]:
    return [
        str(i.decision or (i.error or {}).get("errorType"))
        for i in invocations
        if i.endpoint_name == endpoint and i.function == "EnforcerFunction"
    ]


def run(delay: float, timeout: float) -> Report:
    report = Report()
    started = time.monotonic()
    with LocalAws(delay=delay) as aws:
        stack = aws.deploy_stack()
        report.section("1. Local AWS up, template.yaml deployed")
        report.note(f"endpoint URL     {aws.endpoint_url}")
        report.note(f"functions        {', '.join(sorted(stack['functions']))}")
        report.note(f"rules            {len(stack.get('rules', []))} from the template")
        demo = Demo(aws, report)
        demo.subscribe_to_alerts()
        roles = demo.build()
        report.section("2. Endpoints created through the SageMaker API")
        report.note(f"{DEV:<24} dev, SSM on 2 variants (one multi-container)")
        report.note(f"{PROD:<24} tagged Environment=Production, SSM on, 3 instances")
        report.note(f"{PLAIN:<24} test, no SSM access")

        # The production endpoint goes through a revert: wait until it is back in service
        # on a config the guard made, then until nothing is left running.
        def prod_reverted() -> bool:
            described = demo.sagemaker.describe_endpoint(EndpointName=PROD)
            return (
                described["EndpointStatus"] == "InService"
                and described["EndpointConfigName"] != f"{PROD}-config"
            )

        _wait("the production revert", prod_reverted, timeout, report)
        aws.settle(timeout=timeout)
        invocations = aws.invocations
        policy = demo.outputs.get("SessionPolicyArn", "")

        report.section(f"3. Enforcement on {DEV}")
        report.note(f"guard decisions  {', '.join(_decisions(invocations, DEV)) or 'none'}")
        for key in ("scoring", "pipeline"):
            report.check(
                policy in demo.attached(roles[key]),
                f"{roles[key].rsplit('/', 1)[-1]} holds the SSM session policy",
            )

        report.section(f"4. Target IDs of {DEV} published to Parameter Store")
        targets = demo.published_targets(DEV)
        for target in targets:
            report.note(target)
        live = aws.instances(DEV)
        expected = len(live.get("champion", [])) + 2 * len(live.get("challenger", []))
        report.check(
            len(targets) == expected and expected == 4,
            f"{expected} targets: 2 single-container, 2 multi-container containers",
            f"found {len(targets)}",
        )
        report.check(
            any(t.endswith("_container_1") for t in targets),
            "default container names (container_1) kept whole",
        )
        report.note("$ ssm-guard targets " + DEV)
        for line in _ssm_guard(aws, "targets", DEV).splitlines():
            report.note("  " + line)

        report.section(f"5. Guardrail on {PROD}")
        described = demo.sagemaker.describe_endpoint(EndpointName=PROD)
        report.note(f"guard decisions  {', '.join(_decisions(invocations, PROD)) or 'none'}")
        report.note(f"config           {PROD}-config -> {described['EndpointConfigName']}")
        report.check(described["EndpointStatus"] == "InService", "back in service")
        report.check(
            not any(demo.config_ssm(described["EndpointConfigName"])),
            "SSM access off on the new config",
        )
        counts = [v.get("CurrentInstanceCount") for v in described["ProductionVariants"]]
        report.check(counts == [3], "live instance count kept (3)", f"found {counts}")
        report.check(
            policy not in demo.attached(roles["vision"]),
            "no session policy left on the production role",
        )
        alerts = demo.alerts()
        for alert in alerts:
            report.note(f"alert: {alert['subject']}")
        report.check(any(PROD in a["subject"] for a in alerts), "the owners were alerted")

        report.section(f"6. {PLAIN}: no SSM access, nothing to do")
        report.note(f"guard decisions  {', '.join(_decisions(invocations, PLAIN)) or 'none'}")
        report.check("no-ssm" in _decisions(invocations, PLAIN), "decision no-ssm")
        report.check(demo.attached(roles["churn"]) == [], "its role untouched")

        report.function_runs(invocations)
    report.section(f"Done in {time.monotonic() - started:.0f}s")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ssm-guard-demo", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--delay",
        type=float,
        default=1.0,
        help="seconds endpoints stay Creating/Updating (default 1)",
    )
    parser.add_argument("--timeout", type=float, default=45.0)
    args = parser.parse_args(argv)
    print("sagemaker-ssm-guard demo: an embedded local AWS, no account, no Docker", flush=True)
    report = run(args.delay, args.timeout)
    if report.failures:
        print(f"\nDEMO FAILED: {len(report.failures)} check(s) did not hold:", file=sys.stderr)
        for failure in report.failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print("\nAll checks held: the guard did the right thing.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
