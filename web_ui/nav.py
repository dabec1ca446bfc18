"""Who sees which page: one role set per page, used both by the route guard and by the navigation.

A later feature adds its page by defining its role set here, guarding its route with
``require_roles(*THAT_SET)`` and appending a ``NavEntry`` to ``NAV``.
"""

from __future__ import annotations

from dataclasses import dataclass

from evidence_server.accounts.models import Role

ALL_USERS: tuple[Role, ...] = tuple(Role)
#: The recordings list and detail: everyone, each scoped by ``cases.access.recordings_visible``.
RECORDING_READERS: tuple[Role, ...] = ALL_USERS
#: The station page: who runs or supervises the collection workstations.
STATION_VIEWERS: tuple[Role, ...] = (Role.device_admin, Role.legal_affairs, Role.auditor, Role.sysadmin)
#: The devices and the checkout ledger: officers their own entries, unit roles their unit, supervisors all.
LEDGER_VIEWERS: tuple[Role, ...] = (Role.officer, Role.device_admin, Role.legal_affairs, Role.auditor, Role.sysadmin)

#: Cases: case handlers their unit's and shared ones, supervisors all (``cases.access.cases_visible``).
CASE_VIEWERS: tuple[Role, ...] = (Role.case_handler, Role.legal_affairs, Role.auditor, Role.sysadmin)
#: Finding footage by case, officer, device, unit, time, matter (scoped by ``recordings_visible``).
SEARCH_VIEWERS: tuple[Role, ...] = (*CASE_VIEWERS, Role.device_admin)
#: Transfers still missing their enforcement matter or case, and the form that completes them.
TASK_VIEWERS: tuple[Role, ...] = (Role.officer, Role.device_admin, Role.case_handler, Role.legal_affairs, Role.sysadmin)
#: The fleet of stations (health, backlog, alerts): who keeps the stations running.
FLEET_VIEWERS: tuple[Role, ...] = (Role.device_admin, Role.sysadmin)
#: Compliance flags: legal affairs and auditors all, device admins their unit's, officers their own.
COMPLIANCE_VIEWERS: tuple[Role, ...] = (Role.officer, Role.device_admin, Role.legal_affairs, Role.auditor)
#: The compliance dashboard and evaluation report: supervisors all units, device admins their own.
DASHBOARD_VIEWERS: tuple[Role, ...] = (Role.device_admin, Role.legal_affairs, Role.auditor)
#: Retention: the policy, the due list, approvals and disposal certificates (legal affairs, auditors, sysadmins).
RETENTION_VIEWERS: tuple[Role, ...] = (Role.legal_affairs, Role.auditor, Role.sysadmin)
#: Legal holds: those who read retention, and the unit roles who place holds on their unit's footage.
HOLD_VIEWERS: tuple[Role, ...] = (*RETENTION_VIEWERS, Role.device_admin, Role.case_handler)
#: Administration: units, users and roles, stations (device administrators within their unit).
ADMIN_VIEWERS: tuple[Role, ...] = (Role.sysadmin, Role.device_admin)
#: The audit-log viewer: search, inclusion proofs, signed excerpts.
AUDIT_VIEWERS: tuple[Role, ...] = (Role.auditor, Role.legal_affairs, Role.sysadmin)


@dataclass(frozen=True)
class NavEntry:
    path: str
    label_key: str
    roles: frozenset[Role]


NAV: tuple[NavEntry, ...] = (
    NavEntry("/", "nav.home", frozenset(ALL_USERS)),
    NavEntry("/recordings", "nav.my_recordings", frozenset({Role.officer})),
    NavEntry("/recordings", "nav.recordings", frozenset(RECORDING_READERS) - {Role.officer}),
    NavEntry("/stations", "nav.stations", frozenset(STATION_VIEWERS)),
    NavEntry("/devices", "nav.devices", frozenset(LEDGER_VIEWERS)),
    NavEntry("/ledger", "nav.ledger", frozenset(LEDGER_VIEWERS)),
    NavEntry("/cases", "nav.cases", frozenset(CASE_VIEWERS)),
    NavEntry("/search", "nav.search", frozenset(SEARCH_VIEWERS)),
    NavEntry("/transfers/incomplete", "nav.incomplete", frozenset(TASK_VIEWERS)),
    NavEntry("/fleet", "nav.fleet", frozenset(FLEET_VIEWERS)),
    NavEntry("/compliance", "nav.compliance", frozenset(COMPLIANCE_VIEWERS)),
    NavEntry("/compliance/dashboard", "nav.compliance_dashboard", frozenset(DASHBOARD_VIEWERS)),
    NavEntry("/retention/due", "nav.retention", frozenset(RETENTION_VIEWERS)),
    NavEntry("/retention/holds", "nav.holds", frozenset(HOLD_VIEWERS) - frozenset(RETENTION_VIEWERS)),
    NavEntry("/audit", "nav.audit", frozenset(AUDIT_VIEWERS)),
    NavEntry("/admin", "nav.admin", frozenset(ADMIN_VIEWERS)),
)


def nav_for(role: Role | str) -> list[NavEntry]:
    """The navigation entries a role sees, in menu order."""
    r = Role(role)
    return [entry for entry in NAV if r in entry.roles]


def current_path(entries: list[NavEntry], here: str) -> str | None:
    """The one entry to highlight for the page ``here``: the longest entry path it lies under. Pure.

    ``/compliance/dashboard`` lies under ``/compliance`` too; only the longer one is the current page.
    ``/`` is current on the home page only.
    """
    path = here.split("?", 1)[0].split("#", 1)[0]
    best: str | None = None
    for entry in entries:
        p = entry.path
        inside = path == p if p == "/" else path == p or path.startswith(p + "/")
        if inside and (best is None or len(p) > len(best)):
            best = p
    return best


def home_for(role: Role | str) -> str:
    """Where a user lands after login when no page was asked for."""
    entries = nav_for(role)
    return entries[0].path if entries else "/recordings"
