"""SSM target IDs of endpoint containers: building, parsing, choosing live instances, and the
layout of the Parameter Store values they are published in. Pure: no AWS here.

A target ID is `sagemaker-endpoint:ENDPOINT_VARIANT_INSTANCE` for a single-container variant and
`sagemaker-endpoint:ENDPOINT_VARIANT_INSTANCE_CONTAINER` for a multi-container one (seed page,
aws-facts 5). Endpoint, variant and container hostnames cannot contain `_` (botocore model:
`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`), so the only underscores after the instance ID belong to
default container names such as `container_1`: parsing never splits them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TARGET_PREFIX = "sagemaker-endpoint:"
SOURCE_LOG = "log"
"""The target ID was listed by SageMaker at the head of the instance's SSM log stream."""
SOURCE_MODEL = "model"
"""The target ID was built from the stream's instance ID and the model's container names."""

STANDARD_TIER = "Standard"
ADVANCED_TIER = "Advanced"
STANDARD_VALUE_LIMIT = 4096
ADVANCED_VALUE_LIMIT = 8192
"""Parameter Store value limits (AWS checks them; moto does not, so this module does)."""
PART_PREFIX = "part-"
VALUE_FORMAT = 1
MAX_TARGET_LENGTH = 400
"""StartSession.Target accepts at most 400 characters (botocore SSM model)."""

_NAME = r"[A-Za-z0-9](?:-*[A-Za-z0-9])*"
_INSTANCE = r"i-[0-9a-f]+"
_CONTAINER = r"[A-Za-z0-9][A-Za-z0-9_-]*"
_TARGET_RE = re.compile(
    rf"^{TARGET_PREFIX}(?P<endpoint>{_NAME})_(?P<variant>{_NAME})_(?P<instance>{_INSTANCE})"
    rf"(?:_(?P<container>{_CONTAINER}))?$"
)
_STREAM_RE = re.compile(rf"^(?P<variant>{_NAME})/(?P<instance>{_INSTANCE})(?:/(?P<rest>.+))?$")
_SSM_LOG_PREFIX_RE = re.compile(r"\[sagemaker ssm logs\]\[(?P<container>[^\]]+)\]\s?(?P<text>.*)")
SSM_STREAM_SUFFIX = "ssm"


class TargetError(ValueError):
    """A target ID, a stream name or a published value that is not what it must be."""


@dataclass(frozen=True)
class Target:
    """One container an SSM session can open into."""

    variant: str
    instance: str
    container: str | None
    target: str
    source: str = SOURCE_LOG

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "instance": self.instance,
            "container": self.container,
            "target": self.target,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, raw: object) -> Target:
        if not isinstance(raw, Mapping):
            raise TargetError("a published target is not an object")
        target = raw.get("target")
        if not isinstance(target, str):
            raise TargetError("a published target has no target ID")
        parsed = parse_target_id(target)
        source = raw.get("source")
        return cls(
            variant=parsed.variant,
            instance=parsed.instance,
            container=parsed.container,
            target=target,
            source=source if source in (SOURCE_LOG, SOURCE_MODEL) else SOURCE_LOG,
        )


def sort_key(target: Target) -> tuple[str, str, str]:
    return (target.variant, target.instance, target.container or "")


def build_target_id(
    endpoint: str, variant: str, instance: str, container: str | None = None
) -> str:
    """`sagemaker-endpoint:ENDPOINT_VARIANT_INSTANCE[_CONTAINER]`, checked part by part."""
    suffix = f"_{container}" if container else ""
    target = f"{TARGET_PREFIX}{endpoint}_{variant}_{instance}{suffix}"
    parsed = _TARGET_RE.match(target)
    if not parsed or len(target) > MAX_TARGET_LENGTH:
        raise TargetError(f"cannot build a target ID from {endpoint!r}, {variant!r}, {instance!r}")
    return target


@dataclass(frozen=True)
class ParsedTarget:
    endpoint: str
    variant: str
    instance: str
    container: str | None


def parse_target_id(target: str) -> ParsedTarget:
    """Split a target ID into its parts, in either format; raise TargetError otherwise."""
    matched = _TARGET_RE.match(target.strip()) if isinstance(target, str) else None
    if not matched:
        raise TargetError(f"not a SageMaker endpoint SSM target ID: {target!r}")
    return ParsedTarget(
        endpoint=matched["endpoint"],
        variant=matched["variant"],
        instance=matched["instance"],
        container=matched["container"],
    )


def find_target_ids(text: str, *, endpoint: str, variant: str, instance: str) -> list[str]:
    """Every target ID of this endpoint, variant and instance that a log line mentions.

    The line format at the head of the SSM stream is undocumented (aws-facts 5), so tokens are
    found anywhere in the text, anchored on the names we already know; nothing else is assumed.
    """
    pattern = re.compile(
        rf"{TARGET_PREFIX}{re.escape(endpoint)}_{re.escape(variant)}_{re.escape(instance)}"
        rf"(?:_{_CONTAINER})?(?![A-Za-z0-9_-])",
        re.IGNORECASE,
    )
    return [m.group(0) for m in pattern.finditer(text)]


def ssm_log_container(message: str) -> tuple[str | None, str]:
    """`[sagemaker ssm logs][container_1] text` -> (`container_1`, `text`); other lines -> (None,
    the line)."""
    matched = _SSM_LOG_PREFIX_RE.search(message)
    if not matched:
        return None, message.rstrip("\n")
    return matched["container"], matched["text"].rstrip("\n")


# --- live instances -------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamName:
    variant: str
    instance: str
    container: str | None
    """None for the instance's main container stream `VARIANT/INSTANCE`."""
    ssm: bool


def parse_stream_name(name: str) -> StreamName | None:
    """`VARIANT/INSTANCE/ssm`, `VARIANT/INSTANCE` or `VARIANT/INSTANCE/CONTAINER` (inference
    pipelines); None for any other stream of the log group."""
    matched = _STREAM_RE.match(name)
    if not matched:
        return None
    rest = matched["rest"]
    return StreamName(
        variant=matched["variant"],
        instance=matched["instance"],
        container=None if rest in (None, SSM_STREAM_SUFFIX) else rest,
        ssm=rest == SSM_STREAM_SUFFIX,
    )


@dataclass(frozen=True)
class LogStream:
    """What DescribeLogStreams says about one stream (times in epoch milliseconds)."""

    name: str
    created_ms: int
    last_event_ms: int | None = None
    last_ingestion_ms: int | None = None

    @property
    def last_seen_ms(self) -> int:
        """lastEventTimestamp can lag by up to an hour; lastIngestionTime is timelier. Take the
        latest of the three."""
        return max(self.created_ms, self.last_event_ms or 0, self.last_ingestion_ms or 0)


@dataclass(frozen=True)
class Instance:
    """An instance of a variant as its log streams show it."""

    variant: str
    instance: str
    first_seen_ms: int
    last_seen_ms: int
    ssm_stream: str | None = None
    container_streams: tuple[str, ...] = ()


def instances_from_streams(streams: Iterable[LogStream]) -> dict[tuple[str, str], Instance]:
    """Group an endpoint's log streams by (variant, instance)."""
    found: dict[tuple[str, str], Instance] = {}
    for stream in streams:
        parsed = parse_stream_name(stream.name)
        if parsed is None:
            continue
        key = (parsed.variant, parsed.instance)
        known = found.get(key)
        ssm_stream = stream.name if parsed.ssm else None
        containers = () if parsed.ssm else (stream.name,)
        if known is None:
            found[key] = Instance(
                variant=parsed.variant,
                instance=parsed.instance,
                first_seen_ms=stream.created_ms,
                last_seen_ms=stream.last_seen_ms,
                ssm_stream=ssm_stream,
                container_streams=containers,
            )
        else:
            found[key] = Instance(
                variant=known.variant,
                instance=known.instance,
                first_seen_ms=min(known.first_seen_ms, stream.created_ms),
                last_seen_ms=max(known.last_seen_ms, stream.last_seen_ms),
                ssm_stream=known.ssm_stream or ssm_stream,
                container_streams=known.container_streams + containers,
            )
    return found


def select_live_instances(
    instances: Iterable[Instance], *, modified_ms: int | None, instance_count: int | None
) -> list[Instance]:
    """The instances of one variant that are most likely running now, most likely first.

    DescribeEndpoint names no instance, and streams of replaced instances stay in the log group.
    NOTE: the rule, since AWS documents none: an instance whose streams were written at or after
    the endpoint's LastModifiedTime ranks first (every update replaces the fleet, aws-facts
    summary 3); then the most recently created streams (a newer fleet's streams are created after
    an older one's); at most the variant's CurrentInstanceCount are kept. A scale-in that removes
    the newest instance of an idle fleet is not seen until that fleet logs again.
    """
    candidates = list(instances)
    if instance_count is not None and instance_count <= 0:
        return []

    def rank(item: Instance) -> tuple[bool, int, int, str]:
        active = modified_ms is None or item.last_seen_ms >= modified_ms
        return (active, item.first_seen_ms, item.last_seen_ms, item.instance)

    ordered = sorted(candidates, key=rank, reverse=True)
    if instance_count is None:
        # Without a count, keep only what was seen since the last change.
        return [i for i in ordered if modified_ms is None or i.last_seen_ms >= modified_ms]
    return ordered[:instance_count]


@dataclass(frozen=True)
class InstanceTargets:
    targets: tuple[Target, ...]
    mismatch: str | None = None
    """Why the log and the model disagree, when they do (logged, the log wins)."""


def instance_targets(
    *,
    endpoint: str,
    variant: str,
    instance: str,
    containers: Sequence[str] | None,
    logged_ids: Iterable[str] = (),
    logged_containers: Iterable[str] = (),
) -> InstanceTargets:
    """The targets of one live instance, cross-checking the log with the model.

    `containers` are the model's container names (hostname or `container_N`) for a
    multi-container model, None for a single-container one. Target IDs that SageMaker listed at
    the head of the SSM stream are published as they are; without them, IDs are built from the
    instance and the model's containers.
    """
    expected: set[str | None] = set(containers) if containers else {None}
    logged: dict[str, Target] = {}
    for raw in logged_ids:
        try:
            parsed = parse_target_id(raw)
        except TargetError:
            continue
        if parsed.instance != instance:
            continue
        logged[raw] = Target(variant, instance, parsed.container, raw, SOURCE_LOG)
    if logged:
        seen = {t.container for t in logged.values()}
        mismatch = None
        if seen != expected:
            mismatch = (
                "the SSM log lists containers "
                f"{sorted(c or '-' for c in seen)} but the model has "
                f"{sorted(c or '-' for c in expected)}"
            )
        return InstanceTargets(tuple(sorted(logged.values(), key=sort_key)), mismatch)
    built = tuple(
        sorted(
            (
                Target(
                    variant,
                    instance,
                    container,
                    build_target_id(endpoint, variant, instance, container),
                    SOURCE_MODEL,
                )
                for container in expected
            ),
            key=sort_key,
        )
    )
    prefixes = set(logged_containers)
    mismatch = None
    if containers and prefixes and not prefixes <= set(containers):
        mismatch = (
            f"the SSM log shows containers {sorted(prefixes)} but the model has "
            f"{sorted(containers)}"
        )
    return InstanceTargets(built, mismatch)


# --- the published value --------------------------------------------------------------------


def parameter_name(prefix: str, endpoint: str) -> str:
    """`{prefix}/{EndpointName}`: parameter names cannot hold `:`, so target IDs go in values."""
    return f"{prefix.rstrip('/')}/{endpoint}"


def part_name(prefix: str, endpoint: str, number: int) -> str:
    return f"{parameter_name(prefix, endpoint)}/{PART_PREFIX}{number}"


def endpoint_of(prefix: str, name: str) -> tuple[str, int | None] | None:
    """`{prefix}/ep` -> (`ep`, None); `{prefix}/ep/part-2` -> (`ep`, 2); others -> None."""
    head = prefix.rstrip("/") + "/"
    if not name.startswith(head):
        return None
    pieces = name[len(head) :].split("/")
    if len(pieces) == 1 and pieces[0]:
        return pieces[0], None
    if len(pieces) == 2 and pieces[0] and pieces[1].startswith(PART_PREFIX):
        number = pieces[1][len(PART_PREFIX) :]
        if number.isdigit():
            return pieces[0], int(number)
    return None


def _encode(data: Mapping[str, Any]) -> str:
    # Compact, sorted and ASCII: one character is one byte, so len() is the size AWS checks.
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def generation(targets: Sequence[Target]) -> str:
    """A digest of the set; every part of one write carries it, so a torn read is seen."""
    canonical = _encode({"t": [t.as_dict() for t in sorted(targets, key=sort_key)]})
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TargetsDocument:
    """What is published for one endpoint."""

    endpoint: str
    targets: tuple[Target, ...]
    updated: str = ""

    def same_targets(self, other: Sequence[Target]) -> bool:
        return sorted(self.targets, key=sort_key) == sorted(other, key=sort_key)

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "updated": self.updated,
            "targets": [t.as_dict() for t in sorted(self.targets, key=sort_key)],
        }


@dataclass(frozen=True)
class ParameterWrite:
    name: str
    value: str
    tier: str


@dataclass(frozen=True)
class Layout:
    """The parameters one document takes: parts first (when split), the main one last."""

    writes: tuple[ParameterWrite, ...]
    part_names: tuple[str, ...] = field(default_factory=tuple)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(w.name for w in self.writes)


def _main_value(doc: TargetsDocument, gen: str, parts: int, targets: Sequence[Target]) -> str:
    return _encode(
        {
            "format": VALUE_FORMAT,
            "endpoint": doc.endpoint,
            "updated": doc.updated,
            "generation": gen,
            "parts": parts,
            "targets": [t.as_dict() for t in targets],
        }
    )


def _part_value(doc: TargetsDocument, gen: str, number: int, targets: Sequence[Target]) -> str:
    return _encode(
        {
            "format": VALUE_FORMAT,
            "endpoint": doc.endpoint,
            "generation": gen,
            "part": number,
            "targets": [t.as_dict() for t in targets],
        }
    )


def layout(prefix: str, doc: TargetsDocument) -> Layout:
    """Where a document goes, respecting AWS's value limits (moto checks none):

    - up to 4 KB: one standard parameter;
    - up to 8 KB: one advanced parameter (charged; AWS cannot turn it back to standard);
    - beyond: standard parts `{name}/part-N` of at most 4 KB each, and the main parameter holding
      only the count and the generation the parts carry.
    """
    ordered = sorted(doc.targets, key=sort_key)
    gen = generation(ordered)
    main = parameter_name(prefix, doc.endpoint)
    whole = _main_value(doc, gen, 0, ordered)
    if len(whole) <= STANDARD_VALUE_LIMIT:
        return Layout((ParameterWrite(main, whole, STANDARD_TIER),))
    if len(whole) <= ADVANCED_VALUE_LIMIT:
        return Layout((ParameterWrite(main, whole, ADVANCED_TIER),))
    chunks: list[list[Target]] = [[]]
    for target in ordered:
        trial = chunks[-1] + [target]
        if len(_part_value(doc, gen, len(chunks), trial)) <= STANDARD_VALUE_LIMIT:
            chunks[-1] = trial
            continue
        if not chunks[-1]:
            raise TargetError("one target entry alone exceeds the parameter value limit")
        chunks.append([target])
    writes = [
        ParameterWrite(
            part_name(prefix, doc.endpoint, number),
            _part_value(doc, gen, number, chunk),
            STANDARD_TIER,
        )
        for number, chunk in enumerate(chunks, start=1)
    ]
    index = _main_value(doc, gen, len(chunks), [])
    writes.append(ParameterWrite(main, index, STANDARD_TIER))
    return Layout(tuple(writes), tuple(w.name for w in writes[:-1]))


class TornReadError(TargetError):
    """The parts of a split value belong to different writes: a write is in progress."""


def _loads(value: str, what: str) -> Mapping[str, Any]:
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise TargetError(f"the {what} is not JSON") from exc
    if not isinstance(data, Mapping):
        raise TargetError(f"the {what} is not a JSON object")
    return data


def decode(main_value: str, parts: Mapping[int, str] | None = None) -> TargetsDocument:
    """Read a published document back; parts are keyed by their number."""
    main = _loads(main_value, "published value")
    endpoint = main.get("endpoint")
    if not isinstance(endpoint, str):
        raise TargetError("the published value names no endpoint")
    raw_targets = list(main.get("targets") or [])
    count = main.get("parts") or 0
    if not isinstance(count, int) or count < 0:
        raise TargetError("the published value has a bad part count")
    gen = main.get("generation")
    available = parts or {}
    for number in range(1, count + 1):
        if number not in available:
            raise TornReadError(f"part {number} of {endpoint} is missing")
        part = _loads(available[number], "published part")
        if part.get("generation") != gen:
            raise TornReadError(f"part {number} of {endpoint} belongs to another write")
        raw_targets.extend(part.get("targets") or [])
    updated = main.get("updated")
    return TargetsDocument(
        endpoint=endpoint,
        targets=tuple(sorted((Target.from_dict(t) for t in raw_targets), key=sort_key)),
        updated=updated if isinstance(updated, str) else "",
    )


def part_count(main_value: str) -> int:
    """How many parts the main value says it has (0 when unreadable)."""
    try:
        count = _loads(main_value, "published value").get("parts") or 0
    except TargetError:
        return 0
    return count if isinstance(count, int) and count > 0 else 0


def stale_names(existing: Iterable[str], wanted: Layout) -> list[str]:
    """Parameters of an endpoint that the new layout no longer uses (old parts)."""
    keep = set(wanted.names)
    return sorted(name for name in existing if name not in keep)


def choose(
    targets: Iterable[Target],
    *,
    variant: str | None = None,
    instance: str | None = None,
    container: str | None = None,
) -> list[Target]:
    """The targets the options leave (an option left out matches every target)."""
    return [
        t
        for t in sorted(targets, key=sort_key)
        if (variant is None or t.variant == variant)
        and (instance is None or t.instance == instance)
        and (container is None or t.container == container)
    ]
