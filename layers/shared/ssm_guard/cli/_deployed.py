"""The settings of the deployed guard, so the command judges endpoints as the guard does.

`audit`, `enable` and `disable` decide with the deployer's choices (production tags, guardrail
mode, exception limits). Those live in the environment of the stack's EnforcerFunction, not in
the shell of the person running the command, so they are read from there.
"""

from __future__ import annotations

import argparse
import os
import sys

from botocore.exceptions import ClientError

from ssm_guard import clients
from ssm_guard.aws.errors import error_code
from ssm_guard.cli.common import EXIT_USAGE, CliError

STACK_VARIABLE = "SSM_GUARD_STACK"
DEFAULT_STACK = "sagemaker-ssm-guard"
DEPLOYED_SETTINGS = (
    "PRODUCTION_TAG_KEYS",
    "PRODUCTION_TAG_VALUES",
    "GUARDRAIL_MODE",
    "MAX_EXCEPTION_HOURS",
    "MAX_SSM_AGE_HOURS",
    "EXCEPTION_TAG_KEY",
    "TARGETS_PARAMETER_PREFIX",
    "SESSION_POLICY_ARN",
    "NAME_PREFIX",
)


def add_stack_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help=f"the guard's CloudFormation stack whose settings to use "
        f"(default: ${STACK_VARIABLE} or {DEFAULT_STACK})",
    )


def deployed_settings(stack: str) -> dict[str, str]:
    """The guard's settings as its EnforcerFunction has them (two read calls): the stack's
    `EnforcerFunctionName` output names the function."""
    described = clients.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in described.get("Outputs") or []}
    function = outputs.get("EnforcerFunctionName")
    if not function:
        return {}
    configuration = clients.client("lambda").get_function_configuration(FunctionName=function)
    variables = (configuration.get("Environment") or {}).get("Variables") or {}
    return {k: str(v) for k, v in variables.items() if k in DEPLOYED_SETTINGS}


def use_deployed_settings(args: argparse.Namespace) -> str:
    """Put the deployed settings into this process's environment (a variable the person set
    in the shell wins) and say on stderr where the settings came from.

    A stack named with --stack or $SSM_GUARD_STACK must be readable; the default name may be
    missing (then the defaults apply, and the command says so).
    """
    named = getattr(args, "stack", None) or os.environ.get(STACK_VARIABLE)
    stack = named or DEFAULT_STACK
    try:
        found = deployed_settings(stack)
    except ClientError as exc:
        if named:
            raise CliError(
                f"cannot read the settings of the guard's stack {stack!r} "
                f"({error_code(exc) or 'error'}); check --stack and your AWS account and region",
                EXIT_USAGE,
            ) from exc
        source = (
            f"defaults (no guard stack {stack!r} here; pass --stack NAME to judge as "
            "your deployed guard does)"
        )
    else:
        for name, value in found.items():
            os.environ.setdefault(name, value)
        source = f"stack {stack}"
    print(f"ssm-guard: settings from {source}", file=sys.stderr)
    return source
