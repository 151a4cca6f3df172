"""Package sizes after `sam build`: each function without the layer, and the layer.

Built into a temporary folder (not `.aws-sam/`, which `make build` owns) with Python 3.13 first
on PATH, as the Makefile's `build` target does. Sizes are the bytes of the files (what goes
into the zip before compression) and the size of a deflate zip of the same files, which is
what Lambda counts against its limits.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAM = ROOT / ".venv" / "bin" / "sam"
FUNCTION_LIMIT_BYTES = 1_000_000


def _python313_dir() -> str | None:
    found = subprocess.run(
        ["pyenv", "which", "python"],
        env={**os.environ, "PYENV_VERSION": "3.13.0"},
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode == 0 and found.stdout.strip():
        return str(Path(found.stdout.strip()).parent)
    path = shutil.which("python3.13")
    return str(Path(path).parent) if path else None


def _measure(folder: Path) -> dict[str, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(folder))
    return {
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "zip_bytes": buffer.tell(),
    }


def _parts(layer: Path) -> dict[str, int]:
    """Zip bytes of each top-level package in a layer, and of `ssm_guard`'s own subpackages
    (the emulator in `ssm_guard/local` ships in the layer though no function imports it)."""
    root = layer / "python" if (layer / "python").is_dir() else layer
    parts = {p.name: _measure(p)["zip_bytes"] for p in root.iterdir() if p.is_dir()}
    guard = root / "ssm_guard"
    if guard.is_dir():
        for sub in guard.iterdir():
            if sub.is_dir() and sub.name != "__pycache__":
                parts[f"ssm_guard/{sub.name}"] = _measure(sub)["zip_bytes"]
    return dict(sorted(parts.items(), key=lambda item: item[1], reverse=True))


def run() -> dict[str, Any]:
    python_dir = _python313_dir()
    if python_dir is None:
        return {"skipped": "no Python 3.13 found (pyenv 3.13.0 or python3.13) for sam build"}
    with tempfile.TemporaryDirectory(prefix="bench-sam-") as tmp:
        build_dir = Path(tmp) / "build"
        env = {
            **os.environ,
            "PATH": f"{python_dir}:{os.environ.get('PATH', '')}",
            "SAM_CLI_TELEMETRY": "0",
        }
        command = [str(SAM), "build", "--template", str(ROOT / "template.yaml")]
        command += ["--build-dir", str(build_dir), "--cache-dir", str(Path(tmp) / "cache")]
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            return {"skipped": "sam build failed", "stderr": done.stderr[-2000:]}
        packages: dict[str, Any] = {}
        for folder in sorted(p for p in build_dir.iterdir() if p.is_dir()):
            measured: dict[str, Any] = dict(_measure(folder))
            is_function = (folder / "app.py").exists()
            measured["kind"] = "function" if is_function else "layer"
            if is_function:
                measured["under_1_mb"] = measured["zip_bytes"] < FUNCTION_LIMIT_BYTES
            else:
                measured["parts"] = _parts(folder)
            packages[folder.name] = measured
    return {"limit_bytes": FUNCTION_LIMIT_BYTES, "packages": packages}
