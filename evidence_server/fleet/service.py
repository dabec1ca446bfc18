"""Storing heartbeat samples and putting together each station's health."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from evidence_server.db import utcnow
from evidence_server.fleet import rules
from evidence_server.fleet.models import StationHeartbeat
from evidence_server.stations.models import Station


def record_sample(
    session: Session, station: Station, data: dict[str, Any], *, keep_hours: int, now: datetime | None = None
) -> None:
    """Keep this heartbeat as a sample and forget this station's samples older than ``keep_hours``."""
    now = now or utcnow()
    session.add(
        StationHeartbeat(
            station_id=station.id,
            at=now,
            spool_bytes=data.get("spool_bytes"),
            free_bytes=data.get("free_bytes"),
            agent_version=data.get("agent_version"),
        )
    )
    session.execute(
        delete(StationHeartbeat).where(
            StationHeartbeat.station_id == station.id, StationHeartbeat.at < now - timedelta(hours=keep_hours)
        )
    )


@dataclass
class StationHealth:
    station: Station
    latest: rules.Sample | None
    alerts: list[rules.Alert]
    growth: int | None  # spool bytes gained over the growth window

    @property
    def spool_bytes(self) -> int | None:
        return self.latest.spool_bytes if self.latest else None

    @property
    def free_bytes(self) -> int | None:
        return self.latest.free_bytes if self.latest else None


def fleet_health(
    session: Session, fleet_rules: rules.FleetRules, *, unit_id: int | None = None, now: datetime | None = None
) -> list[StationHealth]:
    """Every station (of one unit, or all) with its latest sample, spool trend and alerts."""
    now = now or utcnow()
    q = select(Station).order_by(Station.name)
    if unit_id is not None:
        q = q.where(Station.unit_id == unit_id)
    stations = list(session.scalars(q))
    since = now - max(fleet_rules.growth_window, timedelta(minutes=1))
    samples: dict[int, list[rules.Sample]] = defaultdict(list)
    rows = session.execute(
        select(
            StationHeartbeat.station_id, StationHeartbeat.at, StationHeartbeat.spool_bytes, StationHeartbeat.free_bytes
        )
        .where(StationHeartbeat.at >= since, StationHeartbeat.station_id.in_([s.id for s in stations]))
        .order_by(StationHeartbeat.at)
    )
    for station_id, at, spool, free in rows:
        samples[station_id].append(rules.Sample(at, spool, free))
    out = []
    for st in stations:
        mine = samples.get(st.id, [])
        latest = mine[-1] if mine else _from_last_heartbeat(st)
        judged = mine or ([latest] if latest else [])
        alerts = rules.station_alerts(
            judged,
            last_seen=st.last_seen_at,
            enrolled_at=st.enrolled_at,
            revoked=st.revoked_at is not None,
            now=now,
            rules=fleet_rules,
        )
        out.append(StationHealth(st, latest, alerts, rules.growth(mine, now, fleet_rules.growth_window)))
    return out


def _from_last_heartbeat(station: Station) -> rules.Sample | None:
    hb = station.heartbeat or {}
    if station.last_seen_at is None:
        return None
    return rules.Sample(station.last_seen_at, hb.get("spool_bytes"), hb.get("free_bytes"))
