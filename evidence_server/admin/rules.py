"""Who may administer whom: pure decisions over roles and units, tested without a database."""

from __future__ import annotations

from dataclasses import dataclass

from evidence_server.accounts.models import Role

#: The roles that reach the administration pages and API.
ADMINS: tuple[Role, ...] = (Role.sysadmin, Role.device_admin)


@dataclass(frozen=True)
class Who:
    """The plain facts a decision needs about a person."""

    id: int
    role: Role
    unit_id: int


def assignable_roles(actor: Role) -> tuple[Role, ...]:
    """The roles ``actor`` may give: system administrators any, device administrators officers only."""
    if actor == Role.sysadmin:
        return tuple(Role)
    if actor == Role.device_admin:
        return (Role.officer,)
    return ()


def may_create_units(actor: Role) -> bool:
    return actor == Role.sysadmin


def may_act_in_unit(actor: Who, unit_id: int) -> bool:
    """System administrators act in every unit; device administrators in their own."""
    return actor.role == Role.sysadmin or (actor.role == Role.device_admin and actor.unit_id == unit_id)


def refuse_user_change(actor: Who, target: Who, *, new_role: Role | None = None, disabling: bool = False) -> str | None:
    """Why ``actor`` may not change ``target`` (None: allowed). Nobody disables or demotes themselves,
    and a device administrator touches only the officers of their unit."""
    if actor.id == target.id and (disabling or (new_role is not None and new_role != target.role)):
        return "you cannot disable yourself or change your own role"
    if not may_act_in_unit(actor, target.unit_id):
        return "this user belongs to another unit"
    allowed = assignable_roles(actor.role)
    if target.role not in allowed and actor.id != target.id:
        return f"a {actor.role.value} cannot manage a {target.role.value}"
    if new_role is not None and new_role not in allowed:
        return f"a {actor.role.value} cannot give the role {new_role.value}"
    return None
