"""/metrics, the heartbeat history, the fleet page and JSON logs, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from custodia_wire import fingerprint
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.fleet.models import StationHeartbeat
from evidence_server.observability.logs import JsonFormatter
from evidence_server.stations.models import Station as StationRow
from tests.server.test_station_flow import FILES, Station
from tests.support.live import LiveServer

TOKEN = "monitoring-token-0123456789abcdef"
GiB = 1024**3


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    live = LiveServer(data_dir=tmp_path / "server", database_url=database_url, env={"CUSTODIA_METRICS_TOKEN": TOKEN})
    live.data_dir.mkdir(parents=True)
    live.bootstrap()
    live.start()
    yield live
    live.stop()


def scrape(server: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def test_metrics_need_the_monitoring_token(server: LiveServer, tmp_path: Path, sqlite_templates) -> None:
    assert httpx.get(server.url + "/metrics").status_code == 401
    assert httpx.get(server.url + "/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert server.get("/metrics").status_code == 401  # a sysadmin's login is not the monitoring token
    off = LiveServer(data_dir=tmp_path / "off", database_url=sqlite_templates.fresh(tmp_path / "off-db"))
    off.data_dir.mkdir()
    off.start()
    try:
        r = httpx.get(off.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 403 and "CUSTODIA_METRICS_TOKEN" in r.json()["detail"]
    finally:
        off.stop()


def test_metrics_count_transfers_bytes_incidents_and_station_backlog(server: LiveServer) -> None:
    st = Station(server)
    st.open(FILES)
    for path, data in FILES.items():
        assert st.upload(path, data).status_code == 204
    wrong = fingerprint.of_bytes(b"not these bytes")
    r = st.create_upload("DCIM/20261121/DSJ0001_102345_20261121091000_0003.MP4", b"tampered", fp=wrong)
    assert st.patch(r.headers["location"], 0, b"tampered").status_code == 460
    assert (
        st.http.post(
            "/api/v1/stations/me/heartbeat",
            json={"spool_bytes": 12345, "free_bytes": 99 * GiB, "agent_version": "0.1.0"},
        ).status_code
        == 204
    )
    m = scrape(server)
    assert m[("custodia_transfers_total", ())] == 1
    assert m[("custodia_verified_uploads_total", ())] == 2
    assert m[("custodia_verified_bytes_total", ())] == sum(len(d) for d in FILES.values())
    assert m[("custodia_recordings", ())] == 2
    assert m[("custodia_rejected_uploads_total", ())] == 1
    assert m[("custodia_integrity_incidents_total", (("kind", "upload_digest_mismatch"),))] == 1
    assert m[("custodia_violations", (("kind", "upload_digest_mismatch"), ("source", "integrity")))] == 1
    assert m[("custodia_fixity_recordings", (("state", "unchecked"),))] == 2
    assert m[("custodia_fixity_failures", ())] == 0
    assert m[("custodia_station_spool_bytes", (("station", "station-1"),))] == 12345
    assert m[("custodia_station_backlog_bytes", ())] == 12345
    assert m[("custodia_station_alert", (("kind", "silent"), ("station", "station-1")))] == 0
    assert ("custodia_task_queue_depth", (("queue", "inprocess"),)) in m
    assert all(v == 0 for (name, _), v in m.items() if name == "custodia_metrics_errors")


def test_heartbeats_are_kept_as_history_and_old_ones_forgotten(server: LiveServer) -> None:
    st = Station(server)
    ctx = ServerContext(server.settings())
    station_id = st.enrolment["station_id"]
    with ctx.sessionmaker() as s:
        s.add(StationHeartbeat(station_id=station_id, at=utcnow() - timedelta(days=10), spool_bytes=1))
        s.commit()
    for spool in (100, 200, 300):
        st.http.post("/api/v1/stations/me/heartbeat", json={"spool_bytes": spool, "free_bytes": 50 * GiB})
    with ctx.sessionmaker() as s:
        kept = s.scalars(
            select(StationHeartbeat.spool_bytes)
            .where(StationHeartbeat.station_id == station_id)
            .order_by(StationHeartbeat.at)
        ).all()
    ctx.close()
    assert kept == [100, 200, 300]


def test_the_fleet_page_shows_health_and_raises_alerts(server: LiveServer) -> None:
    healthy, stuck, gone = (Station(server, name) for name in ("station-ok", "station-stuck", "station-gone"))
    healthy.http.post("/api/v1/stations/me/heartbeat", json={"spool_bytes": 0, "free_bytes": 500 * GiB})
    stuck.http.post("/api/v1/stations/me/heartbeat", json={"spool_bytes": 6 * GiB, "free_bytes": 5 * GiB})
    ctx = ServerContext(server.settings())
    now = utcnow()
    with ctx.sessionmaker() as s:
        for i, spool in enumerate((1, 2, 3, 4, 5)):  # 1 GiB more every 10 minutes, never drained
            s.add(
                StationHeartbeat(
                    station_id=stuck.enrolment["station_id"],
                    at=now - timedelta(minutes=50 - 10 * i),
                    spool_bytes=spool * GiB,
                    free_bytes=5 * GiB,
                )
            )
        row = s.get_one(StationRow, gone.enrolment["station_id"])
        row.enrolled_at = now - timedelta(hours=2)
        s.commit()
    ctx.close()
    page = server.get("/fleet", headers={"Accept": "text/html"})
    assert page.status_code == 200
    html = page.text
    assert 'id="fleet-alerts"' in html
    for station, alerts in ((healthy, ""), (stuck, "spool_growing low_disk"), (gone, "silent")):
        assert f'id="fleet-station-{station.enrolment["station_id"]}" data-alerts="{alerts}"' in html
    assert "station-stuck" in html and "6.0 GiB" in html
    officer = server.create_user("officer9", "officer", officer_no="100009")
    assert server.get("/fleet", token=officer, headers={"Accept": "application/json"}).status_code == 403
    m = scrape(server)
    assert m[("custodia_station_alert", (("kind", "spool_growing"), ("station", "station-stuck")))] == 1
    assert m[("custodia_station_alert", (("kind", "silent"), ("station", "station-gone")))] == 1


def test_json_log_lines() -> None:
    record = logging.LogRecord(
        "evidence_server.uploads", logging.WARNING, __file__, 1, "upload %s: %s", ("ab12", "被拒"), None
    )
    record.upload_id = "ab12"
    line = json.loads(JsonFormatter(service="custodia-server").format(record))
    assert line["level"] == "warning" and line["logger"] == "evidence_server.uploads"
    assert line["msg"] == "upload ab12: 被拒" and line["upload_id"] == "ab12" and line["service"] == "custodia-server"
    assert line["ts"].endswith("Z")
