"""Time-based triggers that moto stores but never fires.

- EventBridge Scheduler one-time schedules, `at(yyyy-mm-ddThh:mm:ss)`: a loop fires each one
  whose time has passed and whose target is a Lambda function (the target's `Input` is the
  event), then deletes it when `ActionAfterCompletion` is DELETE, as Scheduler does.
- EventBridge rules with a `ScheduleExpression` (rate/cron): `fire_rule` delivers one
  `Scheduled Event` to the rule's Lambda targets on demand; nothing fires them by the clock.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ssm_guard.local._logging import get_logger
from ssm_guard.local.runtime import Runtime

log = get_logger(__name__)

_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")


def due_time(expression: str, timezone: str | None) -> datetime | None:
    """When an `at(...)` expression fires, as an aware datetime; None for rate/cron."""
    match = _AT.match(expression.strip())
    if not match:
        return None
    local = datetime.fromisoformat(match.group(1))
    return local.replace(tzinfo=ZoneInfo(timezone or "UTC"))


def _schedule_payload(target: dict[str, Any]) -> Any:
    raw = target.get("Input")
    if raw is None:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def fire_due_schedules(rt: Runtime, now: datetime | None = None) -> list[str]:
    """Fire every due one-time schedule with a Lambda target; returns the delivery ids."""
    from moto.scheduler.models import scheduler_backends

    now = now or datetime.now(UTC)
    backend = scheduler_backends[rt.settings.account_id][rt.settings.region]
    fired = []
    for group in list(backend.schedule_groups.values()):
        for schedule in list(group.schedules.values()):
            when = due_time(schedule.schedule_expression, schedule.schedule_expression_timezone)
            key = (schedule.arn, float(schedule.last_modified_date))
            if when is None or when > now or schedule.state != "ENABLED":
                continue
            if key in rt.fired_schedules:
                continue
            rt.fired_schedules.add(key)
            target = schedule.target or {}
            spec = rt.find_function(target.get("Arn", "")) if target.get("Arn") else None
            if spec is None:
                log.warning(
                    "schedule target has no local code",
                    extra={"schedule": schedule.arn, "target": target.get("Arn")},
                )
            else:
                delivery_id = str(uuid.uuid4())
                trigger = {"type": "scheduler", "schedule": schedule.arn, "event_id": delivery_id}
                rt.dispatcher.submit(spec, _schedule_payload(target), trigger, event_id=delivery_id)
                fired.append(delivery_id)
            if (schedule.action_after_completion or "NONE") == "DELETE":
                group.delete_schedule(schedule.name)
            log.info("schedule fired", extra={"schedule": schedule.arn})
    return fired


class SchedulerLoop:
    """Checks for due one-time schedules every `interval` seconds."""

    def __init__(self, rt: Runtime, interval: float) -> None:
        self._rt = rt
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ssm-guard-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with self._rt.lock:
                    fire_due_schedules(self._rt)
            except Exception:  # keep the loop alive; the next tick tries again
                log.exception("schedule check failed")


def scheduled_event(rule_arn: str, account_id: str, region: str) -> dict[str, Any]:
    """The event EventBridge sends for a scheduled rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def fire_rule(rt: Runtime, rule_or_function: str) -> list[str]:
    """Deliver one `Scheduled Event` for the scheduled rule(s) named, or targeting a function.

    Returns the event ids delivered; raises LookupError when nothing matches.
    """
    from moto.events.models import events_backends

    from ssm_guard.local.eventbridge import target_payload

    backend = events_backends[rt.settings.account_id][rt.settings.region]
    wanted = rt.find_function(rule_or_function)
    fired = []
    for bus in list(backend.event_buses.values()):
        for rule in list(bus.rules.values()):
            if not rule.scheduled_expression:
                continue
            targets = [
                target
                for target in rule.targets
                if target["Arn"].split(":")[2] == "lambda" and rt.find_function(target["Arn"])
            ]
            if rule.name != rule_or_function:
                targets = [
                    target
                    for target in targets
                    if wanted and rt.find_function(target["Arn"]) == wanted
                ]
            if not targets:
                continue
            event = scheduled_event(rule.arn, rt.settings.account_id, rt.settings.region)
            for target in targets:
                spec = rt.find_function(target["Arn"])
                assert spec is not None  # filtered above
                trigger = {"type": "schedule-rule", "rule": rule.name, "event_id": event["id"]}
                rt.dispatcher.submit(
                    spec, target_payload(target, event), trigger, event_id=event["id"]
                )
            fired.append(event["id"])
    if not fired:
        raise LookupError(f"no scheduled rule named or targeting {rule_or_function!r}")
    return fired
