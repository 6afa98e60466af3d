"""Sample events, the kind a product team drops into the landing bucket.

Shaped like the original demo's events (`event_id`, `timestamp`, `user_id`,
`action`, `page` or `amount`): most purchases carry no currency, as there;
every other one names it, so the optional field is checked too.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

ACTIONS = ("page_view", "button_click", "purchase")


def sample_events(count: int = 20, *, seed: int = 7, users: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    events = []
    purchases = 0
    for i in range(count):
        action = ACTIONS[i % len(ACTIONS)] if i < len(ACTIONS) else rng.choice(ACTIONS)
        event: dict[str, Any] = {
            "event_id": f"evt-{seed}-{i:05d}",
            "user_id": f"user-{rng.randrange(users) + 1:03d}",
            "action": action,
            "timestamp": (start + timedelta(seconds=37 * i)).isoformat(),
            "page": rng.choice(["/", "/pricing", "/docs", "/checkout"]),
            "device": {"type": rng.choice(["desktop", "mobile"]), "os": rng.choice(["linux", "ios", "android"])},
        }
        if action == "purchase":
            event["amount"] = float(Decimal(rng.randrange(500, 20000)) / 100)
            if purchases % 2:
                event["currency"] = "USD"
            purchases += 1
        events.append(event)
    return events


def summarise(loaded: list[tuple[Any, dict[str, Any], str]]) -> dict[tuple, dict[str, Any]]:
    """Figures per (load date, action) from (load date, payload, source file) rows,
    computed the plain way, to check DAILY_SUMMARY against."""
    figures: dict[tuple, dict[str, Any]] = defaultdict(lambda: {"files": set(), "events": 0, "users": set(), "amount": Decimal(0)})
    for day, payload, source_file in loaded:
        f = figures[(day, payload.get("action"))]
        f["files"].add(source_file)
        f["events"] += 1
        if payload.get("user_id") is not None:
            f["users"].add(payload["user_id"])
        f["amount"] += Decimal(str(payload.get("amount", 0))).quantize(Decimal("0.01"))
    return {
        key: {"FILES_LOADED": len(f["files"]), "TOTAL_EVENTS": f["events"], "UNIQUE_USERS": len(f["users"]), "TOTAL_AMOUNT": f["amount"]}
        for key, f in figures.items()
    }
