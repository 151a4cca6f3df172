"""`ssm-guard user-policy`: a least-privilege IAM policy for the people who open SSM sessions.

The seed page's user policy allows `ssm:StartSession` and `ssm:TerminateSession` on every
resource, and its scoped example is not even valid JSON. This command prints, always as valid
JSON, a policy that lets its holder:

- start sessions into the named endpoints only (plus the default session document);
- open the data channel of, end and resume their own sessions only;
- read the SSM target IDs the guard publishes for those endpoints in Parameter Store.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ssm_guard.cli.common import EXIT_OK, EXIT_USAGE, CliError
from ssm_guard.names import InvalidNameError, validate_name
from ssm_guard.settings import DEFAULT_PARAMETER_PREFIX, Settings, SettingsError
from ssm_guard.targets import parameter_name

SESSION_DOCUMENT = "SSM-SessionManagerRunShell"
"""The session document `aws ssm start-session` uses when none is named."""
MANAGED_POLICY_MAX_CHARS = 6144
"""IAM counts a managed policy's characters without whitespace (IAM quotas page)."""

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
PARTITIONS = frozenset(
    {"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}
)


class PolicyInputError(ValueError):
    """An endpoint name, account, region, partition or prefix that cannot go into a policy."""


def _check_region(region: str) -> None:
    if not _REGION_RE.match(region):
        raise PolicyInputError(f"region {region!r} is not an AWS region (like us-east-1)")


@dataclass(frozen=True)
class Scope:
    """Where the endpoints live."""

    account: str
    region: str
    partition: str
    parameter_prefix: str = DEFAULT_PARAMETER_PREFIX

    def __post_init__(self) -> None:
        if not _ACCOUNT_RE.match(self.account):
            raise PolicyInputError(f"account {self.account!r} is not a 12-digit AWS account ID")
        _check_region(self.region)
        if self.partition not in PARTITIONS:
            raise PolicyInputError(
                f"partition {self.partition!r} is not one of {', '.join(sorted(PARTITIONS))}"
            )
        try:
            Settings(parameter_prefix=self.parameter_prefix)
        except SettingsError as exc:
            raise PolicyInputError(str(exc).replace("TARGETS_PARAMETER_PREFIX", "prefix")) from exc

    def arn(self, service: str, resource: str, *, account: str | None = None) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{account or self.account}:{resource}"


def endpoint_arn(scope: Scope, name: str) -> str:
    # NOTE: SageMaker lower-cases endpoint names in ARNs (`MyEndpoint` -> `endpoint/myendpoint`,
    # aws-facts 1.2), and StartSession is authorised against that ARN: the policy names the
    # lower-cased form, whatever case the endpoint was created with.
    return scope.arn("sagemaker", f"endpoint/{name.lower()}")


def user_policy(endpoints: Sequence[str], scope: Scope) -> dict[str, Any]:
    """The policy for people who open sessions into `endpoints`; names are validated first."""
    if not endpoints:
        raise PolicyInputError("name at least one endpoint")
    names: list[str] = []
    for raw in endpoints:
        try:
            name = validate_name(raw)
        except InvalidNameError as exc:
            raise PolicyInputError(str(exc)) from exc
        if name not in names:
            names.append(name)
    endpoint_arns = sorted({endpoint_arn(scope, name) for name in names})
    # NOTE: SSM-SessionManagerRunShell is created in the account (it holds the session
    # preferences), so its ARN carries the account ID; only AWS-owned documents such as
    # AWS-StartSSHSession have none (SSM user guide, "Sample IAM policies for Session Manager").
    document = scope.arn("ssm", f"document/{SESSION_DOCUMENT}")
    # NOTE: a session's ID begins with the ID of the user who started it; the SSM quickstart
    # end-user policies scope TerminateSession, ResumeSession and the data channel the Session
    # Manager plugin opens to `session/${aws:userid}-*` (SSM user guide, "Sample IAM policies").
    own_sessions = scope.arn("ssm", "session/${aws:userid}-*")
    # An endpoint's targets live in `{prefix}/{name}`, and in parts below it when they are long.
    mains = [parameter_name(scope.parameter_prefix, name) for name in names]
    parameters = sorted(
        scope.arn("ssm", f"parameter{path}") for main in mains for path in (main, f"{main}/*")
    )
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "StartSessionsIntoTheseEndpoints",
                "Effect": "Allow",
                "Action": "ssm:StartSession",
                "Resource": [*endpoint_arns, document],
                "Condition": {"BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"}},
            },
            {
                "Sid": "UseOnlyOwnSessions",
                "Effect": "Allow",
                "Action": ["ssm:ResumeSession", "ssm:TerminateSession"],
                "Resource": own_sessions,
            },
            {
                "Sid": "OpenOwnSessionDataChannel",
                "Effect": "Allow",
                "Action": "ssmmessages:OpenDataChannel",
                "Resource": own_sessions,
            },
            {
                "Sid": "ReadTargetsOfTheseEndpoints",
                "Effect": "Allow",
                "Action": ["ssm:GetParameter", "ssm:GetParametersByPath"],
                "Resource": parameters,
            },
        ],
    }


def compact_length(policy: dict[str, Any]) -> int:
    return len(re.sub(r"\s", "", json.dumps(policy)))


def _caller_scope(args: argparse.Namespace) -> Scope:
    """Fill in what the command line left out from the AWS session (STS, configured region)."""
    region: str | None = getattr(args, "region", None) or os.environ.get("AWS_REGION")
    account: str | None = args.account
    partition: str | None = args.partition
    prefix = (
        args.parameter_prefix
        or os.environ.get("TARGETS_PARAMETER_PREFIX")
        or DEFAULT_PARAMETER_PREFIX
    ).rstrip("/")
    if account is None or region is None or partition is None:
        import boto3

        session = boto3.session.Session()
        region = region or session.region_name
        if region is None:
            raise PolicyInputError("no AWS region: pass --region or set AWS_REGION")
        _check_region(region)
        if account is None:
            from ssm_guard import clients

            identity = clients.client("sts", region).get_caller_identity()
            account = str(identity["Account"])
            partition = partition or str(identity["Arn"]).split(":")[1]
        partition = partition or session.get_partition_for_region(region)
    return Scope(account=account, region=region, partition=partition, parameter_prefix=prefix)


def run(args: argparse.Namespace) -> int:
    try:
        for raw in args.endpoints:
            validate_name(raw)
        policy = user_policy(args.endpoints, _caller_scope(args))
    except (PolicyInputError, InvalidNameError) as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    length = compact_length(policy)
    if length > MANAGED_POLICY_MAX_CHARS:
        print(
            f"ssm-guard: warning: the policy has {length} characters without whitespace; a "
            f"managed policy holds at most {MANAGED_POLICY_MAX_CHARS}: split the endpoints",
            file=sys.stderr,
        )
    json.dump(policy, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return EXIT_OK


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "user-policy",
        help="print a least-privilege IAM policy for people who open SSM sessions",
        description=(
            "Print an IAM policy (JSON) that lets its holder start SSM sessions into the named "
            "endpoints only, end and resume only their own sessions, and read the target IDs "
            "the guard publishes for those endpoints. Account, region and partition default "
            "to those of your AWS credentials."
        ),
    )
    parser.add_argument("endpoints", nargs="+", metavar="ENDPOINT", help="endpoint names")
    parser.add_argument("--account", help="12-digit account ID (default: from STS)")
    parser.add_argument(
        "--region", default=argparse.SUPPRESS, help="region (default: your AWS configuration)"
    )
    parser.add_argument("--partition", help="aws, aws-cn, aws-us-gov... (default: from STS)")
    parser.add_argument(
        "--parameter-prefix",
        "--prefix",
        dest="parameter_prefix",
        help=f"where the guard publishes target IDs (default: {DEFAULT_PARAMETER_PREFIX})",
    )
    parser.set_defaults(func=run)
