"""The function's log lines, for a person: JSON log records and EMF metric records made readable.

The function writes one JSON object per line (Powertools Logger) and one EMF
record per invocation; Lambda's own lines (START, END, REPORT) are plain text.
`aws logs --raw` prints them as written instead, for jq.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text

LEVEL_STYLES = {"DEBUG": "dim", "INFO": "green", "WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}
# Keys shown after the message, in this order; the rest of a record stays in --raw.
SHOWN_KEYS = ("file_id", "load_id", "rows_loaded", "rows_rejected")


def parsed(message: str) -> dict[str, Any] | None:
    if not message.startswith("{"):
        return None
    try:
        record = json.loads(message)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def metrics_line(record: dict[str, Any]) -> Text:
    """`metrics WidfLoader  FilesLoaded=1 RowsLoaded=20 LoadLatency=812ms`: the values of an EMF record."""
    line = Text("metrics ", style="cyan")
    for directive in record["_aws"].get("CloudWatchMetrics", []):
        line.append(f"{directive.get('Namespace', '')} ", style="bold cyan")
        for metric in directive.get("Metrics", []):
            value = record.get(metric["Name"])
            shown = "+".join(number(v) for v in value) if isinstance(value, list) else number(value)
            unit = {"Milliseconds": "ms", "Bytes": " B"}.get(metric.get("Unit", ""), "")
            line.append(f" {metric['Name']}={shown}{unit}")
    return line


def number(value: Any) -> str:
    return f"{value:.0f}" if isinstance(value, float) else str(value)


def log_line(record: dict[str, Any]) -> Text:
    level = str(record.get("level", "INFO")).upper()
    line = Text(f"{level:<7} ", style=LEVEL_STYLES.get(level, ""))
    line.append(str(record.get("message", "")))
    for key in SHOWN_KEYS:
        if record.get(key) is not None:
            line.append(f"  {key}={record[key]}", style="dim")
    if exception := record.get("exception"):
        line.append(f"\n{exception}", style="red")
    return line


def readable(message: str) -> Text:
    record = parsed(message)
    if record is None:
        return Text(message)
    if "_aws" in record:
        return metrics_line(record)
    if "message" in record:
        return log_line(record)
    return Text(message)
