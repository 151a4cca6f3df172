"""The embedded local AWS: moto in server mode with the project's SageMaker additions.

`LocalAws` (in `ssm_guard.local.api`) is the Python entry point; `ssm-guard local up|invoke|send`
the command-line one. Names are imported lazily: `import ssm_guard.local` stays cheap and works
without moto installed until an emulator is actually started.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Invocation", "LocalAws", "LocalAwsError", "invoke_function"]


def __getattr__(name: str) -> Any:
    if name in ("LocalAws", "LocalAwsError"):
        from ssm_guard.local import api

        return getattr(api, name)
    if name == "Invocation":
        from ssm_guard.local.invoker import Invocation

        return Invocation
    if name == "invoke_function":
        from ssm_guard.local.invoker import invoke_function

        return invoke_function
    raise AttributeError(name)
