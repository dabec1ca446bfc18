"""What a recorder writes into its files, as comparable properties, and a device's honest profile.

A recorder's firmware writes the same container brand, tags, codec settings, time base, audio
format and file naming into every segment. A desktop editor (trim, re-encode, remux, metadata
rewrite) changes some of them. The profile of a device is what most of its own segments share
(else its family's); a segment that departs from it is a suspected edit. Pure, no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

Profile = Mapping[str, str]

#: a device's profile is learnt from at least this many of its segments, a family's from more
MIN_SEGMENTS = 3
#: a property is part of the profile when at least this share of the segments agree on it
MIN_SHARE = 0.75


def learn(profiles: Iterable[Profile], minimum: int = MIN_SEGMENTS) -> dict[str, str]:
    """The properties most segments share (each held by at least ``MIN_SHARE`` of them); empty when
    there are fewer than ``minimum`` segments to learn from."""
    items = [p for p in profiles if len(p) > 1]  # a file never probed has nothing but its name
    if len(items) < minimum:
        return {}
    counts: dict[str, Counter[str]] = {}
    for p in items:
        for k, v in p.items():
            counts.setdefault(k, Counter())[v] += 1
    out = {}
    for k, c in counts.items():
        value, n = c.most_common(1)[0]
        if n >= MIN_SHARE * len(items):
            out[k] = value
    return out


def departures(profile: Profile, expected: Profile) -> list[dict[str, str]]:
    """Each property of ``profile`` that differs from ``expected``: name, expected value, value found."""
    return [
        {"property": k, "expected": v, "found": profile.get(k, "-")}
        for k, v in sorted(expected.items())
        if profile.get(k, "-") != v and (k in profile or len(profile) > 1)
    ]
