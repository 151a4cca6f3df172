"""Least privilege: each function's policy in template.yaml allows exactly what its code calls.

The operations a function calls are found by reading its code from the handler down
(`_code_paths`), mapped to IAM actions through `ssm_guard.permissions`, and compared with the
statements of the function's role (`_iam_template`). Handler runs against moto record the calls
they really make; those must be among what reading the code found, which checks the reading.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _code_paths import CallSite, CodeIndex, Operation
from _handler_runs import SCENARIOS, record_calls, run_scenarios
from _iam_template import (
    PLATFORM_MANAGED_POLICIES,
    FunctionCode,
    Statement,
    function_policies,
    functions,
    managed_policy_name,
    sam_template,
)

from ssm_guard import permissions
from ssm_guard.permissions import (
    FUNCTION_EXTRA_OPERATIONS,
    FUNCTION_UNCALLED_OPERATIONS,
    LIBRARY_OPERATIONS,
    OPERATIONS,
    REQUIRED_CONDITION_KEYS,
    WILDCARD_RESOURCE_ACTIONS,
    UndeclaredOperationError,
    allowed_actions,
    permission_for,
    required_actions,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_IDS = sorted(functions())
Found = dict[Operation, list[tuple[CallSite, list[str]]]]


@pytest.fixture(scope="module")
def index() -> CodeIndex:
    services = frozenset(service for service, _ in OPERATIONS)
    extra = {code.module: code.app_file for code in functions().values()}
    return CodeIndex(services, extra)


def operations_of(index: CodeIndex, code: FunctionCode) -> Found:
    found = index.operations_from(
        [code.module, f"{code.module}.{code.handler}"], dict(LIBRARY_OPERATIONS)
    )
    for operation in FUNCTION_EXTRA_OPERATIONS.get(code.logical_id, ()):
        site = CallSite(operation, "ssm_guard/permissions.py", 0, "FUNCTION_EXTRA_OPERATIONS")
        found.setdefault(operation, []).append((site, []))
    for operation in FUNCTION_UNCALLED_OPERATIONS.get(code.logical_id, {}):
        found.pop(operation, None)
    return found


def _where(found: Found, operation: Operation) -> str:
    site, chain = found[operation][0]
    via = " -> ".join(step.rsplit(".", 1)[-1] if "." in step else step for step in chain)
    return f"{site.file}:{site.line} via {via}" if chain else site.file


def _granted(statements: list[Statement], *, platform: bool) -> dict[str, list[Statement]]:
    granted: dict[str, list[Statement]] = {}
    for statement in statements:
        if statement.effect != "Allow" or (statement.platform and not platform):
            continue
        for action in statement.actions:
            granted.setdefault(action.lower(), []).append(statement)
    return granted


def _all_statements() -> Iterator[tuple[str, Statement]]:
    for function_id in FUNCTION_IDS:
        for statement in function_policies(function_id).statements:
            if not statement.platform:
                yield function_id, statement


# ---- the code ------------------------------------------------------------------------------


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_the_scan_reads_each_function_handler(index, function_id) -> None:
    code = functions()[function_id]
    assert code.app_file.is_file(), f"{function_id}: handler file {code.app_file} is missing"
    assert f"{code.module}.{code.handler}" in index.nodes, (
        f"{function_id}: {code.app_file.relative_to(ROOT)} defines no `{code.handler}`"
    )


def test_every_aws_call_in_the_code_is_declared(index) -> None:
    problems = []
    for call in sorted(index.all_calls(), key=lambda c: (c.file, c.line)):
        try:
            permission_for(call.operation)
        except UndeclaredOperationError as exc:
            problems.append(f"{call.file}:{call.line}: {exc}")
    assert not problems, "\n".join(problems)


def test_every_aws_call_has_a_client_of_known_service(index) -> None:
    problems = [
        f"{u.file}:{u.line}: `.{u.method}(...)` looks like an AWS call ({', '.join(u.services)}) "
        "but the scan cannot tell the client's service: annotate the client with its "
        "mypy_boto3 type (e.g. `client: SSMClient`) or make it with clients.ssm() or "
        "guard.client('ssm')"
        for u in index.unattributed
    ]
    assert not problems, "\n".join(problems)


# ---- the template against the code ---------------------------------------------------------


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_policy_allows_every_call_its_code_makes(index, function_id) -> None:
    found = operations_of(index, functions()[function_id])
    granted = _granted(function_policies(function_id).statements, platform=True)
    missing: list[str] = []
    for operation in sorted(found):
        for action in permission_for(operation).actions:
            if action.lower() not in granted:
                service, name = operation
                missing.append(
                    f"  - {action}  (for {service}.{name} at {_where(found, operation)})"
                )
    assert not missing, (
        f"{function_id} calls AWS operations its policy in template.yaml does not allow:\n"
        + "\n".join(missing)
        + f"\nAdd the actions to {function_id}.Properties.Policies in template.yaml, scoped to "
        "the resources the calls touch."
    )


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_policy_allows_nothing_its_code_does_not_call(index, function_id) -> None:
    found = operations_of(index, functions()[function_id])
    allowed = {action.lower() for action in allowed_actions(found)}
    granted = _granted(function_policies(function_id).statements, platform=False)
    extra = [
        f"  - {statements[0].actions[[a.lower() for a in statements[0].actions].index(action)]}"
        f"  ({statements[0].source})"
        for action, statements in sorted(granted.items())
        if action not in allowed
    ]
    assert not extra, (
        f"{function_id}'s policy in template.yaml allows actions no code path of the function "
        "calls:\n" + "\n".join(extra) + "\nRemove them; if a call the scan cannot follow needs "
        "them, declare its operation in ssm_guard/permissions.py FUNCTION_EXTRA_OPERATIONS["
        f'"{function_id}"].'
    )


def test_strong_actions_carry_their_condition() -> None:
    problems = [
        f"{function_id}: {statement.source} allows {action} without a {key} condition"
        for function_id, statement in _all_statements()
        if statement.effect == "Allow"
        for action in statement.actions
        if (key := REQUIRED_CONDITION_KEYS.get(action))
        and key.lower() not in statement.condition_keys()
    ]
    assert not problems, "\n".join(problems)


def test_no_wildcard_actions_and_no_wildcard_resources_beyond_the_few_that_need_them() -> None:
    problems: list[str] = []
    for function_id, statement in _all_statements():
        if statement.effect != "Allow":
            continue
        problems += [
            f"{function_id}: {statement.source} allows the wildcard action {action}"
            for action in statement.actions
            if "*" in action
        ]
        if "*" in statement.resources or statement.not_resource:
            problems += [
                f"{function_id}: {statement.source} allows {action} on every resource; name "
                "the resources (or, if the action supports none, add it to "
                "permissions.WILDCARD_RESOURCE_ACTIONS with the reference)"
                for action in statement.actions
                if action not in WILDCARD_RESOURCE_ACTIONS
            ]
    assert not problems, "\n".join(problems)


def test_actions_are_granted_on_every_resource_type_aws_checks() -> None:
    # UpdateEndpoint is authorised against the endpoint and the new config (aws-facts 4).
    problems: list[str] = []
    for function_id in FUNCTION_IDS:
        granted = _granted(function_policies(function_id).statements, platform=False)
        for permission in OPERATIONS.values():
            if not permission.resource_types or permission.actions[0].lower() not in granted:
                continue
            resources = [r for s in granted[permission.actions[0].lower()] for r in s.resources]
            problems += [
                f"{function_id}: {permission.actions[0]} is not granted on {kind} ARNs "
                f"(`...:{kind}/...`); {permission.reason}"
                for kind in permission.resource_types
                if not any(f":{kind}/" in resource for resource in resources)
            ]
    assert not problems, "\n".join(problems)


def test_roles_hold_only_the_managed_policies_lambda_itself_needs() -> None:
    problems = [
        f"{function_id}: attaches the AWS managed policy {arn}; grant the actions inline instead"
        for function_id in FUNCTION_IDS
        for arn in function_policies(function_id).managed_arns
        if managed_policy_name(arn) not in PLATFORM_MANAGED_POLICIES
    ]
    assert not problems, "\n".join(problems)


def test_attaching_is_limited_to_the_session_policy_and_the_deployers_roles() -> None:
    seen = 0
    for function_id, statement in _all_statements():
        if statement.effect != "Allow" or "iam:AttachRolePolicy" not in statement.actions:
            continue
        seen += 1
        assert statement.condition.get("ArnEquals", {}).get("iam:PolicyARN") == "${SessionPolicy}"
        assert statement.resources, statement.source
        for resource in statement.resources:
            assert resource.endswith(":role${ExecutionRolePath}*"), (
                f"{function_id}: {statement.source} must attach only to roles under the "
                f"ExecutionRolePath parameter, not {resource}"
            )
    assert seen, "no function attaches the session policy"


def test_kms_is_granted_for_sagemaker_only() -> None:
    for function_id, statement in _all_statements():
        if not any(action.startswith("kms:") for action in statement.actions):
            continue
        via = statement.condition.get("StringEquals", {}).get("kms:ViaService")
        assert via == "sagemaker.${AWS::Region}.amazonaws.com", (
            f"{function_id}: {statement.source} grants KMS beyond SageMaker"
        )


# ---- the scan against real runs ------------------------------------------------------------


@pytest.fixture
def recorded(monkeypatch) -> list[Operation]:
    """Every AWS operation any boto3 client makes during the test."""
    return record_calls(monkeypatch)


@pytest.mark.parametrize("function_id", sorted(SCENARIOS))
def test_handler_runs_call_only_operations_the_scan_found(
    index, account, recorded, monkeypatch, function_id
) -> None:
    # WHEN the handler runs on each scenario's event (an account with endpoints)
    run_scenarios(function_id, account, monkeypatch, recorded)
    # THEN every operation it made is one the scan found on the function's code path
    found = operations_of(index, functions()[function_id])
    assert recorded, "the scenarios made no AWS call: they test nothing"
    uncalled = sorted(set(recorded) & set(FUNCTION_UNCALLED_OPERATIONS.get(function_id, {})))
    assert not uncalled, (
        f"{function_id} called {uncalled}, which permissions.FUNCTION_UNCALLED_OPERATIONS "
        "says it never calls: remove them there and grant them in template.yaml"
    )
    missed = sorted(set(recorded) - set(found))
    assert not missed, (
        f"{function_id} called {missed} on a path the scan did not find: annotate the client "
        "with its mypy_boto3 type, or declare the operation in "
        f'permissions.FUNCTION_EXTRA_OPERATIONS["{function_id}"]'
    )


# ---- the table itself ----------------------------------------------------------------------


def test_declared_actions_name_a_service_and_an_action() -> None:
    for (service, name), permission in OPERATIONS.items():
        for action in (*permission.actions, *permission.optional):
            prefix, _, verb = action.partition(":")
            assert prefix, f"{service}.{name}: {action!r}"
            assert verb, f"{service}.{name}: {action!r}"
            assert "*" not in action, f"{service}.{name}: {action!r}"
        assert permission.actions or permission.reason, f"{service}.{name}: say why none"


def test_update_endpoint_needs_the_endpoint_its_config_and_kms_for_sagemaker() -> None:
    # GIVEN the one call that switches an endpoint to another config
    update = {("sagemaker", "UpdateEndpoint")}
    # THEN its caller needs the action on both resources, and KMS grants for encrypted configs
    assert required_actions(update) == {
        "sagemaker:UpdateEndpoint",
        "kms:CreateGrant",
        "kms:DescribeKey",
    }
    assert permission_for(("sagemaker", "UpdateEndpoint")).resource_types == (
        "endpoint",
        "endpoint-config",
    )


def test_an_undeclared_operation_says_what_to_add() -> None:
    with pytest.raises(UndeclaredOperationError, match=r'add \("sagemaker", "DeleteEndpoint"\)'):
        permissions.permission_for(("sagemaker", "DeleteEndpoint"))


def test_template_is_read_with_its_functions() -> None:
    assert "EnforcerFunction" in FUNCTION_IDS
    assert sam_template()["Transform"] == "AWS::Serverless-2016-10-31"
