"""Cloud Custodian on the same account: a policy that finds production-tagged endpoints.

Custodian runs from its own virtualenv (`.venv-bench`, made by `make bench`; its pins clash
with aws-sam-cli's, and it must never become a dependency of the product), pointed at the local
AWS with `AWS_ENDPOINT_URL`, dummy credentials and its cache off (`--cache-period 0`).
Its calls are counted on the server side (`bench.emulator.RequestLog`).

Custodian cannot see `EnableSSMAccess` at all: it lives on the endpoint config, which the
`aws.sagemaker-endpoint` resource never reads. The guard's sweep does that and more.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.emulator import CUSTODIAN as CALLER
from bench.emulator import LocalAws

ROOT = Path(__file__).resolve().parent.parent
CUSTODIAN = ROOT / ".venv-bench" / "bin" / "custodian"
POLICY_NAME = "production-endpoints"
POLICY = f"""\
policies:
  - name: {POLICY_NAME}
    resource: aws.sagemaker-endpoint
    filters:
      - "tag:environment": prod
"""


def version() -> str | None:
    if not CUSTODIAN.exists():
        return None
    done = subprocess.run(
        [str(CUSTODIAN), "version"], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


def run(aws: LocalAws) -> dict[str, Any]:
    """One `custodian run` over the account; calls, wall time and what it found."""
    if not CUSTODIAN.exists():
        return {"skipped": f"{CUSTODIAN} is missing: run `make bench` to create .venv-bench"}
    with tempfile.TemporaryDirectory(prefix="bench-c7n-") as tmp:
        policy = Path(tmp) / "policy.yml"
        policy.write_text(POLICY)
        out = Path(tmp) / "out"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": tmp,
            **aws.env(CALLER),
        }
        command = [str(CUSTODIAN), "run", "--cache-period", "0", "-r", "us-east-1"]
        command += ["-s", str(out), str(policy)]
        mark = aws.log.mark()
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - started
        calls = aws.log.since(mark, caller=CALLER)
        if done.returncode != 0:
            raise RuntimeError(f"custodian failed: {done.stderr[-2000:]}")
        resources = json.loads((out / POLICY_NAME / "resources.json").read_text())
        metadata = json.loads((out / POLICY_NAME / "metadata.json").read_text())
    return {
        "wall_seconds": round(wall, 3),
        "policy_seconds": round(float(metadata["execution"]["duration"]), 3),
        "found": len(resources),
        "calls": sum(calls.values()),
        "calls_by_operation": dict(sorted(calls.items())),
    }
