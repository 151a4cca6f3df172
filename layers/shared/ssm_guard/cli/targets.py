"""`ssm-guard targets`, `connect` and `logs`: find a container's SSM target, open a session into
it, and read the SSM agent's log when a session will not start.

`targets` and `connect` read what the guard published in Parameter Store (one fast call, and what
people are usually allowed to read); `logs` reads the endpoint's CloudWatch log group.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ssm_guard import clients
from ssm_guard.aws import logs as logs_api
from ssm_guard.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    fail,
    is_interactive,
    print_json,
    print_table,
)
from ssm_guard.discovery import Published, all_published, published_for
from ssm_guard.names import InvalidNameError, validate_name
from ssm_guard.settings import DEFAULT_PARAMETER_PREFIX, Settings, SettingsError
from ssm_guard.targets import (
    Target,
    TargetsDocument,
    choose,
    parse_stream_name,
    sort_key,
    ssm_log_container,
)

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

AWS_CLI_INSTALL = "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
PLUGIN_INSTALL = (
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
    "session-manager-working-with-install-plugin.html"
)
NOTHING_PUBLISHED_HINT = (
    "possible reasons: no variant of it has SSM access on (EnableSSMAccess), it is not in service "
    "yet, SSM cannot reach its containers (network isolation, built-in algorithms, Marketplace "
    "models), or the guard's TargetsFunction is not deployed in this account and region "
    "(--prefix if it publishes elsewhere)"
)
NOT_CONNECTED_HINT = (
    "A session that fails with TargetNotConnected usually means the SSM agent in the container "
    "has not registered: check that the endpoint's execution role holds the ssmmessages "
    "permissions (the guard attaches them), that the container can reach the ssm and ssmmessages "
    "endpoints (internet or PrivateLink), and that the instance was not replaced since "
    "(`ssm-guard targets ENDPOINT`)."
)
READ_ATTEMPTS = 3
READ_RETRY_SECONDS = 1.0


# --- shared -----------------------------------------------------------------------------------


def _prefix(args: argparse.Namespace) -> str:
    raw = args.prefix or os.environ.get("TARGETS_PARAMETER_PREFIX") or DEFAULT_PARAMETER_PREFIX
    try:
        return Settings(parameter_prefix=raw.rstrip("/")).parameter_prefix
    except SettingsError as exc:
        raise CliError(f"--prefix: {exc}", EXIT_USAGE) from exc


def _endpoint(raw: str) -> str:
    try:
        return validate_name(raw)
    except InvalidNameError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


def _readable(published: Published, endpoint: str) -> TargetsDocument:
    if published.document is None:
        fail(
            f"the targets published for {endpoint} cannot be read ({published.problem}); "
            "a refresh may be writing them, try again in a moment"
        )
    return published.document


def read_targets(ssm: SSMClient, prefix: str, endpoint: str) -> TargetsDocument:
    """The published targets of one endpoint; a CliError saying why when there are none."""
    published = published_for(ssm, prefix, endpoint)
    for _ in range(READ_ATTEMPTS - 1):
        if published.document is not None or not published.exists:
            break
        # A write in progress leaves parts of two generations for an instant.
        time.sleep(READ_RETRY_SECONDS)
        published = published_for(ssm, prefix, endpoint)
    if not published.exists:
        fail(f"no SSM targets are published for endpoint {endpoint}; {NOTHING_PUBLISHED_HINT}")
    return _readable(published, endpoint)


def _row(target: Target) -> list[str]:
    return [target.variant, target.instance, target.container or "-", target.target]


def _none_found(doc: TargetsDocument) -> str:
    return (
        f"SSM access is on for {doc.endpoint}, but no live container was found in its log "
        f"streams yet (checked {doc.updated or 'recently'}); the SSM agent logs a few minutes "
        "after the endpoint comes into service"
    )


# --- targets ----------------------------------------------------------------------------------


def run_targets(args: argparse.Namespace) -> int:
    ssm = clients.ssm()
    prefix = _prefix(args)
    unreadable: dict[str, str] = {}
    if args.endpoint is not None:  # "" is a bad name, not "every endpoint"
        docs = [read_targets(ssm, prefix, _endpoint(args.endpoint))]
    else:
        docs = []
        for name, published in sorted(all_published(ssm, prefix).items()):
            if published.document is None:
                unreadable[name] = published.problem
            else:
                docs.append(published.document)
    for name, problem in unreadable.items():
        # One endpoint being rewritten must not hide every other endpoint's targets.
        print(
            f"ssm-guard: the targets of {name} cannot be read ({problem}); "
            "a refresh may be writing them, try again in a moment",
            file=sys.stderr,
        )
    code = EXIT_FAILURE if unreadable else EXIT_OK
    if args.json:
        print_json([doc.as_dict() for doc in docs])
        return code
    if not docs:
        print(f"no SSM targets are published under {prefix}; {NOTHING_PUBLISHED_HINT}")
        return code
    if args.endpoint is not None:
        doc = docs[0]
        if not doc.targets:
            print(_none_found(doc))
            return EXIT_OK
        noun = "target" if len(doc.targets) == 1 else "targets"
        print(f"{doc.endpoint}: {len(doc.targets)} {noun}, updated {doc.updated}")
        print_table((_row(t) for t in doc.targets), ("variant", "instance", "container", "target"))
        return EXIT_OK
    rows: list[list[str]] = []
    for doc in docs:
        if not doc.targets:
            rows.append([doc.endpoint, "-", "-", "-", "(SSM on; no live container found yet)"])
        rows.extend([doc.endpoint, *_row(t)] for t in doc.targets)
    print_table(rows, ("endpoint", "variant", "instance", "container", "target"))
    return code


# --- connect ----------------------------------------------------------------------------------


def session_command(target: str) -> list[str]:
    return ["aws", "ssm", "start-session", "--target", target]


def _choices_text(targets: Sequence[Target]) -> str:
    width = len(str(len(targets)))
    return "\n".join(
        f"  {index:>{width}}) {t.variant}  {t.instance}  {t.container or '-'}  {t.target}"
        for index, t in enumerate(targets, start=1)
    )


def _ask(targets: Sequence[Target]) -> Target:
    print(f"{len(targets)} targets match; choose one:", file=sys.stderr)
    print(_choices_text(targets), file=sys.stderr)
    for _ in range(3):
        try:
            answer = input(f"target [1-{len(targets)}]: ").strip()
        except EOFError:
            break
        if answer.isdigit() and 1 <= int(answer) <= len(targets):
            return targets[int(answer) - 1]
        print(f"please answer a number from 1 to {len(targets)}", file=sys.stderr)
    raise CliError("no target chosen", EXIT_USAGE)


def pick_target(
    targets: Sequence[Target],
    *,
    endpoint: str,
    variant: str | None,
    instance: str | None,
    container: str | None,
) -> Target:
    """The one target the options leave; ask when several remain and a person is there."""
    left = choose(targets, variant=variant, instance=instance, container=container)
    if not left:
        given = {"variant": variant, "instance": instance, "container": container}
        options = " ".join(f"--{name} {value}" for name, value in given.items() if value)
        fail(
            f"no target of {endpoint} matches {options}; its targets are:\n"
            + _choices_text(sorted(targets, key=sort_key)),
            EXIT_USAGE,
        )
    if len(left) == 1:
        return left[0]
    if is_interactive():
        return _ask(left)
    raise CliError(
        f"{len(left)} targets of {endpoint} match; choose one with --variant, --instance or "
        "--container:\n" + _choices_text(left),
        EXIT_USAGE,
    )


def _require_tools() -> str:
    aws = shutil.which("aws")
    if aws is None:
        fail(
            "the AWS CLI (`aws`) is not installed or not on PATH; install AWS CLI v2 "
            f"({AWS_CLI_INSTALL}), or use --print to see the command"
        )
    if shutil.which("session-manager-plugin") is None:
        fail(
            "the Session Manager plugin (`session-manager-plugin`) is not installed or not on "
            f"PATH; `aws ssm start-session` needs it: {PLUGIN_INSTALL}"
        )
    return aws


def run_connect(args: argparse.Namespace) -> int:
    endpoint = _endpoint(args.endpoint)
    doc = read_targets(clients.ssm(), _prefix(args), endpoint)
    if not doc.targets:
        fail(_none_found(doc))
    target = pick_target(
        doc.targets,
        endpoint=endpoint,
        variant=args.variant,
        instance=args.instance,
        container=args.container,
    )
    command = session_command(target.target)
    if args.print:
        print(shlex.join(command))
        return EXIT_OK
    aws = _require_tools()
    print(f"starting a session into {target.target}", file=sys.stderr)
    # The target comes from a parsed, validated target ID and the program from PATH lookup.
    completed = subprocess.run([aws, *command[1:]], check=False)  # noqa: S603
    if completed.returncode != 0:
        print(NOT_CONNECTED_HINT, file=sys.stderr)
    return completed.returncode


# --- logs -------------------------------------------------------------------------------------


def _when(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_logs(args: argparse.Namespace) -> int:
    endpoint = _endpoint(args.endpoint)
    if args.variant is not None:
        try:
            validate_name(args.variant, "variant name")
        except InvalidNameError as exc:
            raise CliError(str(exc), EXIT_USAGE) from exc
    logs = clients.logs()
    prefix = f"{args.variant}/" if args.variant else ""
    try:
        group, by_prefix = logs_api.endpoint_streams(logs, endpoint, [prefix])
    except logs_api.LogGroupMissingError:
        fail(
            f"endpoint {endpoint} has no log group (/aws/sagemaker/Endpoints/{endpoint}): it does "
            "not exist here, or it has not logged yet"
        )
    streams = [
        s for s in by_prefix[prefix] if (p := parse_stream_name(s.name)) is not None and p.ssm
    ]
    if not streams:
        where = f"variant {args.variant} of " if args.variant else ""
        print(
            f"no SSM agent log streams in {group} for {where}{endpoint}: SSM access may be off, "
            "or the agent has not started yet",
            file=sys.stderr,
        )
        print(NOT_CONNECTED_HINT, file=sys.stderr)
        return EXIT_FAILURE
    streams.sort(key=lambda s: (s.last_seen_ms, s.name), reverse=True)
    shown = streams[: args.streams]
    for stream in shown:
        print(f"== {group} {stream.name} (last written {_when(stream.last_seen_ms)})")
        events = logs_api.read_events(logs, group, stream.name, limit=args.lines)
        by_container: dict[str, list[str]] = {}
        for event in events:
            container, text = ssm_log_container(event.message)
            line = f"{_when(event.timestamp_ms)}  {text}"
            by_container.setdefault(container or "(no container prefix)", []).append(line)
        if not by_container:
            print("   (no events)")
        for container, lines in by_container.items():
            print(f"-- {container}")
            for line in lines:
                print(f"   {line}")
    if len(streams) > len(shown):
        print(
            f"{len(streams) - len(shown)} older SSM streams not shown (of replaced instances, "
            "most likely); --streams N shows more",
            file=sys.stderr,
        )
    return EXIT_OK


# --- registration -----------------------------------------------------------------------------


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("must be a whole number") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _add_prefix(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prefix",
        help=(
            "Parameter Store path the guard publishes under (default: $TARGETS_PARAMETER_PREFIX "
            f"or {DEFAULT_PARAMETER_PREFIX})"
        ),
    )


def register(subparsers: Any) -> None:
    targets = subparsers.add_parser(
        "targets",
        help="list the SSM targets of an endpoint's containers",
        description=(
            "List the SSM target IDs the guard published: one endpoint's, or every endpoint's."
        ),
    )
    targets.add_argument("endpoint", nargs="?", help="endpoint name (default: every endpoint)")
    targets.add_argument("--json", action="store_true", help="JSON for scripts")
    _add_prefix(targets)
    targets.set_defaults(func=run_targets)

    connect = subparsers.add_parser(
        "connect",
        help="open an SSM session into a container of an endpoint",
        description=(
            "Pick the one target the options leave and run `aws ssm start-session --target ...` "
            "(needs the AWS CLI and the Session Manager plugin)."
        ),
    )
    connect.add_argument("endpoint", help="endpoint name")
    connect.add_argument("--variant", help="production variant name")
    connect.add_argument("--instance", help="instance ID (i-...)")
    connect.add_argument("--container", help="container name (multi-container variants)")
    connect.add_argument("--print", action="store_true", help="print the command, do not run it")
    _add_prefix(connect)
    connect.set_defaults(func=run_connect)

    logs = subparsers.add_parser(
        "logs",
        help="show the SSM agent log of an endpoint's containers",
        description=(
            "Print the SSM agent log streams (VARIANT/INSTANCE/ssm) of an endpoint, per "
            "container, newest stream first: what to read when a session will not start."
        ),
    )
    logs.add_argument("endpoint", help="endpoint name")
    logs.add_argument("--variant", help="only this production variant")
    logs.add_argument(
        "--lines", type=_positive, default=200, help="events per stream (default 200)"
    )
    logs.add_argument("--streams", type=_positive, default=10, help="streams to show (default 10)")
    logs.set_defaults(func=run_logs)
