"""Cold start: importing and initialising each function's handler in a fresh interpreter, as a
ratio to creating one bare boto3 SageMaker client in a fresh interpreter (the floor any Python
guard pays).

Both sides run in the same Python with the same environment, alternately, and end in the same
place: a SageMaker client ready for its first call. The function side imports `app.py` the way
the Lambda runtime does (the function folder and the layer on `sys.path`), then creates the
SageMaker client through `ssm_guard.clients`. Medians of N runs, after one warm-up run each
(byte-code compiled once, as `sam build` output would be loaded from a warm disk cache).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
LAYER = ROOT / "layers" / "shared"
TARGET_RATIO = 1.3
# Modules a handler path should not load unless it needs them (issue 7, DESIGN.md).
WATCHED_MODULES = ("aws_xray_sdk", "pydantic", "tabulate", "moto", "yaml")

_BASELINE = """
import time
t0 = time.perf_counter()
import boto3
boto3.client("sagemaker")
t1 = time.perf_counter()
import json, sys
print(json.dumps({"init": t1 - t0, "import": t1 - t0, "modules": []}))
"""

_FUNCTION = """
import sys, time
sys.path[:0] = [{function!r}, {layer!r}]
t0 = time.perf_counter()
import app
t1 = time.perf_counter()
from ssm_guard import clients
clients.sagemaker()
t2 = time.perf_counter()
import json
watched = {watched!r}
print(json.dumps({{"init": t2 - t0, "import": t1 - t0,
                  "modules": [m for m in watched if m in sys.modules]}}))
"""

_IMPORTTIME_RE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def _environment() -> dict[str, str]:
    """What the template gives every function, tracing off (no X-Ray SDK may load)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "POWERTOOLS"))}
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_SERVICE_NAME": "sagemaker-ssm-guard",
            "POWERTOOLS_METRICS_NAMESPACE": "SageMakerSsmGuard",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    return env


def _run(code: str, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", code],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )


def _measure(code: str, env: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads(_run(code, env).stdout.strip().splitlines()[-1]))


def functions() -> list[Path]:
    return sorted(p.parent for p in FUNCTIONS.glob("*/app.py"))


def import_costs(function: Path, env: dict[str, str], top: int = 8) -> list[dict[str, Any]]:
    """Where `import app` spends its time (`python -X importtime`), by top-level package."""
    code = f"import sys; sys.path[:0] = [{str(function)!r}, {str(LAYER)!r}]; import app"
    stderr = _run(code, env, "-X", "importtime").stderr
    by_package: dict[str, int] = defaultdict(int)
    for match in _IMPORTTIME_RE.finditer(stderr):
        by_package[match.group(4).split(".")[0]] += int(match.group(1))
    ranked = sorted(by_package.items(), key=lambda item: item[1], reverse=True)[:top]
    return [{"package": name, "self_ms": round(us / 1000, 1)} for name, us in ranked]


def run(runs: int = 15) -> dict[str, Any]:
    env = _environment()
    function_code = {
        f.name: _FUNCTION.format(function=str(f), layer=str(LAYER), watched=WATCHED_MODULES)
        for f in functions()
    }
    samples: dict[str, list[dict[str, Any]]] = {"baseline": []}
    samples.update({name: [] for name in function_code})
    _measure(_BASELINE, env)
    for code in function_code.values():
        _measure(code, env)
    for _ in range(runs):
        samples["baseline"].append(_measure(_BASELINE, env))
        for name, code in function_code.items():
            samples[name].append(_measure(code, env))
    baseline = statistics.median(s["init"] for s in samples["baseline"])
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "runs": runs,
        "baseline_seconds": round(baseline, 4),
        "target_ratio": TARGET_RATIO,
        "functions": {},
    }
    for name in function_code:
        init = statistics.median(s["init"] for s in samples[name])
        imported = statistics.median(s["import"] for s in samples[name])
        ratio = init / baseline
        results["functions"][name] = {
            "init_seconds": round(init, 4),
            "import_seconds": round(imported, 4),
            "ratio": round(ratio, 3),
            "meets_target": ratio <= TARGET_RATIO,
            "heavy_modules_loaded": samples[name][-1]["modules"],
            "import_costs": import_costs(FUNCTIONS / name, env),
        }
    return results
