"""Who may administer whom: the pure rules, without a database."""

from __future__ import annotations

import pytest

from evidence_server.accounts.models import Role
from evidence_server.admin.rules import Who, assignable_roles, may_act_in_unit, may_create_units, refuse_user_change

SYS = Who(1, Role.sysadmin, 10)
DEV = Who(2, Role.device_admin, 10)
OFFICER = Who(3, Role.officer, 10)
OFFICER_ELSEWHERE = Who(4, Role.officer, 20)
AUDITOR = Who(5, Role.auditor, 10)


def test_only_system_administrators_create_units_and_give_every_role() -> None:
    assert may_create_units(Role.sysadmin) and not may_create_units(Role.device_admin)
    assert set(assignable_roles(Role.sysadmin)) == set(Role)
    assert assignable_roles(Role.device_admin) == (Role.officer,)
    assert assignable_roles(Role.officer) == ()


def test_device_administrators_act_in_their_own_unit_only() -> None:
    assert may_act_in_unit(DEV, 10) and not may_act_in_unit(DEV, 20)
    assert may_act_in_unit(SYS, 20)
    assert not may_act_in_unit(OFFICER, 10)


@pytest.mark.parametrize(
    ("actor", "target", "kwargs", "allowed"),
    [
        (DEV, OFFICER, {}, True),
        (DEV, OFFICER, {"disabling": True}, True),
        (DEV, OFFICER_ELSEWHERE, {}, False),
        (DEV, AUDITOR, {}, False),
        (DEV, SYS, {}, False),
        (DEV, OFFICER, {"new_role": Role.sysadmin}, False),
        (DEV, DEV, {"disabling": True}, False),
        (SYS, SYS, {"disabling": True}, False),
        (SYS, SYS, {"new_role": Role.officer}, False),
        (SYS, AUDITOR, {"new_role": Role.legal_affairs}, True),
        (SYS, OFFICER_ELSEWHERE, {"disabling": True}, True),
    ],
)
def test_who_may_change_whom(actor: Who, target: Who, kwargs: dict, allowed: bool) -> None:  # type: ignore[type-arg]
    assert (refuse_user_change(actor, target, **kwargs) is None) is allowed
