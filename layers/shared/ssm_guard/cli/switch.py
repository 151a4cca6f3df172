"""`ssm-guard enable ENDPOINT` / `ssm-guard disable ENDPOINT`: switch SSM access safely.

The seed page's manual procedure, done the guard's way: a faithful copy of the endpoint's config
with `EnableSSMAccess` switched, then `UpdateEndpoint` to it keeping live instance counts and
weights. A dry run by default that shows the change; `--yes` applies it. `enable` refuses a
production endpoint unless `--exception-until` gives a break-glass expiry within the maximum.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ssm_guard.cli._deployed import add_stack_option, use_deployed_settings
from ssm_guard.cli.common import EXIT_OK, EXIT_USAGE, CliError, fail, print_json, print_table

if TYPE_CHECKING:
    from ssm_guard.clone import VariantChange
    from ssm_guard.enforce import Guard

WAIT_DELAY_SECONDS = 15
WAIT_MAX_ATTEMPTS = 240  # an hour: a blue/green update of a large fleet takes a while
_ALLOWLIST_HINT = (
    "; SSM access on endpoints needs the account to be allow-listed by AWS Support "
    "(https://docs.aws.amazon.com/sagemaker/latest/dg/ssm-access.html#ssm-access-allowlist)"
)


@dataclass
class SwitchPlan:
    """What `enable` / `disable` would do to one endpoint."""

    endpoint_name: str
    endpoint_arn: str
    status: str
    production: bool
    enable: bool
    old_config: str
    new_config: str
    changes: list[VariantChange]
    kwargs: dict[str, Any] = field(repr=False)
    exception_tag: tuple[str, str] | None = None

    @property
    def changed(self) -> bool:
        return any(c.changed for c in self.changes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint_name,
            "status": self.status,
            "production": self.production,
            "ssm": "on" if self.enable else "off",
            "old_config": self.old_config,
            "new_config": self.new_config if self.changed else None,
            "variants": [
                {
                    "variant": c.name,
                    "shadow": c.shadow,
                    "before": "on" if c.before else "off",
                    "after": "on" if c.after else "off",
                }
                for c in self.changes
            ],
            "exception_tag": dict([self.exception_tag]) if self.exception_tag else None,
        }


def plan_switch(
    guard: Guard,
    name: str,
    *,
    enable: bool,
    variants: list[str] | None = None,
    exception_until: str | None = None,
    now: datetime | None = None,
) -> SwitchPlan:
    """Read the endpoint live and work out the change; raise CliError when it cannot be made.
    Reads only: nothing in AWS changes here."""
    from ssm_guard.aws import sagemaker as sm_api
    from ssm_guard.clone import CloneError, clone_with_ssm, clone_without_ssm, variant_changes
    from ssm_guard.decisions import is_production
    from ssm_guard.exceptions import Verdict, iso, judge_exception
    from ssm_guard.names import InvalidNameError, validate_name

    now = now or datetime.now(UTC)
    try:
        validate_name(name)
    except InvalidNameError as exc:
        fail(str(exc), EXIT_USAGE)
    settings = guard.settings
    try:
        described = sm_api.describe_endpoint(guard.sagemaker, name)
    except sm_api.EndpointNotFoundError:
        fail(f"no endpoint named {name} in this account and region")
    status = str(described["EndpointStatus"])
    if status != "InService":
        fail(f"endpoint {name} is {status}; only an InService endpoint can be updated")
    arn = str(described["EndpointArn"])
    config = sm_api.describe_endpoint_config(guard.sagemaker, str(described["EndpointConfigName"]))
    tags = sm_api.list_tags(guard.sagemaker, arn)
    production = is_production(tags, settings)
    exception_tag: tuple[str, str] | None = None
    if enable and exception_until is not None:
        key = settings.exception_tag_key
        judged = judge_exception(
            {key: exception_until}, tag_key=key, max_hours=settings.max_exception_hours, now=now
        )
        if judged.verdict is not Verdict.GRANTED or judged.until is None:
            fail(f"--exception-until refused: {judged.reason}", EXIT_USAGE)
        exception_tag = (key, iso(judged.until))
    if enable and production and exception_tag is None:
        example = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
        fail(
            f"endpoint {name} is tagged production: SSM access there needs a break-glass "
            f"expiry, e.g. --exception-until {iso(example)} "
            f"(at most {settings.max_exception_hours} hours ahead)",
            EXIT_USAGE,
        )
    config_arn = str(config.get("EndpointConfigArn", ""))
    config_tags = sm_api.list_tags(guard.sagemaker, config_arn) if config_arn else {}
    clone = clone_with_ssm if enable else clone_without_ssm
    try:
        kwargs = clone(config, config_tags, variants=variants or None)
        changes = variant_changes(config, enable=enable, variants=variants or None)
    except CloneError as exc:
        fail(str(exc), EXIT_USAGE)
    return SwitchPlan(
        endpoint_name=str(described["EndpointName"]),
        endpoint_arn=arn,
        status=status,
        production=production,
        enable=enable,
        old_config=str(config["EndpointConfigName"]),
        new_config=str(kwargs["EndpointConfigName"]),
        changes=changes,
        kwargs=kwargs,
        exception_tag=exception_tag,
    )


def apply_switch(guard: Guard, the_plan: SwitchPlan) -> str:
    """Tag the exception (first, so the guard never sees SSM on without it), create or reuse the
    copy, update the endpoint. Returns the config the endpoint is being updated to."""
    from ssm_guard.aws import sagemaker as sm_api
    from ssm_guard.guardrail import apply_config, delete_if_unused

    if the_plan.exception_tag:
        key, value = the_plan.exception_tag
        sm_api.add_tags(guard.sagemaker, the_plan.endpoint_arn, {key: value})
    if not the_plan.changed:
        return the_plan.old_config
    applied = apply_config(guard, the_plan.endpoint_name, the_plan.kwargs)
    if applied.status == "updated":
        return applied.config_name
    if applied.created:
        delete_if_unused(guard, applied.config_name)
    if applied.status == "busy":
        fail(f"endpoint {the_plan.endpoint_name} is busy ({applied.error}); try again later")
    if applied.status == "gone":
        fail(f"endpoint {the_plan.endpoint_name} no longer exists")
    if applied.status == "name-taken":
        fail(
            f"a config named {applied.config_name} exists and is not the copy expected; "
            "delete or rename it, then try again"
        )
    # NOTE: AWS documents no exact error for an account that is not allow-listed for SSM
    # access (aws-facts 2.1), so any refusal that mentions SSM carries the hint.
    hint = _ALLOWLIST_HINT if the_plan.enable and "ssm" in applied.error.lower() else ""
    raise CliError(f"the update was refused: {applied.error}{hint}")


def _print_plan(the_plan: SwitchPlan, *, applied: bool) -> None:
    kind = "production" if the_plan.production else "not production"
    print(f"Endpoint:    {the_plan.endpoint_name} ({the_plan.status}, {kind})")
    print(f"Old config:  {the_plan.old_config}")
    if the_plan.changed:
        print(f"New config:  {the_plan.new_config} (a faithful copy, SSM access switched)")
    else:
        state = "on" if the_plan.enable else "off"
        print(f"SSM access is already {state} for the selected variants: the config stays.")
    print_table(
        [
            (
                c.name,
                "yes" if c.shadow else "",
                "on" if c.before else "off",
                "on" if c.after else "off",
                "changes" if c.changed else "",
            )
            for c in the_plan.changes
        ],
        headers=("variant", "shadow", "SSM before", "SSM after", ""),
    )
    if the_plan.exception_tag:
        key, value = the_plan.exception_tag
        print(f"Exception:   tag {key}={value} on the endpoint (the guard reverts after it)")
    if not applied:
        print("Dry run: nothing changed. Run again with --yes to apply.")


def _run(args: argparse.Namespace, *, enable: bool) -> int:
    from ssm_guard.enforce import Guard

    use_deployed_settings(args)
    guard = Guard.from_env(dry_run=not args.yes)
    the_plan = plan_switch(
        guard,
        args.endpoint,
        enable=enable,
        variants=args.variants,
        exception_until=getattr(args, "exception_until", None),
    )
    state = "on" if enable else "off"
    if not the_plan.changed and not the_plan.exception_tag:
        if args.json:
            print_json({**the_plan.as_dict(), "result": "unchanged"})
        else:
            print(f"SSM access is already {state} for the selected variants of {args.endpoint}.")
        return EXIT_OK
    if not args.yes:
        if args.json:
            print_json({**the_plan.as_dict(), "result": "dry-run"})
        else:
            _print_plan(the_plan, applied=False)
        return EXIT_OK
    config_name = apply_switch(guard, the_plan)
    result = "updating" if the_plan.changed else "tagged"
    if args.wait and the_plan.changed:
        guard.sagemaker.get_waiter("endpoint_in_service").wait(
            EndpointName=the_plan.endpoint_name,
            WaiterConfig={"Delay": WAIT_DELAY_SECONDS, "MaxAttempts": WAIT_MAX_ATTEMPTS},
        )
        result = "in-service"
    if args.json:
        print_json({**the_plan.as_dict(), "result": result, "config": config_name})
        return EXIT_OK
    _print_plan(the_plan, applied=True)
    if not the_plan.changed:  # only the exception tag was set
        return EXIT_OK
    if result == "in-service":
        print(f"{the_plan.endpoint_name} is InService on {config_name}: SSM access {state}.")
    else:
        print(
            f"{the_plan.endpoint_name} is updating to {config_name} (instance counts and weights "
            "kept). Pass --wait to wait for InService."
        )
    if enable:
        print("The guard attaches the session policy to the execution roles once it is back.")
    return EXIT_OK


def run_enable(args: argparse.Namespace) -> int:
    return _run(args, enable=True)


def run_disable(args: argparse.Namespace) -> int:
    return _run(args, enable=False)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("endpoint", metavar="ENDPOINT", help="endpoint name")
    parser.add_argument(
        "--variant",
        action="append",
        dest="variants",
        metavar="NAME",
        help="only this variant (repeat for several; default: every variant)",
    )
    parser.add_argument("--yes", action="store_true", help="apply the change (default: dry run)")
    parser.add_argument("--wait", action="store_true", help="wait until the endpoint is InService")
    parser.add_argument("--json", action="store_true", help="print the plan and result as JSON")
    add_stack_option(parser)


def register(subparsers: Any) -> None:
    enable = subparsers.add_parser(
        "enable",
        help="turn SSM access on for an endpoint (dry run unless --yes)",
        description=(
            "Update ENDPOINT to a faithful copy of its config with EnableSSMAccess on, keeping "
            "live instance counts and weights. Production endpoints need --exception-until."
        ),
    )
    _add_common(enable)
    enable.add_argument(
        "--exception-until",
        metavar="TIMESTAMP",
        help="break-glass expiry for a production endpoint, ISO-8601 with a zone "
        "(e.g. 2026-12-03T18:00:00Z), set as the exception tag",
    )
    enable.set_defaults(func=run_enable)
    disable = subparsers.add_parser(
        "disable",
        help="turn SSM access off for an endpoint (dry run unless --yes)",
        description=(
            "Update ENDPOINT to a faithful copy of its config with EnableSSMAccess off, keeping "
            "live instance counts and weights."
        ),
    )
    _add_common(disable)
    disable.set_defaults(func=run_disable)
