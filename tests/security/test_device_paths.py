"""Device paths that read differently from what they are: invisible and bidirectional characters."""

from __future__ import annotations

import pytest

from custodia_wire.paths import UnsafePathError, check_device_path


@pytest.mark.parametrize(
    ("char", "name"),
    [
        ("\u200f", "RIGHT-TO-LEFT MARK"),  # passed the check before issue 15
        ("\u200e", "LEFT-TO-RIGHT MARK"),
        ("\u061c", "ARABIC LETTER MARK"),
        ("\u202e", "RIGHT-TO-LEFT OVERRIDE"),
        ("\u2067", "RIGHT-TO-LEFT ISOLATE"),
        ("\u200b", "ZERO WIDTH SPACE"),
        ("\ufeff", "ZERO WIDTH NO-BREAK SPACE"),
        ("\u2028", "LINE SEPARATOR"),
        ("\x1b", ""),
    ],
)
def test_invisible_and_reordering_characters_are_refused_with_their_name(char: str, name: str) -> None:
    path = f"DCIM/20261121/DSJ{char}0001_4PM.MP4"
    with pytest.raises(UnsafePathError) as refused:
        check_device_path(path)
    reason = str(refused.value)
    assert f"U+{ord(char):04X}" in reason and name in reason


def test_names_in_any_script_still_pass() -> None:
    for path in ("DCIM/20261121/执法记录_0001.MP4", "DCIM/حفظ/ملف.MP4", "DCIM/Ä Ö/é.MOV"):
        assert check_device_path(path) == path
