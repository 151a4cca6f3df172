"""What every `ssm-guard` subcommand shares: errors, tables, JSON, confirmation."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from tabulate import tabulate

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A problem the user can fix; printed as one clear line, no traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, exit_code: int = EXIT_FAILURE) -> NoReturn:
    raise CliError(message, exit_code)


def print_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
    print(tabulate(list(rows), headers=list(headers), tablefmt="simple"))


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def confirm(question: str) -> bool:
    """Ask yes/no on the terminal; never asks when no person is there."""
    if not is_interactive():
        return False
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in {"y", "yes"}
