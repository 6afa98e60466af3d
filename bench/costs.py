"""Warehouse credits per day, estimated from the warehouse time `make bench` measures.

A push loader runs its statements on a warehouse, which Snowflake bills per second while it runs, with
a minimum of 60 seconds each time it starts or resumes, at 1 credit an hour for an X-Small ("Overview
of warehouses", Warehouse size and "Credit usage and billing"). The warehouse suspends itself after
AUTO_SUSPEND seconds with nothing to run (sql/setup.sql sets 60). Snowpipe has no warehouse: it bills a
fixed number of credits per GB loaded, text files such as JSON by their uncompressed size ("Snowpipe
costs"; the rate is the Service Consumption Table's, 0.0037 credits per GB).

The model, for files arriving one a minute (a trickle) or 1,000 at once (a burst):
- a trickle's invocations come every P seconds, P = 60 x the files one batching window gathers; the
  warehouse is busy `busy` seconds of each (measured); if P - busy <= AUTO_SUSPEND it never suspends
  (one resume, billed all day), else it resumes 86,400 / P times a day, each billed busy + AUTO_SUSPEND
  seconds (at least 60);
- a burst is ceil(1000 / BatchSize) invocations, MaximumConcurrency at a time on one warehouse: its
  busy time divided by the concurrency, plus AUTO_SUSPEND, billed once.
A batch of more than one small file is busy as long as the measured batch of ten (its four statements
do not grow with its files). Standard library only: `make bench` calls `estimate` on its results.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
XSMALL_CREDITS_PER_HOUR = 1.0
MINIMUM_BILLED_SECONDS = 60
SNOWPIPE_CREDITS_PER_GB = 0.0037
DAY_SECONDS = 86_400
TRICKLE_INTERVAL_SECONDS = 60
BURST_FILES = 1_000
WINDOWS_SHOWN = (0, 30, 60, 120, 300)  # MaximumBatchingWindowInSeconds: 0 to 300, the template's range


def auto_suspend_seconds(setup_sql: Path = ROOT / "sql" / "setup.sql") -> int:
    """AUTO_SUSPEND of the warehouse sql/setup.sql creates."""
    found = re.search(r"\bAUTO_SUSPEND\s*=\s*(\d+)", setup_sql.read_text(), re.I)
    if found is None:
        raise ValueError(f"{setup_sql} sets no AUTO_SUSPEND")
    return int(found.group(1))


def template_default(parameter: str, template: Path = ROOT / "infra" / "template.yaml") -> int:
    """A numeric parameter's Default in the SAM template (read as text: the template's tags are CloudFormation's)."""
    found = re.search(rf"^  {parameter}:\n(?:    .*\n)*?    Default: (\d+)", template.read_text(), re.M)
    if found is None:
        raise ValueError(f"{template} has no numeric default for {parameter}")
    return int(found.group(1))


def credits(seconds: float) -> float:
    return seconds / 3600 * XSMALL_CREDITS_PER_HOUR


def trickle(window_s: int, batch_size: int, busy_one_s: float, busy_batch_s: float, auto_suspend_s: int) -> dict[str, Any]:
    """One small file a minute, a batching window of window_s: resumes and credits a day, and the wait the window adds."""
    # the window opens with a file and gathers those that arrive before it closes (one at its very end does not)
    files = min(batch_size, 1 + max(0, window_s - 1) // TRICKLE_INTERVAL_SECONDS)
    period = TRICKLE_INTERVAL_SECONDS * files
    busy = busy_one_s if files == 1 else busy_batch_s
    if period - busy <= auto_suspend_s:
        resumes, billed = 1, DAY_SECONDS
    else:
        resumes = DAY_SECONDS // period
        billed = resumes * max(MINIMUM_BILLED_SECONDS, busy + auto_suspend_s)
    return {
        "files_per_invocation": files,
        "resumes_per_day": resumes,
        "credits_per_day": round(credits(billed), 2),
        "added_wait_max_s": TRICKLE_INTERVAL_SECONDS * (files - 1),
    }


def burst(batch_size: int, concurrency: int, busy_batch_s: float, auto_suspend_s: int) -> dict[str, Any]:
    """1,000 small files at once: one resume, and its credits."""
    invocations = math.ceil(BURST_FILES / batch_size)
    busy = invocations * busy_batch_s / concurrency
    return {"invocations": invocations, "resumes": 1, "credits": round(credits(max(MINIMUM_BILLED_SECONDS, busy + auto_suspend_s)), 3)}


def snowpipe_credits(files: int, file_bytes: int) -> float:
    return files * file_bytes / 1024**3 * SNOWPIPE_CREDITS_PER_GB


def estimate(results: dict[str, Any]) -> dict[str, Any]:
    """The estimate's figures, from a run's warehouse time; nothing when the run did not measure it."""
    busy_one = results.get("warehouse_seconds_per_small_file")
    busy_batch = results.get("warehouse_seconds_per_batch_of_10_small_files")
    file_bytes = results.get("small_file_bytes")
    if busy_one is None or busy_batch is None or file_bytes is None:
        return {}
    auto_suspend = auto_suspend_seconds()
    batch_size, window = template_default("BatchSize"), template_default("MaximumBatchingWindowInSeconds")
    concurrency = template_default("MaximumConcurrency")
    by_window = {str(w): trickle(w, batch_size, busy_one, busy_batch, auto_suspend) for w in sorted({*WINDOWS_SHOWN, window})}
    burst_1000 = burst(batch_size, concurrency, busy_batch, auto_suspend)
    day_files = DAY_SECONDS // TRICKLE_INTERVAL_SECONDS
    return {
        "costs": {
            "xsmall_credits_per_hour": XSMALL_CREDITS_PER_HOUR,
            "minimum_billed_s": MINIMUM_BILLED_SECONDS,
            "snowpipe_credits_per_gb": SNOWPIPE_CREDITS_PER_GB,
            "auto_suspend_s": auto_suspend,
            "batch_size": batch_size,
            "batching_window_s": window,
            "max_concurrency": concurrency,
            "trickle_by_batching_window": by_window,
            "burst_1000": burst_1000,
        },
        "trickle_credits_per_day": by_window[str(window)]["credits_per_day"],
        "trickle_resumes_per_day": by_window[str(window)]["resumes_per_day"],
        "burst_1000_credits": burst_1000["credits"],
        "snowpipe_trickle_credits_per_day": round(snowpipe_credits(day_files, file_bytes), 5),
        "snowpipe_burst_1000_credits": round(snowpipe_credits(BURST_FILES, file_bytes), 5),
    }
