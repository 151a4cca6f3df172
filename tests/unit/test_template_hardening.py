"""The template's hardening: encryption, retention, reasons for skipped checks, optional private
networking and session logging, and which roles the guard may change."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from _iam_template import (
    alternatives,
    cloudformation,
    function_policies,
    functions,
    sam_template,
)

pytestmark = pytest.mark.unit


def resources_of(kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in sam_template()["Resources"].items()
        if resource["Type"] == kind
    }


def test_every_log_group_has_a_retention() -> None:
    groups = resources_of("AWS::Logs::LogGroup")
    assert groups
    missing = [
        name for name, group in groups.items() if "RetentionInDays" not in group["Properties"]
    ]
    assert not missing, f"log groups without RetentionInDays: {missing}"


def test_every_function_logs_to_a_log_group_of_the_stack() -> None:
    groups = resources_of("AWS::Logs::LogGroup")
    for function_id in functions():
        properties = sam_template()["Resources"][function_id]["Properties"]
        target = properties.get("LoggingConfig", {}).get("LogGroup")
        assert target in ({"Ref": name} for name in groups), (
            f"{function_id} must log to a stack log group with a retention (LoggingConfig)"
        )


def test_queues_and_topics_are_encrypted() -> None:
    for name, queue in resources_of("AWS::SQS::Queue").items():
        properties = queue["Properties"]
        assert properties.get("KmsMasterKeyId") or properties.get("SqsManagedSseEnabled"), name
    for name, topic in resources_of("AWS::SNS::Topic").items():
        assert topic["Properties"].get("KmsMasterKeyId"), name


def test_every_skipped_check_says_why() -> None:
    skipped = 0
    for name, resource in sam_template()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            skipped += 1
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
            assert len(skip.get("comment", "").split()) >= 8, f"{name}: {skip['id']} needs a reason"
    assert skipped


def test_functions_never_log_whole_events() -> None:
    sam = sam_template()
    environments = [sam.get("Globals", {}).get("Function", {}).get("Environment", {})]
    environments += [
        r["Properties"].get("Environment", {})
        for r in resources_of("AWS::Serverless::Function").values()
    ]
    for environment in environments:
        value = str(environment.get("Variables", {}).get("POWERTOOLS_LOGGER_LOG_EVENT", "false"))
        assert value.lower() == "false"


# ---- which roles the guard may change ------------------------------------------------------


def _attaching_functions() -> list[str]:
    return [
        function_id
        for function_id in functions()
        if any(
            "iam:AttachRolePolicy" in s.actions and s.effect == "Allow"
            for s in function_policies(function_id).statements
        )
    ]


def test_role_path_defaults_to_every_role_and_accepts_only_a_plain_path() -> None:
    parameter = sam_template()["Parameters"]["ExecutionRolePath"]
    pattern = re.compile(parameter["AllowedPattern"])
    assert parameter["Default"] == "/"
    for good in ["/", "/sagemaker/", "/ml/team-a/"]:
        assert pattern.match(good), good
    # A wildcard in the path would widen the grant; no leading or trailing slash is no path.
    for bad in ["/*/", "ml/", "/ml", "/ml/*", ""]:
        assert not pattern.match(bad), bad


def test_every_function_that_attaches_is_held_to_the_role_tag_when_one_is_set() -> None:
    # GIVEN the Deny that carries the tag condition
    policy = sam_template()["Resources"]["AttachOnlyToTaggedRoles"]
    # (the functions' roles exist unless the stack is a member of an organization-wide guard)
    assert policy["Condition"] == "FunctionsOnlyOnTaggedRoles"
    assert {"Condition": "RestrictToTaggedRoles"} in sam_template()["Conditions"][
        "FunctionsOnlyOnTaggedRoles"
    ]["Fn::And"]
    document = json.loads(policy["Properties"]["PolicyDocument"]["Fn::Sub"])
    (deny,) = document["Statement"]
    # THEN it denies attaching and detaching on roles without KEY=VALUE...
    assert deny["Effect"] == "Deny"
    assert set(deny["Action"]) == {"iam:AttachRolePolicy", "iam:DetachRolePolicy"}
    assert deny["Condition"] == {
        "StringNotEquals": {"iam:ResourceTag/${ExecutionRoleTagKey}": "${ExecutionRoleTagValue}"}
    }
    # ...to every function allowed to attach
    held = {role["Ref"] for role in policy["Properties"]["Roles"]}
    attaching = _attaching_functions()
    assert attaching
    assert {f"{f}Role" for f in attaching} <= held, (
        "add each function that attaches the session policy to AttachOnlyToTaggedRoles.Roles"
    )


def test_tag_parameters_cannot_break_out_of_the_json_policy() -> None:
    for name in ("ExecutionRoleTagKey", "ExecutionRoleTagValue"):
        pattern = re.compile(sam_template()["Parameters"][name]["AllowedPattern"])
        assert pattern.match("team")
        assert pattern.match("")
        assert not pattern.match('x", "Effect": "Allow')
        assert not pattern.match("back\\slash")


# ---- private networking and session logging --------------------------------------------------


def test_vpc_endpoints_for_ssm_are_optional_and_off_by_default() -> None:
    sam = sam_template()
    endpoints = resources_of("AWS::EC2::VPCEndpoint")
    services = sorted(
        e["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1] for e in endpoints.values()
    )
    assert services == ["ec2messages", "ssm", "ssmmessages"]
    for endpoint in endpoints.values():
        assert endpoint["Condition"] == "CreateVpcEndpoints"
        properties = endpoint["Properties"]
        assert properties["VpcEndpointType"] == "Interface"
        assert properties["PrivateDnsEnabled"] is True
        assert properties["VpcId"] == {"Ref": "VpcId"}
        assert properties["SubnetIds"] == {"Ref": "SubnetIds"}
        assert properties["SecurityGroupIds"] == [{"Ref": "SecurityGroupId"}]
    for name in ("VpcId", "SecurityGroupId"):
        assert sam["Parameters"][name]["Default"] == ""
    assert sam["Parameters"]["SubnetIds"]["Default"] == ""


def test_session_logging_sets_the_session_preferences_to_a_stack_log_group() -> None:
    sam = sam_template()
    assert sam["Parameters"]["EnableSessionLogging"]["Default"] == "false"
    preferences = sam["Resources"]["SessionManagerPreferences"]
    assert preferences["Type"] == "AWS::SSM::Document"
    assert preferences["Condition"] == "SessionLogging"
    properties = preferences["Properties"]
    # Session Manager reads its preferences from this document name and type only
    assert properties["Name"] == "SSM-SessionManagerRunShell"
    assert properties["DocumentType"] == "Session"
    content = properties["Content"]
    assert content["sessionType"] == "Standard_Stream"
    assert content["inputs"]["cloudWatchLogGroupName"] == {"Ref": "SessionLogGroup"}
    group = sam["Resources"]["SessionLogGroup"]
    assert group["Condition"] == "SessionLogging"
    assert "RetentionInDays" in group["Properties"]


def test_endpoint_roles_may_write_session_logs_only_when_logging_is_on() -> None:
    document = sam_template()["Resources"]["SessionPolicy"]["Properties"]["PolicyDocument"]
    conditional = [s for s in document["Statement"] if "Fn::If" in s]
    assert conditional
    for statement in conditional:
        condition, granted, otherwise = statement["Fn::If"]
        assert condition == "SessionLogging"
        assert otherwise == {"Ref": "AWS::NoValue"}
        assert all(action.startswith("logs:") for action in granted["Action"])
        assert granted["Resource"] != "*"


def test_translated_template_keeps_the_optional_resources_behind_their_conditions() -> None:
    resources = cloudformation()["Resources"]
    for name in ("SsmVpcEndpoint", "SessionLogGroup", "AttachOnlyToTaggedRoles"):
        assert resources[name].get("Condition"), name
    policy = resources["SessionPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [alternatives(s) for s in policy if "Fn::If" in s]
