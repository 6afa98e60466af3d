"""docs/performance.md, rendered from bench/results.json: every figure on the page comes from there.

    python bench/report.py            # rewrite docs/performance.md from bench/results.json (`make perf-doc`)
    python bench/report.py --check    # exit 1 if the page is not what results.json renders

`make bench` rewrites the page after each full run (bench.py's main() calls write_page). The rows of the
page's table are also the rows of the table `make bench` prints (bench.print_table), so the two cannot
drift apart. A figure missing from results.json (an older run, or a section that failed) is shown as
"not measured". Standard library only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
PAGE = ROOT / "docs" / "performance.md"
NOT_MEASURED = "not measured"

Results = dict[str, Any]


def figure(results: Results, *path: str) -> Any:
    """The value at `path` in results, or None when it was not measured."""
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def shown(value: Any) -> str:
    return NOT_MEASURED if value is None else str(value)


def one(*path: str) -> Callable[[Results], Any]:
    return lambda results: figure(results, *path)


def several(*paths: tuple[str, ...], sep: str = ", ") -> Callable[[Results], Any]:
    """Several figures in one cell; "not measured" once if none of them was, else for each one missing."""

    def value(results: Results) -> Any:
        values = [figure(results, *path) for path in paths]
        return None if all(v is None for v in values) else sep.join(shown(v) for v in values)

    return value


def first_of(*paths: tuple[str, ...]) -> Callable[[Results], Any]:
    """The first of these that was recorded (a ratio, else the error that kept it from being measured)."""

    def value(results: Results) -> Any:
        return next((v for v in (figure(results, *path) for path in paths) if v is not None), None)

    return value


def throughput(results: Results) -> Any:
    mb_s, records_s = figure(results, "pipeline_mb_s"), figure(results, "pipeline_records_s")
    return None if mb_s is None and records_s is None else f"{shown(mb_s)} MB/s, {shown(records_s)} records/s"


def curve(results: Results) -> Any:
    rates = figure(results, "scale_out_files_per_minute")
    return ", ".join(f"{pollers}: {rate}" for pollers, rate in rates.items()) if rates else None


def at_least(limit: float, *path: str) -> Callable[[Results], bool | None]:
    return lambda results: None if not isinstance(v := figure(results, *path), (int, float)) else v >= limit


def at_most(limit: float, *path: str) -> Callable[[Results], bool | None]:
    return lambda results: None if not isinstance(v := figure(results, *path), (int, float)) else v <= limit


def all_at_most(limit: float, *keys: str) -> Callable[[Results], bool | None]:
    def met(results: Results) -> bool | None:
        values = [figure(results, key) for key in keys]
        return None if not all(isinstance(v, (int, float)) for v in values) else max(values) <= limit

    return met


@dataclass(frozen=True)
class Row:
    measure: str
    value: Callable[[Results], Any]
    target: str = ""
    # Whether the target is met, from the figure(s) it is about; None when they were not measured.
    met: Callable[[Results], bool | None] | None = None

    def figure(self, results: Results) -> str:
        return shown(self.value(results))

    def verdict(self, results: Results) -> str:
        if self.met is None:
            return ""
        met = self.met(results)
        return NOT_MEASURED if met is None else ("yes" if met else "no")


ROWS = (
    Row("pipeline / JSON floor (contracts on)", one("pipeline_vs_floor"), "≥ 0.8", at_least(0.8, "pipeline_vs_floor")),
    Row(
        "pipeline / JSON floor (contracts off)",
        one("pipeline_vs_floor_no_contracts"),
        "≥ 1.0",
        at_least(1.0, "pipeline_vs_floor_no_contracts"),
    ),
    Row("pipeline throughput", throughput),
    Row("throughput (MB/s): JSON floor, pipeline without contracts", several(("floor_mb_s",), ("pipeline_no_contracts_mb_s",))),
    Row("end to end: naive time / ours", one("end_to_end_vs_naive"), "≥ 5 (on 100 MB)", at_least(5, "end_to_end_vs_naive")),
    Row("end to end: ours, naive (s)", several(("e2e_ours_s",), ("e2e_naive_s",))),
    Row("end to end: peak RSS ours, naive (MB)", several(("e2e_ours_peak_rss_mb",), ("e2e_naive_peak_rss_mb",))),
    Row(
        "statements per small file: ours / naive",
        several(("statements_per_small_file",), ("naive_statements_per_small_file",), sep=" / "),
        "≤ 4",
        at_most(4, "statements_per_small_file"),
    ),
    Row(
        "statements per large file: ours / naive", several(("statements_per_large_file",), ("naive_statements_per_large_file",), sep=" / ")
    ),
    Row(
        "statements per SQS batch of 10 small files",
        one("statements_per_batch_of_10_small_files"),
        "≤ 5",
        at_most(5, "statements_per_batch_of_10_small_files"),
    ),
    Row("statements per GB (the end-to-end file, bound)", one("statements_per_gb")),
    Row("statements per GB, 1 GB file: staged, bound", several(("statements_per_gb_staged",), ("statements_per_gb_bound",))),
    Row(
        "1 GB file: bound time / staged time",
        one("large_file_stage_vs_bound"),
        "≥ 3",
        at_least(3, "large_file_stage_vs_bound"),
    ),
    Row("1 GB file: staged, bound (s)", several(("large_file_stage_s",), ("large_file_bound_s",))),
    Row(
        "1 GB file, CPU seconds: staged loader, local stack; bound loader, local stack",
        several(
            ("large_file_cpu_s", "staged", "loader"),
            ("large_file_cpu_s", "staged", "local_stack"),
            ("large_file_cpu_s", "bound", "loader"),
            ("large_file_cpu_s", "bound", "local_stack"),
        ),
    ),
    Row("1 GB file: bound time / (staged CPU ÷ cores), the most the stage's CPU allows", one("large_file_stage_vs_bound_cpu_ceiling")),
    Row("end-to-end file: bound time / staged time, staged (s)", several(("e2e_stage_vs_bound",), ("e2e_staged_s",))),
    Row("1 GB file staged: peak RSS (MB)", one("large_file_peak_rss_mb"), "≤ 300", at_most(300, "large_file_peak_rss_mb")),
    Row("warehouse-busy seconds: per small file, per GB", several(("warehouse_seconds_per_small_file",), ("warehouse_seconds_per_gb",))),
    Row("warehouse-busy seconds: a batch of 10 small files", one("warehouse_seconds_per_batch_of_10_small_files")),
    Row(
        "credits a day, a trickle (a small file a minute): ours, Snowpipe",
        several(("trickle_credits_per_day",), ("snowpipe_trickle_credits_per_day",)),
        "estimate (below)",
    ),
    Row("warehouse resumes a day, that trickle", one("trickle_resumes_per_day")),
    Row("credits, a burst of 1,000 small files: ours, Snowpipe", several(("burst_1000_credits",), ("snowpipe_burst_1000_credits",))),
    Row("upload → queryable row, p50 (s)", one("latency_p50_s"), "≤ 2 (warm)", at_most(2, "latency_p50_s")),
    Row("upload → queryable row, p95 (s)", one("latency_p95_s")),
    Row("of that, p50: delivery to the load, the load (s)", several(("latency_delivery_p50_s",), ("latency_load_p50_s",))),
    Row("upload → DAILY_SUMMARY counts it, p50 (s)", one("summary_latency_p50_s")),
    Row(
        "command start: --help, config (s)",
        several(("cli_help_s",), ("cli_config_s",)),
        "≤ 0.5 each",
        all_at_most(0.5, "cli_help_s", "cli_config_s"),
    ),
    Row("peak RSS large / small file", one("rss_1gb_vs_10mb"), "≤ 1.5", at_most(1.5, "rss_1gb_vs_10mb")),
    Row("peak RSS small, large (MB)", several(("rss", "small", "peak_rss_mb"), ("rss", "large", "peak_rss_mb"))),
    Row("large file: load time (s), records", several(("rss", "large", "seconds"), ("rss", "large", "rows"))),
    Row(
        "cold start ours / Snowpark+pandas",
        first_of(("cold_start_vs_snowpark",), ("cold_start_snowpark_error",)),
        "≤ 0.5",
        at_most(0.5, "cold_start_vs_snowpark"),
    ),
    Row("cold start ours, Snowpark+pandas (s)", several(("cold_start_s",), ("cold_start_snowpark_s",))),
    Row("cold start: handler import from the artefact (s)", one("cold_start_import_s")),
    Row(
        "cold start with connector 5.x / Snowpark+pandas",
        one("cold_start_connector5_vs_snowpark"),
        "≤ 0.35 (needs an AL2023 runtime)",
        at_most(0.35, "cold_start_connector5_vs_snowpark"),
    ),
    Row(
        "cold start with connector 5.x (s), its handler import (s)",
        several(("cold_start_connector5_s",), ("cold_start_connector5_import_s",)),
    ),
    Row("artefact unpacked (MB)", one("artefact_mb"), "≤ 80", at_most(80, "artefact_mb")),
    Row("artefact with connector 5.x unpacked (MB)", one("artefact_connector5_mb"), "≤ 100", at_most(100, "artefact_connector5_mb")),
    Row("artefact zipped: 4.x, 5.x (MB)", several(("artefact_zip_mb",), ("artefact_connector5_zip_mb",))),
    Row("handler cold import: 4.x, 5.x artefact (s)", several(("handler_cold_import_s",), ("handler_connector5_cold_import_s",))),
    Row("scale-out, files/minute by pollers", curve, "2 cores: report the curve"),
)

INTRO = """\
<!-- Generated by bench/report.py from bench/results.json: edit those, not this page (`make perf-doc`). -->
# Performance

What widf-loader costs, measured by `make bench`. Every figure below comes from
`bench/results.json`, the last full run's results; none is typed by hand. Why
the loader costs what it costs, and what would make it cost less, is in
[the pipeline's page](pipeline.md#what-a-load-costs-and-why).

## How `make bench` measures

`make bench` measures everything side by side in one run and writes
`bench/results.json`, then this page. It builds `dist/` (the artefact the
template deploys, and the same function with connector 5.x) and a separate
`bench/.venv-snowpark` with Snowpark and pandas for the comparisons, and
runs against a local stack of its own. A whole run takes minutes; it is not
part of `make test`.

- **Side by side, in turns.** A ratio compares two things measured in the
  same run. The JSON floor (orjson parse and dump of every record, nothing
  else), the pipeline (in batches as the loader makes them by default,
  `WIDF_BATCH_ROWS`) and the pipeline without contracts take turns, at least
  five times each; the cold starts of the deployed artefact (connector 4.x),
  of the same function with connector 5.x and of a Snowpark + pandas handler
  take turns too; so load from elsewhere on the machine falls on all of them
  alike. A timed figure is the median of its turns.
- **End to end** loads the same large NDJSON file through the same gateway,
  in turns, with the loader and with a naive loader (the whole object in
  memory, `json.loads` and `json.dumps` per record, a pandas DataFrame, a
  staging table, `INSERT … SELECT PARSE_JSON`). Statements are counted at the
  gateway.
- **Memory** is the peak RSS (`VmHWM`) of a fresh interpreter loading a large
  file, against one loading a small file (one run each). The large file goes
  through the stage (it is over `WIDF_STAGE_ABOVE_BYTES`); it is then loaded
  once more by the bound path (the stage switched off), for the time, memory
  and statements of the two side by side. Each of these runs starts from an
  empty `RAW_DATA`: the local engine holds the table in memory and slows as it
  grows, which would fall on whichever run came second. The end-to-end file, under the
  threshold, is loaded once more through the stage (switched on) likewise.
  `DAILY_SUMMARY` is suspended for these runs: its refresh (in full, locally)
  would share their two cores, where Snowflake runs it on a warehouse of its own.
  For the two 1 GB runs the CPU seconds of the loader's process and of the
  local stack's (gateway and moto share one) are read while each runs; the
  bound time over the staged run's CPU spread over every core is the most any
  overlap of the two could make of the stage on this machine.
- **Cold start** is what a new Lambda container does: a fresh interpreter that
  sees only the unpacked zip and writes no bytecode imports
  `widf_loader.handler` and calls `lambda_handler` with the SQS event the
  template wires (one S3 notification of a 20-record file), including the
  WIDF login.
- **Scale-out** counts the files per minute that 1, 2 and 4 concurrent
  pollers take through the queue, the runner and the gateway (one run each).
- **Statements per batch** is the cold start's invocation again, with one SQS
  batch of ten small files (the template's batch size), counted at the gateway.
- **Warehouse time** is what Snowflake bills a warehouse for: the
  `EXECUTION_TIME` that `QUERY_HISTORY` records for the statements of a file
  (the loader tags each with the file's id), for a small file and per GB of
  the end-to-end file.
- **Latency** is upload to queryable row through the whole local stack: `PUT`
  to S3, its notification, the queue, the runner's poll, the load, and an
  administrator's `SELECT` polling every 10 ms, for small files one after
  another once the function is warm (the first file only warms it);
  `QUERY_HISTORY` splits it into delivery (upload to the file's first
  statement) and the load (to its commit). Upload to `DAILY_SUMMARY` waits
  for a refresh of the dynamic table (`TARGET_LAG` one minute).
- **Command start** is `widf-loader --help` and `widf-loader config` in fresh
  processes, the median of five each. A command imports the connector, boto3
  and the local stack only when it runs; help and usage errors are click's
  plain text, because typer's rich help imports Markdown and traceback
  renderers that cost more than the rest of the start.

`BENCH_ONLY=artefact,cold_start .venv/bin/python bench/bench.py` measures only
those sections (once `make bench` has made the Snowpark venv) and leaves
`bench/results.json` and this page alone. The figures come from the local
stack on the machine named below: absolute speeds are low; the ratios are what to read.
"""


MACHINE = {"cores": "{} cores", "python": "Python {}"}  # how results["machine"]'s keys read; others as "key value"


def render(results: Results | None) -> str:
    """The page for these results (None: no results.json at all)."""
    results = results or {}
    lines = [INTRO, "## The figures", "", "| measure | figure | target | met |", "| --- | --- | --- | --- |"]
    for row in ROWS:
        lines.append(f"| {row.measure} | {row.figure(results)} | {row.target} | {row.verdict(results)} |")
    lines += costs_section(results)
    lines += ["", "## Where the figures come from", ""]
    if not results:
        lines.append("Nothing is measured yet: `bench/results.json` is missing. `make bench` writes it, and this page.")
        return "\n".join(lines) + "\n"
    machine = figure(results, "machine") or {}
    described = (
        ", ".join(MACHINE.get(key, key + " {}").format(value) for key, value in machine.items())
        if isinstance(machine, dict)
        else str(machine)
    )
    lines += [
        f"One full run of `make bench`, on a machine with {described or NOT_MEASURED}, against the local stack "
        "(moto and the Snowflake gateway on loopback).",
        "",
        "Sizes in that run:",
        "",
        f"- pipeline: {shown(figure(results, 'pipeline_mb'))} MB of NDJSON events, {shown(figure(results, 'pipeline_records'))} records;",
        f"- end to end: a {shown(figure(results, 'e2e_mb'))} MB file;",
        f"- memory: {shown(figure(results, 'rss', 'small', 'mb'))} MB against {shown(figure(results, 'rss', 'large', 'mb'))} MB;",
        f"- scale-out: {shown(figure(results, 'scale_out_files'))} files of {shown(figure(results, 'scale_out_file_kb'))} KB for each number of pollers;",
        f"- latency: {shown(figure(results, 'latency_files'))} files to a queryable row, {shown(figure(results, 'summary_latency_files'))} to DAILY_SUMMARY.",
    ]
    return "\n".join(lines) + "\n"


COSTS_INTRO = """\
The warehouse time above, turned into credits by bench/costs.py: an X-Small warehouse bills {per_hour} credit an
hour, per second, at least {minimum} seconds each time it resumes ([Overview of warehouses](https://docs.snowflake.com/en/user-guide/warehouses-overview),
"Credit usage and billing"), and suspends after `AUTO_SUSPEND` seconds with nothing to run (`sql/setup.sql`:
{auto_suspend}). Snowpipe has no warehouse and bills a fixed rate per GB, JSON by its uncompressed size
([Snowpipe costs](https://docs.snowflake.com/en/user-guide/data-load-snowpipe-billing); {snowpipe} credits per GB,
the Service Consumption Table's rate). The template's defaults: `BatchSize` {batch_size},
`MaximumBatchingWindowInSeconds` {window}, `MaximumConcurrency` {concurrency}.

A trickle of one small file a minute, by batching window (the template's parameter):

| batching window (s) | files per invocation | warehouse resumes a day | credits a day | longest added wait (s) |
| --- | --- | --- | --- | --- |
"""


def costs_section(results: Results) -> list[str]:
    """The credits estimate's inputs and its trickle table ("not measured" when the run did not make one)."""
    model = figure(results, "costs")
    lines = ["", "## What a day of loading costs in credits (an estimate)", ""]
    if not isinstance(model, dict):
        return [*lines, f"{NOT_MEASURED.capitalize()}: the run recorded no warehouse time for a small file and a batch of them."]
    lines += COSTS_INTRO.format(
        per_hour=model["xsmall_credits_per_hour"],
        minimum=model["minimum_billed_s"],
        snowpipe=model["snowpipe_credits_per_gb"],
        auto_suspend=model["auto_suspend_s"],
        batch_size=model["batch_size"],
        window=model["batching_window_s"],
        concurrency=model["max_concurrency"],
    ).splitlines()
    for window, row in model["trickle_by_batching_window"].items():
        lines.append(
            f"| {window} | {row['files_per_invocation']} | {row['resumes_per_day']} | {row['credits_per_day']} | {row['added_wait_max_s']} |"
        )
    burst = model["burst_1000"]
    lines += [
        "",
        f"A burst of 1,000 small files: {burst['invocations']} invocations, {burst['resumes']} resume, {burst['credits']} credits.",
    ]
    return lines + window_reason(model)


def window_reason(model: dict[str, Any]) -> list[str]:
    """The template's batching window, judged by the trickle table: which windows save credits, and at what wait."""
    rows = {int(w): row for w, row in model["trickle_by_batching_window"].items()}
    default = rows[model["batching_window_s"]]
    saving = [w for w, row in sorted(rows.items()) if row["credits_per_day"] < default["credits_per_day"]]
    if not saving:
        return ["", f"No window shown saves credits on the template's default of {model['batching_window_s']} s."]
    first, best = saving[0], min(rows.items(), key=lambda item: item[1]["credits_per_day"])
    return [
        "",
        f"Why the template's window is {model['batching_window_s']} s: with files a minute apart, windows shorter than "
        f"{first} s save nothing ({default['credits_per_day']} credits a day either way: the warehouse never idles the "
        f"`AUTO_SUSPEND` seconds it needs to suspend) and would only delay files. The windows that save credits cost "
        f"minutes of wait: {best[0]} s, the most the template allows, makes it {best[1]['credits_per_day']} credits a day "
        f"for waits of up to {best[1]['added_wait_max_s']} s. Set `MaximumBatchingWindowInSeconds` when a trickle's "
        "credits matter more than that wait; a burst costs little either way (its files arrive together and load ten "
        "to an invocation).",
    ]


def read_results(path: Path = RESULTS) -> Results | None:
    return json.loads(path.read_text()) if path.exists() else None


def write_page(results_path: Path = RESULTS, page: Path = PAGE) -> Path:
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(render(read_results(results_path)))
    return page


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        if PAGE.exists() and PAGE.read_text() == render(read_results()):
            return 0
        print(
            f"{PAGE.relative_to(ROOT)} is not what bench/report.py renders from bench/results.json: run `make perf-doc`.", file=sys.stderr
        )
        return 1
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    print(f"wrote {write_page().relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
