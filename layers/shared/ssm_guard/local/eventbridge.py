"""EventBridge and Lambda additions to moto 5.2.5: rules deliver to the template's functions.

- `Rule.send_to_targets` raises NotImplementedError for a Lambda target in moto. Here a
  matching, enabled rule hands each Lambda target to the local invoker on a worker pool
  (EventBridge invokes Lambda asynchronously); other targets keep moto's behaviour. The rule's
  pattern is moto's, as deployed from the template: an event the rule does not match never
  reaches the function.
- moto's pattern matcher flattens nested objects but not arrays of objects, so a pattern on
  `detail.ProductionVariants.EnableSSMAccess` could never match; arrays of objects are
  flattened into arrays of values here, as EventBridge matches them. Its operators
  (`equals-ignore-case`, `prefix`, `suffix`, `anything-but`, `exists`, `numeric`, `wildcard`,
  `$or`) are moto's.
- `lambda:Invoke` on moto answers a canned payload without Docker. Here it runs the handler
  locally (synchronously, or queued for `InvocationType=Event` and internal callers).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.events.models import EventPattern, Rule
from moto.events.utils import EventTemplateParser
from moto.utilities.arns import parse_arn

from ssm_guard.local import runtime as runtime_module
from ssm_guard.local._logging import get_logger

log = get_logger(__name__)

_originals: dict[str, Any] = {}


def lambda_event(original: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge hands it to Lambda: ISO-8601 `time`, no moto-only fields."""
    event = copy.deepcopy(original)
    event.pop("ingestion-time", None)
    moment = event.get("time")
    if isinstance(moment, int | float) or (isinstance(moment, str) and _is_number(moment)):
        event["time"] = datetime.fromtimestamp(float(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def target_payload(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What a target receives: `Input`, `InputPath`, `InputTransformer`, or the event."""
    if target.get("Input") is not None:
        return json.loads(target["Input"])
    if target.get("InputPath"):
        from jsonpath_ng.ext import parse

        matches = parse(target["InputPath"]).find(event)
        return matches[0].value if matches else None
    transformer = target.get("InputTransformer")
    if transformer:
        # moto's template parser reads `ingestion-time` even when the template does not use it.
        source = {**event, "ingestion-time": event.get("ingestion-time", event.get("time"))}
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=source,  # type: ignore[arg-type]
        )
    return event


def _is_lambda(target: dict[str, Any]) -> bool:
    return parse_arn(target["Arn"]).service == "lambda"


def _send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
    rt = runtime_module.current()
    if rt is None:
        _originals["send_to_targets"](self, original_event, transform_input)
        return
    # NOTE: moto 5.2.5 delivers to disabled rules too, and treats a scheduled rule's missing
    # pattern as "match everything"; EventBridge does neither.
    if self.state != "ENABLED" or not self.event_pattern.get_pattern():
        return
    lambda_targets = [target for target in self.targets if _is_lambda(target)]
    if len(lambda_targets) < len(self.targets):
        others = copy.copy(self)
        others.targets = [target for target in self.targets if not _is_lambda(target)]
        _originals["send_to_targets"](others, original_event, transform_input)
    if not lambda_targets or not self.event_pattern.matches_event(original_event):
        return
    event = lambda_event(original_event)
    for target in lambda_targets:
        spec = rt.find_function(target["Arn"])
        trigger = {
            "type": "eventbridge",
            "rule": self.name,
            "event_id": event.get("id"),
            "detail_type": event.get("detail-type"),
        }
        if spec is None:
            log.warning(
                "rule target has no local code",
                extra={"rule": self.name, "target": target["Arn"]},
            )
            continue
        payload = target_payload(target, event) if transform_input else event
        rt.dispatcher.submit(spec, payload, trigger, event_id=event.get("id"))


def _flatten_dict(
    node: Any, prefix: str = "", result: dict[str, Any] | None = None
) -> dict[str, Any]:
    """moto's flattening, extended to arrays of objects: `a.b` collects every element's `b`."""
    if result is None:
        result = {}
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict) and value:
                _flatten_dict(value, path, result)
            elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
                for item in value:
                    if isinstance(item, dict):
                        for sub_path, sub_value in _flatten_dict(item, path).items():
                            values = sub_value if isinstance(sub_value, list) else [sub_value]
                            result.setdefault(sub_path, []).extend(values)
                    else:
                        result.setdefault(path, []).append(item)
            else:
                result[path] = value
    return result


def _invoke(
    self: LambdaFunction, body: Any, request_headers: Any, response_headers: Any
) -> str | bytes:
    rt = runtime_module.current()
    spec = rt.find_function(self.function_name) if rt else None
    if rt is None or spec is None:
        result: str | bytes = _originals["invoke"](self, body, request_headers, response_headers)
        return result
    event = json.loads(body) if body else {}
    invocation_type = (request_headers or {}).get("X-Amz-Invocation-Type") or "RequestResponse"
    if not request_headers or invocation_type == "Event":
        # moto's SNS, SQS and log deliveries call without headers: Lambda runs those async.
        rt.dispatcher.submit(spec, event, {"type": "lambda:Invoke", "invocation_type": "Event"})
        return b""
    if invocation_type == "DryRun":
        return b""
    invocation = rt.dispatcher.invoke(
        spec, event, {"type": "lambda:Invoke", "invocation_type": invocation_type}
    )
    if not invocation.ok:
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(invocation.error).encode("utf-8")
    return json.dumps(invocation.result).encode("utf-8")


_PATCHES: dict[str, tuple[type, str, Any]] = {
    "send_to_targets": (Rule, "send_to_targets", _send_to_targets),
    "_flatten_dict": (EventPattern, "_flatten_dict", staticmethod(_flatten_dict)),
    "invoke": (LambdaFunction, "invoke", _invoke),
}


def install() -> None:
    if _originals:
        return
    for key, (owner, attribute, replacement) in _PATCHES.items():
        _originals[key] = owner.__dict__[attribute]
        setattr(owner, attribute, replacement)


def uninstall() -> None:
    for key, (owner, attribute, _) in _PATCHES.items():
        if key in _originals:
            setattr(owner, attribute, _originals.pop(key))
