"""A USB recorder of the E12 family lists the files it marked important (重要文件标记) during the handshake;
the mark reaches the server over a real socket and HTTP, on those files only."""

from __future__ import annotations

from pathlib import Path

from device_drivers.usb.simulators import E12Recorder, E12Server
from ingest_agent.journal import TransferState
from ingest_agent.transfer import Station
from tests.support.live import LiveServer
from tests.usb.conftest import PASSWORD, USB, disk_maker, fast_profile, make_recorder
from tests.usb.test_usb_dock import Bus, Progress, dock_all, make_dock


def test_the_recorders_list_of_marked_files_reaches_the_server(
    online_station: Station, live_server: LiveServer, media: Path
) -> None:
    profile = fast_profile("e12")  # a bureau's profile that names the command its recorders answer (data)
    profile = profile.with_overrides(commands={**profile.commands, "list_important": {"code": "E12CMDN040"}})
    info = make_recorder("e12").info.__class__("E120009", "204061", "王五", "330100000002", "稽查支队")
    e12 = E12Recorder(profile=profile, password=PASSWORD, info=info)
    e12.on_disk_mode, disk = disk_maker(media, "E120009", "E120009", officer="204061", count=3)
    paths = sorted(disk.files)
    # one by its full path, one by its bare name, and one hostile entry that names nothing on the card
    e12.important_files = [paths[0], paths[2].rsplit("/", 1)[-1], "../../" + paths[1].rsplit("/", 1)[-1]]
    with E12Server(e12) as server:
        dock = make_dock(online_station, {"1-5": e12}, media, Progress(), servers={"1-5": server.address})
        dock.profiles["e12"] = profile
        dock_all(dock, Bus(), [USB["e12"]])

    assert not dock.failures and dock.reports[0].state == TransferState.DONE, dock.reports[0].error
    assert "list_important" in e12.commands
    page = live_server.get("/api/v1/recordings", params={"device_serial": "E120009", "limit": 10}).json()
    marks = {r["original_path"]: (r["important"], r["important_source"], r["important_how"]) for r in page["items"]}
    assert marks == {
        paths[0]: (True, "device", "device_list"),
        paths[1]: (False, None, None),
        paths[2]: (True, "device", "device_list"),
    }
