"""The audit API through a real server; its checkpoints and proofs check out offline with `custodia verify`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from click.testing import CliRunner

from custodia_cli.main import cli
from custodia_wire import auditlog, documents
from tests.audit import reference
from tests.support.live import LiveServer


def post(server: LiveServer, path: str, token: str) -> httpx.Response:
    return httpx.post(server.url + path, headers={"Authorization": f"Bearer {token}"})


def custodia_verify(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify", *map(str, args)])
    return result.exit_code, result.output


def test_roles_entries_and_checkpoints(live_server: LiveServer) -> None:
    officer = live_server.create_user("officer1", "officer", officer_no="102345")
    legal = live_server.create_user("legal1", "legal_affairs")
    auditor = live_server.create_user("auditor1", "auditor")
    assert live_server.get("/api/v1/audit/entries", token=officer).status_code == 403
    assert post(live_server, "/api/v1/audit/checkpoints", legal).status_code == 403
    assert live_server.get("/api/v1/audit/checkpoints/latest", token=legal).status_code == 404

    logins = live_server.get("/api/v1/audit/entries", token=legal, params={"action": "auth.login"}).json()
    assert [e["actor"]["name"] for e in logins["items"]] == ["admin", "officer1", "legal1", "auditor1"]
    first = logins["items"][0]
    assert set(first) >= {"seq", "at", "actor", "action", "object", "client_addr", "details", "leaf_hash"}
    assert first["client_addr"] == "127.0.0.1"
    assert auditlog.entry_leaf_hash(first).hex() == first["leaf_hash"]

    made = post(live_server, "/api/v1/audit/checkpoints", auditor)
    assert made.status_code == 201, made.text
    cp = made.json()
    assert cp["tree_size"] == logins["log_size"]
    assert post(live_server, "/api/v1/audit/checkpoints", auditor).status_code == 200  # nothing new: same one
    note = live_server.get(f"/api/v1/audit/checkpoints/{cp['tree_size']}/note", token=legal)
    assert note.headers["content-type"].startswith("text/plain") and note.text == cp["note"]
    lines = note.text.splitlines()
    assert lines[:3] == [
        "custodia.local/audit",
        str(cp["tree_size"]),
        auditlog.base64.b64encode(bytes.fromhex(cp["root_hash"])).decode(),
    ]
    assert lines[4] == "" and lines[5].startswith("\u2014 custodia.local/audit ")
    assert live_server.get("/api/v1/audit/checkpoints/latest/note", token=auditor).text == note.text
    assert live_server.get(f"/api/v1/audit/checkpoints/{cp['tree_size']}/timestamp", token=legal).status_code == 404


def test_proofs_from_the_api_verify_offline(live_server: LiveServer, tmp_path: Path) -> None:
    auditor = live_server.create_user("auditor1", "auditor")
    key = httpx.get(live_server.url + "/api/v1/server-key").json()["public_key"]
    old = post(live_server, "/api/v1/audit/checkpoints", auditor).json()
    (tmp_path / "old.txt").write_text(old["note"], "utf-8")
    assert custodia_verify("--checkpoint", tmp_path / "old.txt", "--key", key)[0] == 0

    for _ in range(5):  # more custody events: logins
        live_server.login("auditor1", "auditor1-password-123")
    new = post(live_server, "/api/v1/audit/checkpoints", auditor).json()
    assert new["tree_size"] == old["tree_size"] + 5
    (tmp_path / "new.txt").write_text(new["note"], "utf-8")

    for seq in (0, old["tree_size"] - 1, new["tree_size"] - 1):
        doc = live_server.get("/api/v1/audit/proofs/inclusion", token=auditor, params={"seq": seq}).json()
        proof_file = tmp_path / f"inclusion-{seq}.json"
        proof_file.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
        code, out = custodia_verify("--inclusion", proof_file, "--checkpoint", tmp_path / "new.txt", "--key", key)
        assert code == 0 and f"OK       entry {seq} (" in out, out
        # the independent RFC reference climbs from the entry to the same signed root
        path = [bytes.fromhex(h) for h in doc["audit_path"]]
        root = reference.root_from_path(auditlog.entry_leaf_data(doc["entry"]), seq, new["tree_size"], path)
        assert root.hex() == new["root_hash"]

    doc["entry"]["actor"]["name"] = "somebody-else"  # what a forger would like the log to say
    (tmp_path / "forged.json").write_text(json.dumps(doc), "utf-8")
    code, out = custodia_verify("--inclusion", tmp_path / "forged.json", "--key", key)
    assert code == 1 and "is not in the checkpointed log" in out

    cons = live_server.get("/api/v1/audit/proofs/consistency", token=auditor, params={"first": old["tree_size"]})
    (tmp_path / "consistency.json").write_text(cons.text, "utf-8")
    code, out = custodia_verify(
        "--consistency",
        tmp_path / "consistency.json",
        "--old-checkpoint",
        tmp_path / "old.txt",
        "--checkpoint",
        tmp_path / "new.txt",
        "--key",
        key,
    )
    assert code == 0 and "extends the log of size" in out, out
    old_root = bytes.fromhex(old["root_hash"])
    forged_old = old["note"].replace(
        auditlog.base64.b64encode(old_root).decode(), auditlog.base64.b64encode(bytes(32)).decode()
    )
    (tmp_path / "forged-old.txt").write_text(forged_old, "utf-8")
    code, out = custodia_verify(
        "--consistency", tmp_path / "consistency.json", "--old-checkpoint", tmp_path / "forged-old.txt", "--key", key
    )
    assert code == 1 and "signature does not verify" in out

    other_key = documents.public_key_b64(documents.Ed25519PrivateKey.generate().public_key())
    assert custodia_verify("--checkpoint", tmp_path / "new.txt", "--key", other_key)[0] == 1
