"""The emulator process: moto's ThreadedMotoServer with the project's additions installed.

Besides the AWS APIs, the server answers a small JSON control API under `/_ssm_guard/`
(health, deploy, invoke, invocations, instances, waits), so a test, the demo or
`ssm-guard local send` in another process can follow what the emulated functions did.

Run it on its own with `python -m ssm_guard.local.server [--port N] [--delay S]`: it prints one
JSON line `{"endpoint_url": ...}` once it listens and serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.sagemaker.exceptions import ValidationError
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from ssm_guard.local import cloudformation, cloudtrail, eventbridge, sagemaker, schedules
from ssm_guard.local import runtime as runtime_module
from ssm_guard.local._logging import configure, get_logger, quiet_request_logs
from ssm_guard.local.deploy import DeployedStack, deploy_stack
from ssm_guard.local.runtime import Runtime, Settings, delay_from_env

log = get_logger(__name__)

CONTROL_PREFIX = "/_ssm_guard/"
SERVICE_NAME = "ssm-guard-local"


RequestListener = Callable[[dict[str, Any], bytes], None]
"""Sees an AWS request (WSGI environ and body) before the emulator answers it."""


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Emulator:
    """moto server + additions + stack deployment, in this process."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        settings: Settings | None = None,
        template: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.settings = settings or Settings(delay=delay_from_env())
        self.template = template
        self.runtime: Runtime | None = None
        self.stack: DeployedStack | None = None
        self._server: _MotoServer | None = None
        self._scheduler: schedules.SchedulerLoop | None = None
        self.request_listeners: list[RequestListener] = []
        """Called with (WSGI environ, body) for each AWS request, before it is answered."""

    @property
    def endpoint_url(self) -> str:
        return self.rt.endpoint_url

    @property
    def rt(self) -> Runtime:
        if self.runtime is None:
            raise RuntimeError("the emulator is not running")
        return self.runtime

    def start(self) -> str:
        # Every emulator starts from an empty account: moto keeps its state in this process,
        # and an earlier emulator (or an in-process mock) must not leave roles or endpoints.
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()
        rt = Runtime(self.settings)
        runtime_module.activate(rt)
        sagemaker.install()
        eventbridge.install()
        cloudformation.install()
        cloudtrail.install()
        quiet_request_logs()
        self.runtime = rt
        self._server = _MotoServer(ControlApp(self), ip_address=self.host, port=self.port)
        self._server.start()
        host, port = self._server.get_host_and_port()
        rt.endpoint_url = f"http://{host}:{port}"
        self._scheduler = schedules.SchedulerLoop(rt, self.settings.scheduler_interval)
        self._scheduler.start()
        log.info(
            "local AWS listening",
            extra={"endpoint_url": rt.endpoint_url, "delay_seconds": self.settings.delay},
        )
        return rt.endpoint_url

    def stop(self) -> None:
        if self._scheduler:
            self._scheduler.stop()
        if self._server:
            self._server.stop()
        if self.runtime:
            self.runtime.close()
            runtime_module.deactivate(self.runtime)
        cloudtrail.uninstall()
        cloudformation.uninstall()
        eventbridge.uninstall()
        sagemaker.uninstall()
        self.runtime = None
        log.info("local AWS stopped")

    def deploy(
        self,
        *,
        parameter_overrides: dict[str, Any] | None = None,
        stack_name: str | None = None,
        template: Path | None = None,
    ) -> DeployedStack:
        self.stack = deploy_stack(
            self.rt,
            template_path=template or self.template,
            parameter_overrides=parameter_overrides,
            stack_name=stack_name,
        )
        return self.stack

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class _MotoServer(ThreadedMotoServer):
    """ThreadedMotoServer whose WSGI app first offers each request to the control API."""

    def __init__(self, control: ControlApp, *, ip_address: str, port: int) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self._control = control

    def _server_entry(self) -> None:
        # NOTE: mirrors ThreadedMotoServer._server_entry of moto 5.2.5, wrapping the app.
        self._control.backend = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address, self._port, self._control, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever(poll_interval=0.1)


def _float(value: Any, default: float) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError) as exc:
        raise ControlError(400, f"not a number: {value!r}") from exc


class ControlApp:
    """WSGI: `/_ssm_guard/...` here, everything else to moto."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.backend: Callable[..., Iterable[bytes]] | None = None
        self._routes: dict[tuple[str, str], Callable[[Request], Any]] = {
            ("GET", "health"): self.health,
            ("POST", "deploy"): self.deploy,
            ("GET", "stack"): self.stack,
            ("GET", "invocations"): self.invocations,
            ("POST", "invoke"): self.invoke,
            ("GET", "instances"): self.instances,
            ("POST", "events/wait"): self.wait_events,
            ("POST", "settle"): self.settle,
            ("POST", "advance"): self.advance,
            ("POST", "endpoints/fail"): self.fail_endpoint,
            ("POST", "settings"): self.update_settings,
            ("POST", "schedules/fire-due"): self.fire_due,
            ("POST", "rules/fire"): self.fire_rule,
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(CONTROL_PREFIX):
            assert self.backend is not None
            if self.emulator.request_listeners:
                self._tell_listeners(environ)
            return self.backend(environ, start_response)
        request = Request(environ)
        route = self._routes.get((request.method, path[len(CONTROL_PREFIX) :].strip("/")))
        try:
            if route is None:
                raise ControlError(404, f"no control route {request.method} {path}")
            status, body = 200, route(request)
        except ControlError as exc:
            status, body = exc.status, {"error": str(exc)}
        except Exception as exc:  # report, do not kill the server thread
            log.exception("control request failed", extra={"path": path})
            status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
        response = Response(
            json.dumps(body, default=str), status=status, mimetype="application/json"
        )
        return response(environ, start_response)

    def _tell_listeners(self, environ: dict[str, Any]) -> None:
        """Hand each listener the request; the body is read once and put back for moto."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        for listener in list(self.emulator.request_listeners):
            listener(environ, body)

    @staticmethod
    def _json(request: Request) -> dict[str, Any]:
        if not request.data:
            return {}
        try:
            body = json.loads(request.data)
        except ValueError as exc:
            raise ControlError(400, "the body is not JSON") from exc
        if not isinstance(body, dict):
            raise ControlError(400, "the body must be a JSON object")
        return body

    # -- routes --------------------------------------------------------------------------

    def health(self, _: Request) -> dict[str, Any]:
        rt = self.emulator.rt
        stack = self.emulator.stack
        return {
            "service": SERVICE_NAME,
            "endpoint_url": rt.endpoint_url,
            "region": rt.settings.region,
            "account_id": rt.settings.account_id,
            "delay": rt.settings.delay,
            "stack": stack.to_dict() if stack else None,
        }

    def deploy(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        template = body.get("template")
        stack = self.emulator.deploy(
            parameter_overrides=body.get("parameter_overrides") or {},
            stack_name=body.get("stack_name"),
            template=Path(template) if template else None,
        )
        return stack.to_dict()

    def stack(self, _: Request) -> dict[str, Any]:
        stack = self.emulator.stack
        if stack is None:
            raise ControlError(404, "no stack deployed")
        return stack.to_dict()

    def invocations(self, request: Request) -> dict[str, Any]:
        rt = self.emulator.rt
        since = int(_float(request.args.get("since"), 0))
        wait = _float(request.args.get("wait"), 0)
        found = rt.invocations.wait_new(since, wait) if wait > 0 else rt.invocations.since(since)
        return {
            "invocations": [item.to_dict() for item in found],
            "last_seq": rt.invocations.last_seq(),
        }

    def invoke(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        rt = self.emulator.rt
        spec = rt.find_function(str(body.get("function", "")))
        if spec is None:
            known = sorted({spec.logical_id for spec in rt.functions.values()})
            raise ControlError(404, f"unknown function {body.get('function')!r}; deployed: {known}")
        trigger = {"type": "local-invoke"}
        invocation = rt.dispatcher.invoke(
            spec, body.get("event", {}), trigger, env_overrides=body.get("env_overrides") or {}
        )
        return invocation.to_dict()

    def instances(self, request: Request) -> dict[str, Any]:
        name = request.args.get("endpoint", "")
        return {"endpoint": name, "instances": self.emulator.rt.instances(name)}

    def wait_events(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        rt = self.emulator.rt
        ids = [str(item) for item in body.get("event_ids") or []]
        done = rt.invocations.wait_events(ids, _float(body.get("timeout"), 30))
        found = [
            item.to_dict()
            for item in rt.invocations.since(0)
            if item.trigger.get("event_id") in ids
        ]
        return {"done": done, "invocations": found}

    def settle(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        return {"settled": self.emulator.rt.settle(_float(body.get("timeout"), 30))}

    def advance(self, _: Request) -> dict[str, Any]:
        return {"ran": self.emulator.rt.timeline.advance()}

    def fail_endpoint(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        name = str(body.get("endpoint", ""))
        reason = str(body.get("reason") or "The primary container for production variant failed")
        try:
            sagemaker.fail_endpoint(self.emulator.rt, name, reason)
        except ValidationError as exc:
            raise ControlError(404, str(exc)) from exc
        return {"endpoint": name, "status": "Failed"}

    def update_settings(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        settings = self.emulator.rt.settings
        if "delay" in body:
            delay = _float(body["delay"], settings.delay)
            if delay < 0:
                raise ControlError(400, "delay must be zero or more")
            settings.delay = delay
        return {"delay": settings.delay}

    def fire_due(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        rt = self.emulator.rt
        now = None
        if body.get("now"):
            try:
                now = datetime.fromisoformat(str(body["now"]).replace("Z", "+00:00"))
            except ValueError as exc:
                raise ControlError(400, f"now: not an ISO-8601 time: {body['now']!r}") from exc
            if now.tzinfo is None:
                now = now.replace(tzinfo=UTC)
        with rt.lock:
            return {"event_ids": schedules.fire_due_schedules(rt, now)}

    def fire_rule(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        try:
            return {"event_ids": schedules.fire_rule(self.emulator.rt, str(body.get("name", "")))}
        except LookupError as exc:
            raise ControlError(404, str(exc)) from exc


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ssm_guard.local.server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=None)
    parser.add_argument("--region", default=None)
    parser.add_argument("--template", type=Path, default=None)
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    configure(args.log_level.upper())
    settings = Settings(delay=delay_from_env() if args.delay is None else args.delay)
    if args.region:
        settings.region = args.region
    emulator = Emulator(host=args.host, port=args.port, settings=settings, template=args.template)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    endpoint_url = emulator.start()
    print(json.dumps({"endpoint_url": endpoint_url}), flush=True)
    try:
        while not stop.wait(0.1):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
