"""Enrichment hooks used by the tests, written as a user would write them."""

from __future__ import annotations

import time

LOOKUPS: list[str] = []  # every call to the "API", so tests can count them


def user_region(record: dict, context) -> dict:
    """Adds the user's region from a (pretend) user API, asked once per user per file."""

    def ask_api() -> str:
        LOOKUPS.append(record["user_id"])
        return "emea" if record["user_id"].endswith(("1", "3", "5")) else "amer"

    return {**record, "region": context.cached(record["user_id"], ask_api), "source_key": context.file.key}


def refuse_mobile(record: dict, context) -> dict:
    if record.get("device", {}).get("type") == "mobile":
        raise ValueError("mobile events are not loaded by this pipeline")
    return record


def slow(record: dict, context) -> dict:
    time.sleep(0.05)  # a slow API, to exceed the time budget
    return record
