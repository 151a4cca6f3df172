"""Entry point of `ssm-guard`. Each subcommand lives in a module of this package that defines
`register(subparsers)`; they are found here, so adding a command never edits this file."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from ssm_guard import __version__
from ssm_guard.cli.common import EXIT_FAILURE, EXIT_USAGE, CliError

_NOT_COMMANDS = {"main", "common"}
# botocore's ValueError for an endpoint URL it cannot use (botocore/endpoint.py).
_INVALID_ENDPOINT = "Invalid endpoint:"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssm-guard",
        description=(
            "Find, connect to and safely switch SSM shell access on SageMaker endpoints. "
            "Uses the standard AWS settings (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the guard's logs")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    import ssm_guard.cli as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name in _NOT_COMMANDS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"ssm_guard.cli.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(subparsers)
    try:
        local_cli = importlib.import_module("ssm_guard.local.cli")
    except ModuleNotFoundError:  # the local extra is not installed
        local_cli = None
    if local_cli is not None:
        local_cli.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.region:
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = args.region
    elif os.environ.get("AWS_REGION"):
        # botocore reads only AWS_DEFAULT_REGION; AWS_REGION wins, as in the AWS CLI v2.
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"]
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "DEBUG" if args.verbose else "WARNING")
    if not args.verbose:
        logging.getLogger("sagemaker-ssm-guard").setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"ssm-guard: {exc}", file=sys.stderr)
        return exc.exit_code
    except NoCredentialsError:
        print(
            "ssm-guard: no AWS credentials found; set AWS_PROFILE or run `aws configure`",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    except NoRegionError:
        print("ssm-guard: no AWS region set; pass --region or set AWS_REGION", file=sys.stderr)
        return EXIT_USAGE
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(
            f"ssm-guard: AWS said {error.get('Code', 'error')}: {error.get('Message', exc)}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    except BotoCoreError as exc:
        print(f"ssm-guard: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except ValueError as exc:
        if not str(exc).startswith(_INVALID_ENDPOINT):
            raise
        url = str(exc).removeprefix(_INVALID_ENDPOINT).strip()
        print(
            f"ssm-guard: invalid AWS endpoint URL {url!r} (AWS_ENDPOINT_URL or endpoint_url in "
            "your AWS config); give a full URL such as http://127.0.0.1:5000",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`ssm-guard audit | head`): no error of ours. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        with contextlib.suppress(OSError, ValueError):  # stdout may be no file at all
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # killed by SIGPIPE, as a shell reports it


if __name__ == "__main__":
    sys.exit(main())
