"""`ssm-guard local up | invoke | send`: the embedded local AWS from the command line.

- `local up` runs the emulator in the foreground, deploys template.yaml and prints every
  function invocation until Ctrl-C; point the AWS CLI or boto3 at the URL it prints.
- `local invoke FUNCTION --event FILE [--env-vars FILE]` runs one handler like
  `sam local invoke`, without a container.
- `local send FILE...` puts events on the bus and prints what the deployed rules triggered.

`invoke` and `send` use the emulator at `AWS_ENDPOINT_URL` when it is one, else start an
ephemeral one for the duration of the command. Nothing here imports moto until a command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ssm_guard.local.api import LocalAws
    from ssm_guard.local.invoker import Invocation

DEFAULT_PORT = 5055
EXIT_OK = 0
EXIT_FAILURE = 1


def register(subparsers: Any) -> None:
    """Add `local` and its subcommands to the `ssm-guard` parser."""
    local = subparsers.add_parser(
        "local",
        help="run the guard on an embedded local AWS (moto + the project's additions)",
        description="The embedded local AWS: moto in server mode with SageMaker endpoint "
        "lifecycle, events and SSM log streams, and the stack deployed from template.yaml.",
    )
    commands = local.add_subparsers(dest="local_command", metavar="COMMAND")
    commands.required = True

    up = commands.add_parser("up", help="run the local AWS in the foreground until Ctrl-C")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    up.add_argument("--host", default="127.0.0.1")
    _add_emulator_options(up)
    up.add_argument("--no-deploy", action="store_true", help="do not deploy template.yaml")
    up.add_argument(
        "--trail",
        action="store_true",
        help="start a CloudTrail trail, so SageMaker calls also arrive as CloudTrail events",
    )
    up.add_argument(
        "--accounts",
        type=int,
        default=0,
        metavar="N",
        help="an AWS Organization: the central stack here and a member stack in N new member "
        "accounts (ssm_guard.local.org)",
    )
    up.set_defaults(func=run_up)

    invoke = commands.add_parser(
        "invoke", help="run one function's handler locally, like `sam local invoke`"
    )
    invoke.add_argument("function", metavar="FUNCTION", help="logical id in template.yaml")
    invoke.add_argument(
        "--event", "-e", metavar="FILE", help="event JSON file, '-' for stdin (default: {})"
    )
    invoke.add_argument(
        "--env-vars",
        "-n",
        metavar="FILE",
        type=Path,
        help='SAM format: {"FUNCTION": {"VAR": "value"}} and/or {"Parameters": {...}}',
    )
    _add_emulator_options(invoke)
    invoke.set_defaults(func=run_invoke)

    send = commands.add_parser(
        "send", help="put events on the local bus and run what the deployed rules trigger"
    )
    send.add_argument("files", nargs="*", metavar="FILE", type=Path, help="event JSON files")
    send.add_argument(
        "--schedule",
        metavar="RULE_OR_FUNCTION",
        help="also deliver one Scheduled Event for this scheduled rule (or its function)",
    )
    send.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (120)")
    _add_emulator_options(send)
    send.set_defaults(func=run_send)


def _add_emulator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--delay",
        type=float,
        default=None,
        help="seconds endpoints stay Creating/Updating/Deleting "
        "(default: $SSM_GUARD_LOCAL_DELAY_SECONDS or 2)",
    )
    parser.add_argument("--template", type=Path, default=None, help="default: ./template.yaml")
    parser.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, as `sam deploy --parameter-overrides`",
    )


def _fail(message: str) -> Exception:
    from ssm_guard.cli.common import CliError

    return CliError(message)


def _parameters(pairs: list[str]) -> dict[str, str]:
    parameters = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _fail(f"--parameter-overrides takes KEY=VALUE, got {pair!r}")
        parameters[key] = value.strip("\"'")
    return parameters


def _log_level(args: argparse.Namespace) -> str:
    return "INFO" if getattr(args, "verbose", False) else "WARNING"


# -- local up ------------------------------------------------------------------------------


def run_up(args: argparse.Namespace) -> int:
    from ssm_guard.local._logging import configure
    from ssm_guard.local.runtime import Settings, delay_from_env
    from ssm_guard.local.server import Emulator

    configure(_log_level(args))
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    settings = Settings(region=region, delay=delay_from_env() if args.delay is None else args.delay)
    emulator = Emulator(host=args.host, port=args.port, settings=settings, template=args.template)
    try:
        url = emulator.start()
    except OSError as exc:
        raise _fail(f"cannot listen on {args.host}:{args.port}: {exc}") from exc
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        print(f"Local AWS listening ({region}; endpoints change state after {settings.delay:g} s)")
        print(f"AWS_ENDPOINT_URL={url}")
        if args.accounts and not args.no_deploy:
            from ssm_guard.local.org import up_organization

            for line in up_organization(url, args.accounts, _parameters(args.parameter_overrides)):
                print(line)
        if not args.no_deploy:
            stack = emulator.stack or emulator.deploy(
                parameter_overrides=_parameters(args.parameter_overrides)
            )
            print(
                f"Stack {stack.stack_name} deployed from {stack.template}: functions "
                f"{', '.join(sorted(stack.functions)) or '-'}; rules "
                f"{', '.join(sorted(stack.rules)) or '-'}"
            )
            if stack.skipped:
                print(f"Not emulated (skipped): {', '.join(stack.skipped)}")
        if args.trail:
            from ssm_guard.local.api import LocalAws

            trail = LocalAws.connect(url).start_trail()
            print(f"CloudTrail trail {trail} logging: API calls also arrive as CloudTrail events")
        print("In another shell:")
        print(
            f"  export AWS_ENDPOINT_URL={url} AWS_REGION={region} AWS_DEFAULT_REGION={region} "
            "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
        )
        print("  aws sagemaker list-endpoints   # or: ssm-guard local send events/*.json")
        print("Invocations (Ctrl-C to stop):", flush=True)
        emulator.rt.invocations.subscribe(_print_invocation)
        while not stop.wait(0.1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        emulator.stop()
    return EXIT_OK


def _print_invocation(invocation: Invocation) -> None:
    stamp = invocation.started_at[11:19]
    print(f"{stamp} {invocation.summary()}", flush=True)


# -- shared: the emulator to talk to -------------------------------------------------------


@contextlib.contextmanager
def _local_aws(args: argparse.Namespace) -> Iterator[LocalAws]:
    """The emulator at AWS_ENDPOINT_URL, or an ephemeral one with the stack deployed."""
    from ssm_guard.local.api import LocalAws, LocalAwsError

    url = os.environ.get("AWS_ENDPOINT_URL")
    if url:
        try:
            aws = LocalAws.connect(url)
        except LocalAwsError as exc:
            raise _fail(
                f"AWS_ENDPOINT_URL={url} is not an ssm-guard local AWS ({exc}); start one "
                "with `ssm-guard local up` or unset AWS_ENDPOINT_URL for an ephemeral one"
            ) from exc
        if aws.stack is None:
            raise _fail(f"the local AWS at {url} has no stack deployed")
        if args.delay is not None:
            aws.set_delay(args.delay)
        yield aws
        return
    print("AWS_ENDPOINT_URL is not set: starting an ephemeral local AWS", file=sys.stderr)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    with LocalAws(
        delay=args.delay, region=region, template=args.template, log_level=_log_level(args)
    ) as aws:
        aws.deploy_stack(parameter_overrides=_parameters(args.parameter_overrides))
        yield aws


def _read_json(source: str | Path) -> Any:
    try:
        text = sys.stdin.read() if str(source) == "-" else Path(source).read_text(encoding="utf-8")
        return json.loads(text)
    except OSError as exc:
        raise _fail(f"cannot read {source}: {exc}") from exc
    except ValueError as exc:
        raise _fail(f"{source} is not JSON: {exc}") from exc


# -- local invoke --------------------------------------------------------------------------


def env_overrides_for(
    env_file: dict[str, Any], logical_id: str, function_name: str, declared: set[str]
) -> tuple[dict[str, str], list[str]]:
    """SAM `--env-vars` semantics: `Parameters` for every function, then the function's own
    section; only variables the template declares are overridden. Returns (overrides, ignored)."""
    wanted: dict[str, Any] = {}
    for section in ("Parameters", logical_id, function_name):
        values = env_file.get(section) or {}
        if not isinstance(values, dict):
            raise _fail(f"--env-vars: {section!r} must map variable names to values")
        wanted.update(values)
    overrides = {key: str(value) for key, value in wanted.items() if key in declared}
    ignored = sorted(key for key in wanted if key not in declared)
    return overrides, ignored


def run_invoke(args: argparse.Namespace) -> int:
    from ssm_guard.local.api import LocalAwsError

    event = _read_json(args.event) if args.event else {}
    env_file = _read_json(args.env_vars) if args.env_vars else {}
    if not isinstance(env_file, dict):
        raise _fail("--env-vars must hold a JSON object")
    with _local_aws(args) as aws:
        functions = (aws.stack or {}).get("functions", {})
        if args.function not in functions:
            known = ", ".join(sorted(functions)) or "none"
            raise _fail(f"no function {args.function!r} in the template (functions: {known})")
        name = functions[args.function]["name"]
        configuration = aws.client("lambda").get_function_configuration(FunctionName=name)
        declared = set(configuration.get("Environment", {}).get("Variables", {}))
        overrides, ignored = env_overrides_for(env_file, args.function, name, declared)
        if ignored:
            print(
                f"--env-vars: not declared by {args.function}, ignored: {', '.join(ignored)}",
                file=sys.stderr,
            )
        try:
            invocation = aws.invoke(args.function, event, env_overrides=overrides)
        except LocalAwsError as exc:
            raise _fail(str(exc)) from exc
    if invocation.logs:
        print(invocation.logs.rstrip(), file=sys.stderr)
    print(json.dumps(invocation.result if invocation.ok else invocation.error, indent=2))
    return EXIT_OK if invocation.ok else EXIT_FAILURE


# -- local send ----------------------------------------------------------------------------


def _events_from(path: Path) -> list[dict[str, Any]]:
    content = _read_json(path)
    events = content if isinstance(content, list) else [content]
    if not all(isinstance(event, dict) for event in events):
        raise _fail(f"{path} must hold an event object or a list of them")
    return events


def run_send(args: argparse.Namespace) -> int:
    from ssm_guard.local.api import LocalAwsError

    if not args.files and not args.schedule:
        raise _fail("give event files to send, or --schedule RULE_OR_FUNCTION")
    batches = [(str(path), _events_from(path)) for path in args.files]
    failed = False
    with _local_aws(args) as aws:
        for label, events in batches:
            try:
                invocations = aws.send(events, timeout=args.timeout)
            except (LocalAwsError, ValueError) as exc:
                raise _fail(f"{label}: {exc}") from exc
            failed |= _report(label, invocations)
        if args.schedule:
            try:
                invocations = aws.fire_schedule(args.schedule, timeout=args.timeout)
            except LocalAwsError as exc:
                raise _fail(str(exc)) from exc
            failed |= _report(f"schedule {args.schedule}", invocations)
    return EXIT_FAILURE if failed else EXIT_OK


def _report(label: str, invocations: list[Invocation]) -> bool:
    """Print what one input triggered; True when something failed."""
    if not invocations:
        print(f"{label}: no deployed rule matched; nothing ran")
        return False
    print(f"{label}: {len(invocations)} invocation(s)")
    for invocation in invocations:
        print(f"  {invocation.summary()}")
        if invocation.ok and invocation.result is not None:
            print("  " + json.dumps(invocation.result))
    return any(not invocation.ok for invocation in invocations)
