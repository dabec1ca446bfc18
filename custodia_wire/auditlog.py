"""The audit log's wire forms: the bytes of one entry, the signed checkpoint, the proof documents.

The server and the offline verifier both use this module, so that an entry hashes the same on
both sides. A *checkpoint* is a C2SP signed note (``c2sp.org/tlog-checkpoint`` body: origin, tree
size, base64 root hash, then one extension line with the issue time), signed with the server's
Ed25519 key; it can be printed, filed and checked with any signed-note verifier. A server configured for
SM2 signs it with its SM2 key instead: signature type ``0xff`` followed by the identifier
``custodia.sm2-sm3`` (C2SP's byte for types it does not assign), the key ID over the DER
SubjectPublicKeyInfo, the DER signature over the note text (SM3, distinguishing ID 1234567812345678).
Ed25519 notes are exactly as before.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custodia_wire import keys, merkle

INCLUSION_FORMAT = "custodia.audit-inclusion/1"
CONSISTENCY_FORMAT = "custodia.audit-consistency/1"
#: The fields of an entry that are hashed into its leaf, in the order they are documented.
LEAF_FIELDS = ("seq", "at", "actor", "action", "object", "client_addr", "details")
_SIG_TYPE_ED25519 = b"\x01"
#: C2SP signed-note: 0xff "reserved for signature types without an identifier byte assigned by this
#: specification", followed by a longer identifier unlikely to collide
_SIG_TYPE_SM2 = b"\xff" + b"custodia.sm2-sm3"
_TIME_PREFIX = "time "


class LogError(ValueError):
    """A checkpoint or proof is malformed, or does not verify."""


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)  # = canonical_json


def entry_time(ts: datetime) -> str:
    """An entry's time as hashed: UTC, always six fractional digits, ``Z``."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: audit entries are stamped in UTC")
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def make_entry(
    seq: int,
    at: datetime,
    actor_type: str,
    actor_id: int | None,
    actor_name: str | None,
    action: str,
    object_type: str | None,
    object_id: str | None,
    client_addr: str | None,
    details: Any,
) -> dict[str, Any]:
    """An entry from its stored columns, in the shape that is hashed, served and verified."""
    return {
        "seq": seq,
        "at": entry_time(at),
        "actor": {"type": actor_type, "id": actor_id, "name": actor_name},
        "action": action,
        "object": {"type": object_type, "id": object_id},
        "client_addr": client_addr,
        "details": details,
    }


def json_clean(value: Any) -> Any:
    """``value`` as it comes back from a JSON column (string keys, lists), so hashes survive storage."""
    return None if value is None else json.loads(json.dumps(value, ensure_ascii=False))


def entry_leaf_data(entry: dict[str, Any]) -> bytes:
    """The leaf data of an entry: the canonical JSON of its ``LEAF_FIELDS`` (and nothing else)."""
    missing = [k for k in LEAF_FIELDS if k not in entry]
    if missing:
        raise LogError(f"audit entry lacks {missing}")
    return _ENCODER.encode({k: entry[k] for k in LEAF_FIELDS}).encode("utf-8")


def entry_leaf_hash(entry: dict[str, Any]) -> bytes:
    return merkle.leaf_hash(entry_leaf_data(entry))


def _opt(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def columns_leaf_hash(
    seq: int,
    at: datetime,
    actor_type: str,
    actor_id: int | None,
    actor_name: str | None,
    action: str,
    object_type: str | None,
    object_id: str | None,
    client_addr: str | None,
    details: Any,
) -> bytes:
    """``entry_leaf_hash(make_entry(...))`` without building the entry: the full check's hot path.

    Writes the canonical JSON directly (keys in sorted order, strings escaped by the json module's
    own encoder); a test holds it byte for byte to ``entry_leaf_data``.
    """
    when = at.isoformat(timespec="microseconds")[:-6] + "Z" if at.tzinfo is UTC else entry_time(at)
    aid = "null" if actor_id is None else str(int(actor_id))
    det = "null" if details is None else _ENCODER.encode(details)
    data = (
        f'{{"action":{encode_basestring(action)},"actor":{{"id":{aid},"name":{_opt(actor_name)},'
        f'"type":{encode_basestring(actor_type)}}},"at":"{when}","client_addr":{_opt(client_addr)},'
        f'"details":{det},"object":{{"id":{_opt(object_id)},"type":{_opt(object_type)}}},"seq":{int(seq)}}}'
    )
    return hashlib.sha256(b"\x00" + data.encode("utf-8")).digest()


# --- checkpoints as signed notes ------------------------------------------------------------------


def note_key_id(name: str, public_key: Ed25519PublicKey | keys.PublicKey) -> bytes:
    """C2SP signed-note key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4] for Ed25519; for SM2
    SHA-256(name || 0x0A || 0xff "custodia.sm2-sm3" || DER SubjectPublicKeyInfo)[:4]."""
    if isinstance(public_key, Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return hashlib.sha256(name.encode() + b"\n" + _SIG_TYPE_ED25519 + raw).digest()[:4]
    if public_key.alg == keys.ED25519:
        return note_key_id(name, serialization.load_der_public_key(public_key.spki))  # type: ignore[arg-type]
    if public_key.alg == keys.SM2:
        return hashlib.sha256(name.encode() + b"\n" + _SIG_TYPE_SM2 + public_key.spki).digest()[:4]
    raise LogError(f"no signed-note signature type for {public_key.alg} keys")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    issued_at: str  # entry_time() form

    def body(self) -> str:
        """The note text that is signed: origin, size, base64 root, time extension line."""
        if "\n" in self.origin or not self.origin:
            raise LogError("a checkpoint origin is one non-empty line")
        return (
            f"{self.origin}\n{self.tree_size}\n{base64.b64encode(self.root_hash).decode()}\n"
            f"{_TIME_PREFIX}{self.issued_at}\n"
        )

    def sign(self, key: Ed25519PrivateKey | keys.Signer) -> str:
        """The signed note: body, blank line, ``— <origin> base64(key ID || signature)``."""
        body = self.body()
        if isinstance(key, Ed25519PrivateKey):
            sig = note_key_id(self.origin, key.public_key()) + key.sign(body.encode())
        else:
            sig = note_key_id(self.origin, key.public) + key.sign(body.encode())
        return f"{body}\n\u2014 {self.origin} {base64.b64encode(sig).decode()}\n"


def parse_note(text: str) -> tuple[Checkpoint, str, list[tuple[str, bytes]]]:
    """Split a signed checkpoint note into (checkpoint, signed body, [(key name, signature bytes)])."""
    body, sep, sigs = text.partition("\n\n")
    if not sep:
        raise LogError("not a signed note: no blank line before the signatures")
    body += "\n"
    lines = body.splitlines()
    if len(lines) < 3:
        raise LogError("a checkpoint has an origin, a tree size and a root hash")
    try:
        size = int(lines[1])
        root_hash = base64.b64decode(lines[2], validate=True)
    except ValueError as exc:
        raise LogError(f"malformed checkpoint: {exc}") from exc
    if size < 0 or len(root_hash) != merkle.HASH_SIZE or str(size) != lines[1]:
        raise LogError("malformed checkpoint: bad tree size or root hash")
    issued = next((ln[len(_TIME_PREFIX) :] for ln in lines[3:] if ln.startswith(_TIME_PREFIX)), "")
    signatures = []
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            raise LogError(f"not a signature line: {line!r}")
        try:
            name, b64 = line[2:].rsplit(" ", 1)
            signatures.append((name, base64.b64decode(b64, validate=True)))
        except ValueError as exc:
            raise LogError(f"malformed signature line: {line!r}") from exc
    return Checkpoint(lines[0], size, root_hash, issued), body, signatures


NoteKey = Ed25519PublicKey | keys.PublicKey


def verify_note(text: str, public_key: NoteKey | Sequence[NoteKey], origin: str | None = None) -> Checkpoint:
    """The checkpoint in ``text``, if signed by ``public_key`` (Ed25519 or SM2; or by one of several, as a
    server that changed its signing algorithm has) under its origin; LogError otherwise."""
    cp, body, signatures = parse_note(text)
    if origin is not None and cp.origin != origin:
        raise LogError(f"checkpoint is for log {cp.origin!r}, not {origin!r}")
    candidates = [public_key] if isinstance(public_key, Ed25519PublicKey | keys.PublicKey) else list(public_key)
    found = False
    for candidate in candidates:
        kid = note_key_id(cp.origin, candidate)
        mine = [sig for name, sig in signatures if name == cp.origin and sig[:4] == kid]
        key = keys.public_of(candidate)
        for sig in mine:
            found = True
            try:
                key.verify(sig[4:], body.encode())
            except (InvalidSignature, keys.KeyProblem) as exc:
                raise LogError("checkpoint signature does not verify: the note was altered or forged") from exc
    if not found:
        raise LogError("checkpoint is not signed by this key")
    return cp


# --- proof documents ------------------------------------------------------------------------------


def _hashes(items: list[str]) -> list[bytes]:
    try:
        out = [bytes.fromhex(h) for h in items]
    except (TypeError, ValueError) as exc:
        raise LogError(f"malformed proof hash: {exc}") from exc
    if any(len(h) != merkle.HASH_SIZE for h in out):
        raise LogError("proof hashes are 32 bytes")
    return out


def verify_inclusion_document(doc: dict[str, Any], checkpoint: Checkpoint) -> bytes:
    """Check that ``doc``'s entry is leaf ``leaf_index`` of the checkpointed tree; return its leaf hash."""
    if doc.get("format") != INCLUSION_FORMAT:
        raise LogError(f"not a {INCLUSION_FORMAT} document")
    if doc.get("tree_size") != checkpoint.tree_size:
        raise LogError(f"proof is for tree size {doc.get('tree_size')}, checkpoint is {checkpoint.tree_size}")
    entry = doc.get("entry") or {}
    leaf = entry_leaf_hash(entry)
    index = doc.get("leaf_index")
    if not isinstance(index, int) or entry.get("seq") != index:
        raise LogError("the entry's sequence number is not the proof's leaf index")
    if not merkle.verify_inclusion(
        leaf, index, checkpoint.tree_size, _hashes(doc.get("audit_path", [])), checkpoint.root_hash
    ):
        raise LogError(f"entry {index} is not in the checkpointed log (its content or the proof differs)")
    return leaf


def verify_consistency_document(doc: dict[str, Any], old: Checkpoint, new: Checkpoint) -> None:
    """Check that checkpoint ``old`` is a prefix of checkpoint ``new`` (nothing rewritten in between)."""
    if doc.get("format") != CONSISTENCY_FORMAT:
        raise LogError(f"not a {CONSISTENCY_FORMAT} document")
    if (doc.get("first"), doc.get("second")) != (old.tree_size, new.tree_size):
        raise LogError(
            f"proof is for sizes {doc.get('first')}→{doc.get('second')}, "
            f"checkpoints are {old.tree_size}→{new.tree_size}"
        )
    if not merkle.verify_consistency(
        old.tree_size, new.tree_size, old.root_hash, new.root_hash, _hashes(doc.get("proof", []))
    ):
        raise LogError(f"the log of size {new.tree_size} does not extend the log of size {old.tree_size}")
