"""A duration back from now, as every `--since` reads it: a number and a unit (s, m, h, d).

A bare number is minutes, in `aws logs --since` and `backfill --since` alike: one meaning,
so the same text never asks two commands for two different times.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(\d{1,6})([smhd]?)")
_UNIT_SECONDS = {"s": 1, "m": 60, "": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta | None:
    """`90s`, `30m`, `12h`, `7d`, or `30` (minutes); None when the text is not a duration."""
    if not (match := _DURATION.fullmatch(text.strip())):
        return None
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
