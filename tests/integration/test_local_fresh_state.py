"""Each in-process local AWS starts from an empty account, whatever ran before it."""

from __future__ import annotations

import json

import pytest

from ssm_guard.local.api import LocalAws

pytestmark = pytest.mark.integration
TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})


def test_a_second_emulator_does_not_inherit_the_first_ones_roles() -> None:
    # GIVEN an emulator in this process that created a role, then stopped
    with LocalAws(delay=0) as first:
        first.client("iam").create_role(RoleName="left-behind", AssumeRolePolicyDocument=TRUST)
    # WHEN another one starts in the same process
    with LocalAws(delay=0) as second:
        iam = second.client("iam")
        # THEN the account is empty: the same role can be created again
        assert [r["RoleName"] for r in iam.list_roles()["Roles"]] == []
        iam.create_role(RoleName="left-behind", AssumeRolePolicyDocument=TRUST)
