"""What the account's endpoints use: the configs they run on or are being updated to, and the
execution roles of their SSM-enabled variants.

The guard needs this picture before it takes the session policy off a role (after a revert, and
in the sweep's cleanup) and before it deletes a config it made. The API has no reverse lookup
(which endpoints use this role, or this config), so the picture is built forwards, with the
fewest calls AWS allows:

- `Search(Resource="Endpoint")`: 100 endpoints a call, each with its config name and status;
- `DescribeEndpointConfig` once per distinct config, and `DescribeModel` once per distinct model
  of an SSM-enabled variant (the role is on the model, aws-facts 2.4), only while roles are
  looked for;
- `DescribeEndpoint` only for an endpoint in the middle of an update (Search does not show the
  config it is being updated to) and, when Search did not settle the question, for endpoints
  changed in the last minutes (`ListEndpoints` reads the API itself; Search's index may lag).

A reading stops as soon as everything it looks for (`Wanted`) is found in use: the usual answer
for a role other endpoints share costs one Search page.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ssm_guard.aws import iam as iam_api
from ssm_guard.aws import sagemaker as sm_api
from ssm_guard.decisions import plan
from ssm_guard.endpoint import EndpointSnapshot, ModelInfo
from ssm_guard.enforce import Guard

RECENT_MARGIN_MS = 15 * 60 * 1000
"""Endpoints changed this recently are read live: Search's index may not show the change yet."""
MID_UPDATE_STATUSES = frozenset({"Updating", "SystemUpdating", "RollingBack"})
"""Statuses in which an endpoint may be moving to a config Search does not show."""


@dataclass
class Usage:
    """What endpoints use: role names (of SSM-enabled variants) and config names, each config
    with the endpoints that run on it or are being updated to it."""

    roles: set[str] = field(default_factory=set)
    configs: dict[str, set[str]] = field(default_factory=dict)

    def add_config(self, config_name: str, endpoint_name: str) -> None:
        self.configs.setdefault(config_name, set()).add(endpoint_name)


@dataclass(frozen=True)
class Wanted:
    """What a reading looks for: it stops once every one of these is found in use. Role names
    only make configs and models be read."""

    roles: frozenset[str] = frozenset()
    configs: frozenset[str] = frozenset()

    def found(self, usage: Usage) -> bool:
        return self.roles <= usage.roles and self.configs <= usage.configs.keys()


def configs_of(described: Mapping[str, Any]) -> list[str]:
    """The config an endpoint runs on, and the one a pending deployment moves it to."""
    names = [str(described["EndpointConfigName"])]
    pending = (described.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    if isinstance(pending, str) and pending not in names:
        names.append(pending)
    return names


@dataclass
class UsageReader:
    """Builds a `Usage` endpoint by endpoint, reading each config and model once. `configs` and
    `models` may be caches filled before (the sweep's): neither changes once created."""

    guard: Guard
    wanted: Wanted
    exclude: str | None = None
    """An endpoint left out (the one just reverted: its own roles do not keep the policy)."""
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, ModelInfo] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    read_live: set[str] = field(default_factory=set)

    @property
    def done(self) -> bool:
        return self.wanted.found(self.usage)

    def add(self, described: Mapping[str, Any]) -> None:
        """One endpoint, from DescribeEndpoint's answer or a Search record."""
        name = str(described["EndpointName"])
        if name == self.exclude:
            return
        names = configs_of(described)
        for config_name in names:
            self.usage.add_config(config_name, name)
        if not self.wanted.roles or self.wanted.roles <= self.usage.roles:
            return
        endpoint = {k: v for k, v in described.items() if k != "Tags"}
        for config_name in names:
            snapshot = sm_api.read_endpoint(
                self.guard.sagemaker,
                name,
                described={**endpoint, "EndpointConfigName": config_name},
                config=self._config(config_name),
                tags={},
                models=self.models,
            )
            the_plan = plan(snapshot, self.guard.settings)
            self.usage.roles |= {iam_api.role_name(role) for role in the_plan.roles}

    def _config(self, name: str) -> dict[str, Any]:
        """A config, read once. NOTE: a config (or model) deleted under a live endpoint hides
        which roles the endpoint uses; the error is raised, and the caller, in doubt, keeps the
        policy (enforce.unreadable)."""
        if name not in self.configs:
            self.configs[name] = sm_api.describe_endpoint_config(self.guard.sagemaker, name)
        return self.configs[name]

    def add_live(self, name: str) -> None:
        """One endpoint read live (DescribeEndpoint shows a pending config); a deleted one uses
        nothing."""
        if name == self.exclude or name in self.read_live:
            return
        self.read_live.add(name)
        try:
            described = sm_api.describe_endpoint(self.guard.sagemaker, name)
        except sm_api.EndpointNotFoundError:
            return
        self.add(described)

    def _cost(self, record: Mapping[str, Any]) -> int:
        """What reading a Search record costs: nothing when its config is known, a describe or
        two when not, a live read when it is mid-update. Cheap ones go first: the answer may
        be there."""
        if str(record.get("EndpointStatus")) in MID_UPDATE_STATUSES:
            return 2
        return 0 if str(record.get("EndpointConfigName")) in self.configs else 1

    def add_search(self) -> None:
        """Every endpoint Search holds, page by page, until what is wanted is found."""
        token: str | None = None
        while not self.done:
            records, token = sm_api.search_endpoints(self.guard.sagemaker, token)
            for record in sorted(records, key=self._cost):
                if str(record.get("EndpointStatus")) in MID_UPDATE_STATUSES:
                    self.add_live(str(record["EndpointName"]))
                else:
                    self.add(record)
                if self.done:
                    return
            if token is None:
                return

    def add_recent(self, since_ms: int, also: Iterable[str] = ()) -> None:
        """Endpoints changed since `since_ms` (and those named in `also`), read live."""
        if self.done:
            return
        changed = set(sm_api.endpoints_modified_since(self.guard.sagemaker, since_ms))
        for name in sorted(changed | set(also)):
            self.add_live(name)
            if self.done:
                return


def in_use(
    guard: Guard,
    wanted: Wanted,
    *,
    exclude: str | None = None,
    known: EndpointSnapshot | None = None,
) -> Usage:
    """Which of the wanted roles and configs endpoints other than `exclude` use: Search first,
    then the endpoints changed in the last minutes, read live. `known`: an endpoint read
    already (the one just reverted), whose config and models need no second read when other
    endpoints share them. Errors are raised: the caller, in doubt, keeps the policy or the
    config."""
    reader = UsageReader(guard, wanted, exclude=exclude)
    if known is not None:
        reader.configs[known.config_name] = dict(known.config)
        reader.models.update(known.models)
    reader.add_search()
    reader.add_recent(int(time.time() * 1000) - RECENT_MARGIN_MS)
    return reader.usage
