"""`make bench`: every measurement, in one run, into bench/results/latest.json and the tables of
docs/BENCHMARKS.md.

    python -m bench.run                      # everything (about 5 minutes on 2 cores)
    python -m bench.run --only events,coldstart
    python -m bench.run --sizes 100,1000 --no-custodian

A part that fails is recorded with its error and the others still run: the document then says
what was not measured, and why.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

# Before anything imports Powertools: thousands of INFO lines would bury the results.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

from bench import coldstart, custodian, emulator, events, report, sizes, sweep  # noqa: E402
from bench.fixture import Shape  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
PARTS = ("events", "sweep", "coldstart", "sizes")


def _meta(aws_kind: str) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load average at start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "machine": f"{platform.system()} {platform.machine()}",
        "local AWS": aws_kind,
        "moto": version("moto"),
        "boto3": version("boto3"),
        "Cloud Custodian": custodian.version() or "not installed",
    }


def _guarded(name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        result = work()
    except Exception as exc:  # one part failing must not lose the others
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result["bench_seconds"] = round(time.perf_counter() - started, 1)
    print(f"bench: {name} done in {result['bench_seconds']} s", file=sys.stderr, flush=True)
    return result


def _sweeps(aws: emulator.LocalAws, sizes_: list[int], with_custodian: bool) -> dict[str, Any]:
    found = sweep.run(aws, tuple(sizes_), with_custodian=with_custodian)
    if "runs" in found and 1000 in sizes_:
        # The 1.1 calls/endpoint target leans on configs shared between endpoints; this run
        # shows the account where every endpoint has a config of its own.
        solo = Shape(endpoints=1000, endpoints_per_config=1, prefix="solo")
        found["runs"].append(sweep.run_size(aws, solo, with_custodian=with_custodian))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    parser.add_argument("--sizes", default=",".join(str(s) for s in sweep.SIZES))
    parser.add_argument("--runs", type=int, default=15, help="cold-start runs per function")
    parser.add_argument("--no-custodian", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print, write no file")
    args = parser.parse_args(argv)
    only = {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = only - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    sizes_ = [int(s) for s in args.sizes.split(",") if s.strip()]

    results: dict[str, Any] = {}
    started = time.perf_counter()
    with emulator.local_aws() as aws:
        results["meta"] = _meta(aws.kind)
        if "events" in only:
            results["events"] = _guarded("AWS calls per event", lambda: events.run(aws))
        if "sweep" in only:
            results["sweep"] = _guarded(
                "sweep and Cloud Custodian",
                lambda: _sweeps(aws, sizes_, with_custodian=not args.no_custodian),
            )
    if "coldstart" in only:
        results["coldstart"] = _guarded("cold start", lambda: coldstart.run(args.runs))
    if "sizes" in only:
        results["sizes"] = _guarded("package sizes", sizes.run)
    results["meta"]["total seconds"] = round(time.perf_counter() - started, 1)

    print(report.render(results))
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True, default=str) + "\n")
        report.write(results)
        print(f"bench: wrote {RESULTS.relative_to(ROOT)} and docs/BENCHMARKS.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
