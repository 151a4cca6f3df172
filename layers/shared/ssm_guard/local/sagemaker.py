"""SageMaker additions to moto 5.2.5: UpdateEndpoint, the endpoint lifecycle, events, log streams.

What moto lacks or does differently from AWS, and what this module changes:

- `UpdateEndpoint` is missing. Added as a method on moto's response class (moto dispatches an
  operation to the method named after it in snake_case) and one on the backend. Refused while
  the endpoint is not InService/Failed with AWS's `Cannot update in-progress endpoint "ARN".`;
  on success the endpoint is Updating, then InService on the new config with a new fleet.
- Endpoints are InService at once in moto. Here CreateEndpoint, UpdateEndpoint,
  UpdateEndpointWeightsAndCapacities and DeleteEndpoint pass through Creating / Updating /
  Deleting for `Settings.delay` seconds, and every status change puts a
  `SageMaker Endpoint State Change` event on the default bus, shaped as AWS sends it.
- ARNs keep the caller's casing in moto; AWS lower-cases the name (aws-facts.md §1.2).
- When an endpoint comes InService, each instance gets its container log stream and, for
  variants with EnableSSMAccess, its `VARIANT/INSTANCE/ssm` stream (seed page).
- `Search(Resource="Endpoint")` pages and honours every filter (see `search.py`);
  ListEndpoints pages by 10 unless asked for up to 100, as AWS does.
- CreateEndpointConfig keeps ExecutionRoleArn and friends, accepts variants without a model
  (inference components) and current instance types, and emits a config state-change event.
- Every successful mutating SageMaker call (Create*, Update*, Delete*, AddTags...) is recorded
  for CloudTrail LookupEvents and, while a trail logs, put on the bus as an
  `AWS API Call via CloudTrail` event in lowerCamelCase (aws-facts.md §1.7).
- AddTags replaces the value of a key the resource already has; moto 5.2.5 adds a duplicate.

Everything leans on moto internals; `pyproject.toml` pins moto and the tests exercise each
addition over HTTP.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, BaseResponse
from moto.core.utils import utcnow
from moto.sagemaker import models as sm
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.responses import SageMakerResponse

from ssm_guard.local import cloudtrail, shapes
from ssm_guard.local import runtime as runtime_module
from ssm_guard.local import search as endpoint_search
from ssm_guard.local._logging import get_logger
from ssm_guard.local.cloudwatch import put_lines
from ssm_guard.local.runtime import Runtime

log = get_logger(__name__)

Backend = sm.SageMakerModelBackend
_LOWER_CASED_ARN_TYPES = frozenset({"endpoint", "endpoint-config", "model"})
# NOTE: moto 5.2.5 only knows instance types up to ml.g4dn/ml.p3 and rejects g5, g6, p4, p5,
# inf2 (local-aws-notes.md); any `ml.FAMILY.SIZE` is accepted here instead.
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9-]+$")
_UPDATABLE = frozenset({"InService", "Failed"})

_originals: dict[str, Any] = {}


def _rt() -> Runtime:
    current = runtime_module.current()
    if current is None:
        raise RuntimeError("the SageMaker additions run only inside a local AWS emulator")
    return current


# -- ARNs and lookups ----------------------------------------------------------------------


def _arn_formatter(kind: str, name: str, account_id: str, region_name: str) -> str:
    if kind in _LOWER_CASED_ARN_TYPES:
        name = name.lower()
    formatted: str = _originals["arn_formatter"](kind, name, account_id, region_name)
    return formatted


def _arn(kind: str, name: str, backend: Backend) -> str:
    return _arn_formatter(kind, name, backend.account_id, backend.region_name)


def _get_resource_from_arn(self: Backend, arn: str) -> Any:
    kind, _, name = arn.split(":")[-1].partition("/")
    tables = {"endpoint": self.endpoints, "endpoint-config": self.endpoint_configs}
    table = tables.get(kind, self._models if kind == "model" else None)
    if table is None:
        return _originals["_get_resource_from_arn"](self, arn)
    # ARNs are lower-cased, names are not: match the name case-insensitively.
    for key, resource in table.items():
        if key.lower() == name.lower():
            return resource
    raise ValidationError(message=f"Could not find {kind} with name {name}")


def _add_tags(self: Backend, arn: str, tags: list[dict[str, str]]) -> list[dict[str, str]]:
    resource = self._get_resource_from_arn(arn)
    new = {tag["Key"]: tag for tag in tags}
    resource.tags = [tag for tag in resource.tags if tag["Key"] not in new] + list(new.values())
    result: list[dict[str, str]] = resource.tags
    return result


def _not_found(kind: str, name: str, backend: Backend) -> ValidationError:
    label = "endpoint configuration" if kind == "endpoint-config" else kind
    return ValidationError(message=f'Could not find {label} "{_arn(kind, name, backend)}".')


def _find(table: dict[str, Any], name: str) -> Any:
    return table.get(name) or next((v for k, v in table.items() if k.lower() == name.lower()), None)


# -- endpoint configs ----------------------------------------------------------------------


def _validate_instance_type(self: sm.FakeEndpointConfig, instance_type: str) -> None:
    if not _INSTANCE_TYPE.match(instance_type or ""):
        _originals["validate_instance_type"](self, instance_type)


def _validate_production_variants(self: Backend, production_variants: list[dict[str, Any]]) -> None:
    # Inference-component variants have no ModelName; moto 5.2.5 fails on them with a KeyError.
    with_models = [variant for variant in production_variants if variant.get("ModelName")]
    _originals["validate_production_variants"](self, with_models)


def _create_endpoint_config(
    self: Backend, endpoint_config_name: str, *args: Any, **kwargs: Any
) -> Any:
    # Under the lock: `_find` iterates the configs while parallel creates insert into them
    # ("dictionary changed size during iteration"), and two creates of one name must not both
    # find it free.
    with _rt().lock:
        existing = _find(self.endpoint_configs, endpoint_config_name)
        if existing is not None:
            raise ValidationError(
                message="Cannot create already existing endpoint configuration "
                f'"{existing.endpoint_config_arn}".'
            )
        return _originals["create_endpoint_config"](self, endpoint_config_name, *args, **kwargs)


_CONFIG_EXTRAS = {
    "ExecutionRoleArn": "execution_role_arn",
    "VpcConfig": "vpc_config",
    "EnableNetworkIsolation": "enable_network_isolation",
    "ExplainerConfig": "explainer_config",
    "ShadowProductionVariants": "shadow_production_variants",
}


def _response_create_endpoint_config(self: SageMakerResponse) -> ActionResult:
    result: ActionResult = _originals["response_create_endpoint_config"](self)
    backend = self.sagemaker_backend
    config = backend.endpoint_configs[self._get_param("EndpointConfigName")]
    for param, attribute in _CONFIG_EXTRAS.items():
        value = self._get_param(param)
        if value is not None:
            # moto serialises a config from its attributes: snake_case becomes the API name.
            setattr(config, attribute, value)
    detail = shapes.config_event_detail(
        config.response_object, created=config.creation_time, tags=config.tags
    )
    _emit(backend, shapes.CONFIG_EVENT, detail, [config.endpoint_config_arn])
    return result


def _delete_endpoint_config(self: Backend, endpoint_config_name: str) -> None:
    with _rt().lock:  # the same table `_create_endpoint_config` looks names up in
        config = self.endpoint_configs.get(endpoint_config_name)
        _originals["delete_endpoint_config"](self, endpoint_config_name)
    if config is not None:
        # On deletion SageMaker sends the config once more, with empty Tags (aws-facts.md §1.4).
        detail = shapes.config_event_detail(
            config.response_object, created=config.creation_time, tags=[]
        )
        _emit(self, shapes.CONFIG_EVENT, detail, [config.endpoint_config_arn])


# -- endpoints -----------------------------------------------------------------------------


def _create_endpoint(
    self: Backend, endpoint_name: str, endpoint_config_name: str, tags: list[dict[str, str]]
) -> sm.FakeEndpoint:
    rt = _rt()
    with rt.lock:
        existing = _find(self.endpoints, endpoint_name)
        if existing is not None:
            raise ValidationError(
                message=f'Cannot create already existing endpoint "{existing.arn}".'
            )
        if endpoint_config_name not in self.endpoint_configs:
            raise _not_found("endpoint-config", endpoint_config_name, self)
        endpoint: sm.FakeEndpoint = _originals["create_endpoint"](
            self, endpoint_name, endpoint_config_name, tags
        )
        config = self.endpoint_configs[endpoint_config_name]
        endpoint.production_variants = shapes.variant_summaries(config.production_variants)
        state = rt.endpoint_state(self.account_id, self.region_name, endpoint_name)
        state.generation += 1
        state.fleet = shapes.new_fleet(endpoint.production_variants)
        state.config_variants = copy.deepcopy(config.production_variants)
        generation = state.generation
        _transition(self, endpoint, "Creating")
    _later(rt, endpoint_name, lambda: _finish_deploy(self, endpoint_name, generation, None))
    return endpoint


def _describe_endpoint(self: Backend, endpoint_name: str) -> dict[str, Any]:
    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        raise _not_found("endpoint", endpoint_name, self)
    response: dict[str, Any] = endpoint.response_object
    return response


def _update_endpoint(
    self: Backend,
    endpoint_name: str,
    endpoint_config_name: str,
    retain_all_variant_properties: bool = False,
    exclude_retained_variant_properties: list[dict[str, str]] | None = None,
) -> str:
    rt = _rt()
    with rt.lock:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            raise _not_found("endpoint", endpoint_name, self)
        if endpoint.endpoint_status not in _UPDATABLE:
            raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
        config = self.endpoint_configs.get(endpoint_config_name)
        if config is None:
            raise _not_found("endpoint-config", endpoint_config_name, self)
        excluded = [
            item.get("VariantPropertyType", "")
            for item in exclude_retained_variant_properties or []
        ]
        target = shapes.next_variants(
            endpoint.production_variants,
            config.production_variants,
            retain_all=bool(retain_all_variant_properties),
            exclude=excluded,
        )
        state = rt.endpoint_state(self.account_id, self.region_name, endpoint_name)
        state.generation += 1
        generation = state.generation
        endpoint.pending_deployment_summary = {
            "EndpointConfigName": endpoint_config_name,
            "StartTime": utcnow(),
            "ProductionVariants": [
                {
                    key: variant[key]
                    for key in ("VariantName", "DesiredWeight", "DesiredInstanceCount")
                    if key in variant
                }
                for variant in target
            ],
        }
        endpoint.failure_reason = None
        _transition(self, endpoint, "Updating")
        deployment = (config, target)
    log.info(
        "endpoint update started",
        extra={"endpoint_name": endpoint_name, "endpoint_config_name": endpoint_config_name},
    )
    _later(rt, endpoint_name, lambda: _finish_deploy(self, endpoint_name, generation, deployment))
    return str(endpoint.arn)


def _update_endpoint_weights_and_capacities(
    self: Backend, endpoint_name: str, desired_weights_and_capacities: list[dict[str, Any]]
) -> str:
    rt = _rt()
    with rt.lock:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            raise _not_found("endpoint", endpoint_name, self)
        if endpoint.endpoint_status not in _UPDATABLE:
            raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
        names = [item.get("VariantName") for item in desired_weights_and_capacities]
        for name in names:
            if names.count(name) > 1:
                raise ValidationError(
                    message=f'The variant name "{name}" was non-unique within the request.'
                )
            if not any(variant["VariantName"] == name for variant in endpoint.production_variants):
                raise ValidationError(
                    message=f'The variant name(s) "{name}" is/are not present within endpoint '
                    f'configuration "{endpoint.endpoint_config_name}".'
                )
        # NOTE: moto 5.2.5 overwrites a weight the request omits with null, which then vanishes
        # from DescribeEndpoint (local-aws-notes.md); AWS keeps what the request leaves out.
        target = copy.deepcopy(endpoint.production_variants)
        for item in desired_weights_and_capacities:
            variant = next(v for v in target if v["VariantName"] == item["VariantName"])
            if item.get("DesiredWeight") is not None:
                variant["DesiredWeight"] = variant["CurrentWeight"] = float(item["DesiredWeight"])
            if item.get("DesiredInstanceCount") is not None:
                count = int(item["DesiredInstanceCount"])
                variant["DesiredInstanceCount"] = variant["CurrentInstanceCount"] = count
        state = rt.endpoint_state(self.account_id, self.region_name, endpoint_name)
        state.generation += 1
        generation = state.generation
        _transition(self, endpoint, "Updating")
    _later(rt, endpoint_name, lambda: _finish_resize(self, endpoint_name, generation, target))
    return str(endpoint.arn)


def _delete_endpoint(self: Backend, endpoint_name: str) -> None:
    rt = _rt()
    with rt.lock:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            raise _not_found("endpoint", endpoint_name, self)
        # AWS refuses to delete an endpoint that is still Creating or Updating, with the same
        # message as UpdateEndpoint (aws-facts.md §2.3, the k8s operator's error prefixes).
        if endpoint.endpoint_status not in shapes.SETTLED_STATUSES:
            raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
        state = rt.endpoint_state(self.account_id, self.region_name, endpoint_name)
        state.generation += 1
        generation = state.generation
        _transition(self, endpoint, "Deleting")
    _later(rt, endpoint_name, lambda: _finish_delete(self, endpoint_name, generation))


def fail_endpoint(rt: Runtime, name: str, reason: str) -> None:
    """Put an endpoint in `Failed` now (what a broken container or capacity shortage does),
    cancelling its pending transition and emitting the FAILED event."""
    backend = sm.sagemaker_backends[rt.settings.account_id][rt.settings.region]
    with rt.lock:
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            raise _not_found("endpoint", name, backend)
        rt.endpoint_state(backend.account_id, backend.region_name, name).generation += 1
        endpoint.failure_reason = reason
        endpoint.pending_deployment_summary = None
        _transition(backend, endpoint, "Failed")


# -- lifecycle -----------------------------------------------------------------------------


def _later(rt: Runtime, endpoint_name: str, action: Callable[[], None]) -> None:
    rt.timeline.call_later(rt.settings.delay, action, name=f"endpoint {endpoint_name}")


def _current_state(self: Backend, endpoint_name: str, generation: int) -> Any:
    """The endpoint if the transition scheduled for `generation` is still the latest one."""
    rt = _rt()
    endpoint = self.endpoints.get(endpoint_name)
    state = rt.endpoints.get((self.account_id, self.region_name, endpoint_name))
    if endpoint is None or state is None or state.generation != generation:
        return None, None
    return endpoint, state


def _finish_deploy(
    self: Backend,
    endpoint_name: str,
    generation: int,
    deployment: tuple[sm.FakeEndpointConfig, list[dict[str, Any]]] | None,
) -> None:
    rt = _rt()
    with rt.lock:
        endpoint, state = _current_state(self, endpoint_name, generation)
        if endpoint is None:
            return
        if deployment is not None:  # an update: switch to the new config and a new fleet
            config, target = deployment
            endpoint.endpoint_config_name = config.endpoint_config_name
            endpoint.production_variants = target
            endpoint.data_capture_config = config.data_capture_config
            endpoint.pending_deployment_summary = None
            state.fleet = shapes.new_fleet(target)
            state.config_variants = copy.deepcopy(config.production_variants)
        _write_fleet_logs(self, endpoint_name, state.config_variants, state.fleet)
        _transition(self, endpoint, "InService")


def _finish_resize(
    self: Backend, endpoint_name: str, generation: int, target: list[dict[str, Any]]
) -> None:
    rt = _rt()
    with rt.lock:
        endpoint, state = _current_state(self, endpoint_name, generation)
        if endpoint is None:
            return
        before = {iid for ids in state.fleet.values() for iid in ids}
        endpoint.production_variants = target
        state.fleet = shapes.resized_fleet(state.fleet, target)
        added = {
            variant: [iid for iid in ids if iid not in before]
            for variant, ids in state.fleet.items()
        }
        _write_fleet_logs(self, endpoint_name, state.config_variants, added)
        _transition(self, endpoint, "InService")


def _finish_delete(self: Backend, endpoint_name: str, generation: int) -> None:
    rt = _rt()
    with rt.lock:
        endpoint, _ = _current_state(self, endpoint_name, generation)
        if endpoint is None:
            return
        del self.endpoints[endpoint_name]
        rt.endpoints.pop((self.account_id, self.region_name, endpoint_name), None)
        endpoint.last_modified_time = utcnow()
        # DELETED is not an API status; events use it once the endpoint is gone (aws-facts §1.2).
        _emit_endpoint_event(self, endpoint, "DELETED")


def _transition(self: Backend, endpoint: sm.FakeEndpoint, status: str) -> None:
    endpoint.endpoint_status = status
    endpoint.last_modified_time = utcnow()
    log.info(
        "endpoint status changed",
        extra={"endpoint_name": endpoint.endpoint_name, "status": status},
    )
    _emit_endpoint_event(self, endpoint, shapes.event_status(status))


def _emit_endpoint_event(self: Backend, endpoint: sm.FakeEndpoint, status: str) -> None:
    detail = shapes.endpoint_event_detail(
        name=endpoint.endpoint_name,
        arn=endpoint.arn,
        config_name=endpoint.endpoint_config_name,
        variants=endpoint.production_variants,
        status=status,
        created=endpoint.creation_time,
        modified=endpoint.last_modified_time,
        tags=endpoint.tags,
        failure_reason=endpoint.failure_reason,
    )
    _emit(self, shapes.ENDPOINT_EVENT, detail, [endpoint.arn])


def _emit(self: Backend, detail_type: str, detail: dict[str, Any], resources: list[str]) -> None:
    from moto.events.models import events_backends

    events = events_backends[self.account_id][self.region_name]
    entry = {
        "Source": shapes.EVENT_SOURCE,
        "DetailType": detail_type,
        "Detail": json.dumps(detail, default=str),
        "Resources": resources,
    }
    events.put_events([entry])
    log.debug("event emitted", extra={"detail_type": detail_type, "resources": resources})


def _write_fleet_logs(
    self: Backend,
    endpoint_name: str,
    config_variants: list[dict[str, Any]],
    fleet: dict[str, list[str]],
) -> None:
    rt = _rt()
    group = shapes.ENDPOINT_LOG_GROUP.format(name=endpoint_name)
    by_name = {variant["VariantName"]: variant for variant in config_variants}
    for variant_name, instance_ids in fleet.items():
        variant = by_name.get(variant_name, {})
        model = self._models.get(variant.get("ModelName") or "")
        model_shape = (
            {"PrimaryContainer": model.primary_container, "Containers": model.containers}
            if model
            else None
        )
        containers, multi = shapes.container_names(model_shape)
        for instance_id in instance_ids:
            streams = shapes.container_log_streams(variant_name, instance_id, containers, multi)
            if variant.get("EnableSSMAccess"):
                streams[f"{variant_name}/{instance_id}/ssm"] = shapes.ssm_log_lines(
                    endpoint_name, variant_name, instance_id, containers, multi
                )
            for stream, lines in streams.items():
                put_lines(
                    rt, group, stream, lines, account_id=self.account_id, region=self.region_name
                )


# -- responses -----------------------------------------------------------------------------


def _response_update_endpoint(self: SageMakerResponse) -> ActionResult:
    arn = self.sagemaker_backend.update_endpoint(
        endpoint_name=self._get_param("EndpointName"),
        endpoint_config_name=self._get_param("EndpointConfigName"),
        retain_all_variant_properties=self._get_param("RetainAllVariantProperties", False),
        exclude_retained_variant_properties=self._get_param("ExcludeRetainedVariantProperties"),
    )
    return ActionResult({"EndpointArn": arn})


def _search_record(endpoint: sm.FakeEndpoint) -> dict[str, Any]:
    record = {
        key: value
        for key, value in endpoint.response_object.items()
        if key in endpoint_search.ENDPOINT_PROPERTIES
    }
    record["Tags"] = list(endpoint.tags)
    return record


def _response_search(self: SageMakerResponse) -> ActionResult:
    if self._get_param("Resource") != "Endpoint":
        result: ActionResult = _originals["response_search"](self)
        return result
    backend = self.sagemaker_backend
    records = [_search_record(endpoint) for endpoint in list(backend.endpoints.values())]
    try:
        page = endpoint_search.search(
            records,
            expression=self._get_param("SearchExpression"),
            sort_by=self._get_param("SortBy"),
            sort_order=self._get_param("SortOrder"),
            next_token=self._get_param("NextToken"),
            max_results=self._get_param("MaxResults"),
        )
    except endpoint_search.SearchError as exc:
        raise ValidationError(message=str(exc)) from exc
    return ActionResult(page)


def _response_list_endpoints(self: SageMakerResponse) -> ActionResult:
    # NOTE: moto 5.2.5 pages ListEndpoints by 100 and accepts any MaxResults; AWS answers 10
    # by default and refuses more than 100 (botocore model), which code must page through.
    max_results = self._get_param("MaxResults")
    if max_results is not None and not 1 <= int(max_results) <= 100:
        raise ValidationError(
            message=f"1 validation error detected: Value '{max_results}' at 'maxResults' failed "
            "to satisfy constraint: Member must have value less than or equal to 100"
        )
    endpoints, next_token = self.sagemaker_backend.list_endpoints(
        sort_by=self._get_param("SortBy"),
        sort_order=self._get_param("SortOrder"),
        next_token=self._get_param("NextToken"),
        max_results=10 if max_results is None else int(max_results),
        name_contains=self._get_param("NameContains"),
        creation_time_before=self._get_param("CreationTimeBefore"),
        creation_time_after=self._get_param("CreationTimeAfter"),
        last_modified_time_before=self._get_param("LastModifiedTimeBefore"),
        last_modified_time_after=self._get_param("LastModifiedTimeAfter"),
        status_equals=self._get_param("StatusEquals"),
    )
    summaries = [endpoint.summary() for endpoint in endpoints]
    return ActionResult({"Endpoints": summaries, "NextToken": next_token})


# NOTE: AWS delivers these to EventBridge only while a trail logs management events, and
# minutes after the call; the emulator needs a logging trail too (CreateTrail + StartLogging)
# but delivers at once. LookupEvents sees every call either way (cloudtrail.py).
_MUTATING = re.compile(
    r"^(Add|Create|Delete|Put|Start|Stop|Update|Register|Deregister|Enable|Disable)"
)


def _lower_camel(value: Any) -> Any:
    """CloudTrail spells API members lowerCamelCase: EnableSSMAccess -> enableSSMAccess."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _lower_camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_lower_camel(item) for item in value]
    return value


def cloudtrail_detail(
    action: str, request: dict[str, Any], response: Any, *, account_id: str, region: str
) -> dict[str, Any]:
    """`detail` of an `AWS API Call via CloudTrail` event for a SageMaker call."""
    now = shapes.iso_time(utcnow())
    return {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDALOCALEMULATOR000",
            "arn": f"arn:aws:iam::{account_id}:user/local",
            "accountId": account_id,
        },
        "eventTime": now,
        "eventSource": "sagemaker.amazonaws.com",
        "eventName": action,
        "awsRegion": region,
        "sourceIPAddress": "127.0.0.1",
        "requestParameters": _lower_camel(request) or None,
        "responseElements": _lower_camel(response) or None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
    }


def _call_action(self: SageMakerResponse) -> Any:
    # SageMakerResponse inherits call_action; uninstall removes this override again.
    status, headers, body = BaseResponse.call_action(self)
    action = self._get_action()
    if runtime_module.current() is None or not _MUTATING.match(action or ""):
        return status, headers, body
    if str(status) != "200":
        return status, headers, body
    try:
        response = json.loads(body) if body else None
    except ValueError:
        response = None
    backend = self.sagemaker_backend
    detail = cloudtrail_detail(
        action,
        dict(self.params or {}),
        response,
        account_id=backend.account_id,
        region=backend.region_name,
    )
    cloudtrail.record(_rt(), detail)
    if cloudtrail.trail_is_logging(backend.account_id, backend.region_name):
        _emit(backend, "AWS API Call via CloudTrail", detail, [])
    return status, headers, body


# -- install -------------------------------------------------------------------------------

_PATCHES: dict[str, tuple[Any, str, Any]] = {
    "arn_formatter": (sm, "arn_formatter", _arn_formatter),
    "_get_resource_from_arn": (Backend, "_get_resource_from_arn", _get_resource_from_arn),
    "add_tags": (Backend, "add_tags", _add_tags),
    "validate_instance_type": (
        sm.FakeEndpointConfig,
        "validate_instance_type",
        _validate_instance_type,
    ),
    "validate_production_variants": (
        Backend,
        "validate_production_variants",
        _validate_production_variants,
    ),
    "create_endpoint_config": (Backend, "create_endpoint_config", _create_endpoint_config),
    "delete_endpoint_config": (Backend, "delete_endpoint_config", _delete_endpoint_config),
    "create_endpoint": (Backend, "create_endpoint", _create_endpoint),
    "describe_endpoint": (Backend, "describe_endpoint", _describe_endpoint),
    "update_endpoint": (Backend, "update_endpoint", _update_endpoint),
    "update_endpoint_weights_and_capacities": (
        Backend,
        "update_endpoint_weights_and_capacities",
        _update_endpoint_weights_and_capacities,
    ),
    "delete_endpoint": (Backend, "delete_endpoint", _delete_endpoint),
    "response_create_endpoint_config": (
        SageMakerResponse,
        "create_endpoint_config",
        _response_create_endpoint_config,
    ),
    "response_update_endpoint": (SageMakerResponse, "update_endpoint", _response_update_endpoint),
    "response_search": (SageMakerResponse, "search", _response_search),
    "call_action": (SageMakerResponse, "call_action", _call_action),
    "response_list_endpoints": (
        SageMakerResponse,
        "list_endpoints",
        _response_list_endpoints,
    ),
}


def install() -> None:
    """Patch moto's SageMaker classes; idempotent."""
    if _originals:
        return
    for key, (owner, attribute, replacement) in _PATCHES.items():
        _originals[key] = (
            owner.__dict__.get(attribute) if isinstance(owner, type) else getattr(owner, attribute)
        )
        setattr(owner, attribute, replacement)


def uninstall() -> None:
    """Give moto back its own behaviour."""
    for key, (owner, attribute, _) in _PATCHES.items():
        if key not in _originals:
            continue
        original = _originals.pop(key)
        if original is None:
            delattr(owner, attribute)
        else:
            setattr(owner, attribute, original)
