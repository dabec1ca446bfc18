"""The canonical JSON that is signed is RFC 8785 (JCS), through the ``rfc8785`` library; what was signed
before, with Custodia's first canonical form, still verifies, and for the documents Custodia signs the two
forms are the same bytes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodia_wire import documents
from custodia_wire.auditlog import entry_leaf_data, make_entry

HOSTILE = '张三 "quoted" \\ back\\slash \u2028 line sep \x01 ctrl \t tab é 🎥 </script>'


def receipt() -> dict[str, object]:
    return documents.make_receipt(
        transfer_id="6f1c3a0e-0000-4000-8000-000000000001",
        manifest_digest="blake3:" + "ab" * 32,
        files=[
            {
                "path": f"DCIM/{HOSTILE}.MP4",
                "size": 2**40 + 7,
                "blake3": "blake3:" + "01" * 32,
                "sha256": "sha256:" + "02" * 32,
                "recording_id": 12,
                "verified_at": "2026-11-21T10:00:00.123456Z",
            }
        ],
        issued_at=datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
        server={"key_id": "0123456789abcdef", "name": HOSTILE},
    )


def test_the_first_canonical_form_is_jcs_for_what_custodia_signs() -> None:
    manifest = documents.Manifest(
        transfer_id="t",
        station={"id": 1, "name": HOSTILE},
        device={"serial": "DSJ-1", "family": "mass_storage"},
        officer={"officer_no": "102345", "name": "张三"},
        docked_at="2026-11-21T10:00:00Z",
        files=[documents.ManifestFile("DCIM/a.MP4", 10, "blake3:" + "0" * 64, "sha256:" + "0" * 64, None)],
    )
    entry = make_entry(
        7,
        datetime(2026, 11, 21, tzinfo=UTC),
        "user",
        3,
        HOSTILE,
        "case.link",
        "recording",
        "12",
        "1.2.3.4",
        {"reason": HOSTILE, "ids": [1, 2, 3], "none": None, "flag": True, "nested": {"b": 1, "a": [{"z": 0}]}},
    )
    for value in (receipt(), manifest.to_dict(), entry):
        assert documents.canonical_json(value) == rfc8785.dumps(value)
    assert entry_leaf_data(entry) == rfc8785.dumps(entry)


def test_where_the_forms_differ_signatures_name_their_form() -> None:
    """Fractional numbers are written differently (1.0 / 1, 1e-05 / 0.00001): so every signature names the
    form it was made over, and one without a name was made over the first form."""
    odd = {"clock_offset_s": 0.0, "tiny": 1e-05}
    assert documents.canonical_json(odd) != documents.jcs(odd)
    key = Ed25519PrivateKey.generate()
    signed = documents.sign(odd, key)
    assert signed["signature"]["canon"] == "RFC8785"
    documents.verify_signature(signed, key.public_key())
    body = {k: v for k, v in signed.items() if k != "signature"}
    assert key.public_key().verify(base64.b64decode(signed["signature"]["value"]), rfc8785.dumps(body)) is None
    # the name of the form cannot be swapped to make other bytes count
    forged = {**signed, "signature": {**signed["signature"], "canon": None}}
    with pytest.raises(documents.DocumentError):
        documents.verify_signature(forged, key.public_key())


def test_a_receipt_signed_before_jcs_still_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    body = receipt()
    old = {
        **body,
        "signature": {
            "alg": "Ed25519",
            "key_id": documents.key_id(key.public_key()),
            "value": base64.b64encode(key.sign(documents.canonical_json(body))).decode(),
        },
    }
    assert documents.confirmed_files(old, key.public_key())
    new = documents.sign(body, key)  # and a station that predates JCS reads a new receipt: same bytes
    assert documents.canonical_json(body) == documents.jcs(body)
    assert documents.confirmed_files(new, key.public_key())
