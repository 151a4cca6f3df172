"""Deployment settings, read once from the environment the template gives each function."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_PRODUCTION_TAG_KEYS = ("environment", "env")
DEFAULT_PRODUCTION_TAG_VALUES = ("prod", "production")
DEFAULT_PARAMETER_PREFIX = "/sagemaker-ssm-guard/targets"
GUARDRAIL_MODES = ("enforce", "monitor")

_PREFIX_RE = re.compile(r"^(/[a-zA-Z0-9_.\-]+)+$")


class SettingsError(ValueError):
    """A setting in the environment is missing or malformed."""


def _csv(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None or not value.strip():
        return default
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """What a deployer chose, as the functions see it.

    Tag keys and values that mark an endpoint as production are compared case-insensitively.
    """

    policy_arn: str = ""
    production_tag_keys: tuple[str, ...] = DEFAULT_PRODUCTION_TAG_KEYS
    production_tag_values: tuple[str, ...] = DEFAULT_PRODUCTION_TAG_VALUES
    parameter_prefix: str = DEFAULT_PARAMETER_PREFIX
    guardrail_mode: str = "enforce"
    alert_topic_arn: str = ""
    alert_bus_name: str = "default"
    exception_tag_key: str = "ssm-guard:exception-until"
    max_exception_hours: int = 24
    max_ssm_age_hours: int = 0
    name_prefix: str = "ssm-guard"
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.guardrail_mode not in GUARDRAIL_MODES:
            raise SettingsError(
                f"GUARDRAIL_MODE must be one of {', '.join(GUARDRAIL_MODES)}, "
                f"got {self.guardrail_mode!r}"
            )
        if not _PREFIX_RE.match(self.parameter_prefix):
            raise SettingsError(
                "TARGETS_PARAMETER_PREFIX must look like /a/b (letters, digits, _ . -), "
                f"got {self.parameter_prefix!r}"
            )
        if self.parameter_prefix.lower().lstrip("/").startswith(("aws", "ssm")):
            raise SettingsError("TARGETS_PARAMETER_PREFIX may not start with aws or ssm")
        if self.max_exception_hours <= 0:
            raise SettingsError("MAX_EXCEPTION_HOURS must be positive")
        if self.max_ssm_age_hours < 0:
            raise SettingsError("MAX_SSM_AGE_HOURS must be zero (off) or positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            policy_arn=env.get("SESSION_POLICY_ARN", ""),
            production_tag_keys=_csv(env.get("PRODUCTION_TAG_KEYS"), DEFAULT_PRODUCTION_TAG_KEYS),
            production_tag_values=_csv(
                env.get("PRODUCTION_TAG_VALUES"), DEFAULT_PRODUCTION_TAG_VALUES
            ),
            parameter_prefix=env.get("TARGETS_PARAMETER_PREFIX", "").rstrip("/")
            or DEFAULT_PARAMETER_PREFIX,
            guardrail_mode=env.get("GUARDRAIL_MODE", "enforce").strip().lower() or "enforce",
            alert_topic_arn=env.get("ALERT_TOPIC_ARN", ""),
            alert_bus_name=env.get("ALERT_BUS_NAME", "") or "default",
            exception_tag_key=env.get("EXCEPTION_TAG_KEY", "") or "ssm-guard:exception-until",
            max_exception_hours=_int(env, "MAX_EXCEPTION_HOURS", 24),
            max_ssm_age_hours=_int(env, "MAX_SSM_AGE_HOURS", 0),
            name_prefix=env.get("NAME_PREFIX", "") or "ssm-guard",
        )
