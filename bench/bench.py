"""`make bench`: what widf-loader costs, measured side by side in one run.

Every figure is a ratio of two things measured here, now, on this machine:
the pipeline against the JSON floor, the loader against a naive loader
through the same local gateway, memory for a large file against a small one,
statements per file counted at the gateway. Prints a table and writes
bench/results.json, then docs/performance.md from it (bench/report.py).
Not part of `make test`: it takes minutes.

Sizes come from the environment: BENCH_PIPELINE_MB (default 32),
BENCH_E2E_MB (100), BENCH_RSS_SMALL_MB (10), BENCH_RSS_LARGE_MB (1024),
BENCH_REPEAT (3). BENCH_ONLY=cold_start,artefact (any of pipeline, artefact,
end_to_end, cold_start, scale_out, memory) measures only those and prints
their figures without touching bench/results.json.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import costs  # bench/costs.py, beside this script: credits per day from the warehouse time measured here
import orjson
import report  # bench/report.py, beside this script: renders docs/performance.md from results.json

from widf_loader.config import LoaderSettings, ReadLimits
from widf_loader.events import FileRef, file_id
from widf_loader.pipeline import Pipeline, Tally
from widf_loader.pipeline_config import DEFAULT_CONFIG, read_pipeline_config
from widf_loader.reader import iter_records
from widf_local import samples

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
# Snowpark and pandas live only here, never in the project's environment (make bench creates it).
COMPARISON_PYTHON = ROOT / "bench" / ".venv-snowpark" / "bin" / "python"
MB = 1024 * 1024
GB = 1024 * MB


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


REPEAT = env_int("BENCH_REPEAT", 3)


# -- data ----------------------------------------------------------------------


SMALL_FILE_BYTES = 64 * 1024  # the small file of end to end, warehouse time and the batch of ten
NO_STAGE = {"WIDF_STAGE_ABOVE_BYTES": str(10**15)}  # the bound path for a file of any size
ALWAYS_STAGE = {"WIDF_STAGE_ABOVE_BYTES": "1"}  # the stage for a file of any size


def event_lines(target_bytes: int, bad_every: int = 500) -> bytes:
    """Realistic NDJSON: a mix of actions, nested fields, and a few records that break their contract."""
    base = samples.sample_events(1000, seed=42)
    out, size, i = [], 0, 0
    while size < target_bytes:
        event = dict(base[i % len(base)])
        event["event_id"] = f"evt-{i:09d}"
        event["context"] = {"session": f"s-{i // 17}", "tags": ["a", "b", str(i % 7)], "screen": {"w": 1920, "h": 1080}}
        if bad_every and i % bad_every == bad_every - 1:
            event.pop("user_id")  # breaks the event contract: quarantined, not loaded
        line = orjson.dumps(event)
        out.append(line)
        size += len(line) + 1
        i += 1
    return b"\n".join(out) + b"\n"


def write_events(path: Path, target_bytes: int) -> int:
    """Stream a large NDJSON file to disk without holding it; returns its size."""
    chunk = event_lines(8 * MB)
    with path.open("wb") as f:
        while f.tell() < target_bytes:
            f.write(chunk)
    return path.stat().st_size


# -- measurement helpers -------------------------------------------------------


def timed_in_turns(runs: dict[str, Callable[[], Any]], repeat: int = REPEAT) -> dict[str, tuple[float, float]]:
    """(median seconds, spread) of each run, the runs taking turns: on a shared machine, load from
    elsewhere then falls on all of them alike instead of on whichever ran during it."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: (statistics.median(t), max(t) - min(t)) for name, t in times.items()}


# -- 1. the pipeline against the JSON floor --------------------------------------


def json_floor(data: bytes) -> int:
    """Parse and re-serialise every record once with the fastest JSON library installed: nothing else."""
    count = 0
    for line in io.BytesIO(data):
        if line.strip():
            orjson.dumps(orjson.loads(line))
            count += 1
    return count


def pipeline_pass(pipeline: Pipeline, data: bytes) -> int:
    """Parse, route, check contracts, enrich (event context), serialise rows for the load, in batches as the
    loader makes them by default (WIDF_BATCH_ROWS)."""
    tally = Tally()
    ref = FileRef("bench", "incoming/bench.ndjson", version_id="v", etag="e", size=len(data))
    for _ in pipeline.batches(ref, iter_records(io.BytesIO(data), ref.uri), "load-id", ReadLimits(), LoaderSettings.batch_rows, tally):
        pass
    return tally.records


def measure_pipeline() -> dict[str, Any]:
    data = event_lines(env_int("BENCH_PIPELINE_MB", 32) * MB)
    with_contracts = Pipeline(read_pipeline_config(DEFAULT_CONFIG))
    config = read_pipeline_config(DEFAULT_CONFIG)
    without_contracts = Pipeline(replace(config, routes=tuple(replace(r, contract=None, contract_path=None) for r in config.routes)))
    records = json_floor(data)
    turns = timed_in_turns(
        {
            "floor": lambda: json_floor(data),
            "ours": lambda: pipeline_pass(with_contracts, data),
            "bare": lambda: pipeline_pass(without_contracts, data),
        },
        repeat=max(REPEAT, 5),
    )
    (floor_s, floor_spread), (ours_s, ours_spread), (bare_s, bare_spread) = turns["floor"], turns["ours"], turns["bare"]
    mb = len(data) / MB
    return {
        "pipeline_mb": round(mb, 1),
        "pipeline_records": records,
        "floor_mb_s": round(mb / floor_s, 1),
        "pipeline_mb_s": round(mb / ours_s, 1),
        "pipeline_records_s": round(records / ours_s),
        "pipeline_no_contracts_mb_s": round(mb / bare_s, 1),
        "pipeline_vs_floor": round(floor_s / ours_s, 3),
        "pipeline_vs_floor_no_contracts": round(floor_s / bare_s, 3),
        "spread_s": {"floor": round(floor_spread, 3), "pipeline": round(ours_spread, 3), "no_contracts": round(bare_spread, 3)},
    }


# -- the local stack: end to end, statements, memory ----------------------------


class LocalStack:
    """A local stack of its own, with the function deployed and trusted, through the CLI."""

    def __init__(self) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="widf-bench-"))
        for command in (["local", "up"], ["snow", "setup"], ["aws", "deploy"], ["snow", "lambda-wid"]):
            self.cli(*command)
        from widf_cli.local_stack import deployed
        from widf_local.stack import StackPaths, read_stack

        self.info = read_stack(StackPaths(self.state))
        self.deployment = deployed(StackPaths(self.state))
        # The naive loader's staging table needs CREATE TABLE, which the loader's role never has:
        # granted here, in the benchmark's own stack, and nowhere else.
        from widf_cli.local_stack import admin_connection

        with admin_connection(self.info) as connection:
            connection.cursor().execute("GRANT CREATE TABLE ON SCHEMA WIDF_DEMO_DB.PUBLIC TO ROLE WIDF_DEMO_ROLE")

    def cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "widf_cli", "--state-dir", str(self.state), *args], check=True, capture_output=True)

    def close(self) -> None:
        self.cli("local", "down")
        shutil.rmtree(self.state, ignore_errors=True)

    def statements(self) -> int:
        url = f"http://{self.info.snowflake_host}:{self.info.snowflake_port}/local/stats"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())["statements"]

    def statements_of(self, ref: FileRef) -> list[dict[str, Any]]:
        """The loader's statements for one file, oldest first, from QUERY_HISTORY: the loader tags each with the
        file's id, or a batch's statements with the ids of its files (compact JSON, so the tag holds the id
        as a JSON string, as written here)."""
        from widf_cli.local_stack import admin_connection

        with admin_connection(self.info) as connection:
            cursor = connection.cursor().execute(
                "SELECT QUERY_TAG, START_TIME, END_TIME, EXECUTION_TIME "
                "FROM TABLE(WIDF_DEMO_DB.INFORMATION_SCHEMA.QUERY_HISTORY(RESULT_LIMIT => 10000)) WHERE QUERY_TAG LIKE %s",
                (f"%{json.dumps(file_id(ref))}%",),
            )
            columns = [c[0] for c in cursor.description]
            rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

        def names_it(tag: dict[str, Any]) -> bool:
            return tag.get("file_id") == file_id(ref) or file_id(ref) in (tag.get("file_ids") or ())

        return sorted((r for r in rows if names_it(json.loads(r["QUERY_TAG"]))), key=lambda r: r["START_TIME"])

    def cpu_seconds(self) -> float:
        """The local stack's process's CPU seconds so far (user and system, from /proc)."""
        fields = Path(f"/proc/{self.info.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def admin(self, sql: str) -> None:
        from widf_cli.local_stack import admin_connection

        with admin_connection(self.info) as connection:
            connection.cursor().execute(sql)

    def empty_raw_data(self) -> None:
        """No rows in RAW_DATA, so that the next run finds the table as the one it is compared with did: the local
        engine holds the table in memory, and a load into it slows as the rows it holds grow, which would fall on
        whichever of two runs came second. (The engine frees a deleted row group's memory for reuse.)"""
        from widf_cli.local_stack import admin_connection

        with admin_connection(self.info) as connection:
            connection.cursor().execute("DELETE FROM WIDF_DEMO_DB.PUBLIC.RAW_DATA")

    def upload(self, key: str, path: Path) -> FileRef:
        from widf_local import aws

        s3 = aws.client("s3", self.info.aws_endpoint)
        s3.upload_file(str(path), self.deployment.resources.bucket, key)
        head = s3.head_object(Bucket=self.deployment.resources.bucket, Key=key)
        return FileRef(
            self.deployment.resources.bucket, key, version_id=head["VersionId"], etag=head["ETag"].strip('"'), size=head["ContentLength"]
        )

    def function_env(self) -> dict[str, str]:
        """The function's environment, as the tests have it, and what a fresh interpreter needs to start."""
        from widf_cli.local_stack import function_env

        return function_env(self.info, self.deployment) | {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        }


# Runs in a fresh interpreter, as a Lambda container would, and reports seconds, rows and peak RSS.
LOAD_ONE = """
import json, sys, time
started = time.perf_counter()
def peak_rss_mb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024

import boto3
from widf_loader.config import LoaderSettings
from widf_loader.events import FileRef
from widf_loader.pipeline import Pipeline
from widf_loader.pipeline_config import load_pipeline_config
from widf_loader.observe import query_tag
from widf_loader.warehouse import Warehouse
ref = FileRef(**json.loads(sys.argv[1]))
settings = LoaderSettings.from_env()
warehouse = Warehouse(settings)
with warehouse.tagged(query_tag(ref, "bench")):  # as the handler tags an attempt: QUERY_HISTORY finds its statements
    outcome = Pipeline(load_pipeline_config()).load_file(ref, s3=boto3.client("s3"), warehouse=warehouse, settings=settings)
print(json.dumps({"seconds": time.perf_counter() - started, "rows": outcome.rows_loaded, "status": outcome.status,
                  "peak_rss_mb": peak_rss_mb()}))
"""

# The naive loader: whole object in memory, json.loads, json.dumps per record, one DataFrame,
# a staging table, INSERT ... SELECT PARSE_JSON, drop the staging table.
NAIVE = """
import json, sys, time
started = time.perf_counter()
def peak_rss_mb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024

import boto3, pandas, snowflake.connector
from widf_loader.config import LoaderSettings
ref = json.loads(sys.argv[1])
body = boto3.client("s3").get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read()
records = [json.loads(line) for line in body.splitlines() if line.strip()]
frame = pandas.DataFrame({"SOURCE_FILE": f"s3://{ref['bucket']}/{ref['key']}", "PAYLOAD": [json.dumps(r) for r in records]})
connection = snowflake.connector.connect(**LoaderSettings.from_env().connect_args())
cursor = connection.cursor()
cursor.execute("CREATE TEMPORARY TABLE NAIVE_STAGING (SOURCE_FILE VARCHAR, PAYLOAD VARCHAR)")
rows = list(frame.itertuples(index=False, name=None))
for start in range(0, len(rows), 16384):
    cursor.executemany("INSERT INTO NAIVE_STAGING (SOURCE_FILE, PAYLOAD) VALUES (?, ?)", rows[start:start + 16384])
cursor.execute("INSERT INTO RAW_DATA (SOURCE_FILE, PAYLOAD, LOADED_BY) SELECT SOURCE_FILE, PARSE_JSON(PAYLOAD), CURRENT_USER() FROM NAIVE_STAGING")
cursor.execute("DROP TABLE NAIVE_STAGING")
connection.commit()
print(json.dumps({"seconds": time.perf_counter() - started, "rows": len(records), "status": "LOADED",
                  "peak_rss_mb": peak_rss_mb()}))
"""


def run_loader(
    stack: LocalStack, script: str, ref: FileRef, python: str = sys.executable, extra_env: dict[str, str] | None = None
) -> dict[str, Any]:
    before, stack_cpu, children = stack.statements(), stack.cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    argument = json.dumps({"bucket": ref.bucket, "key": ref.key, "version_id": ref.version_id, "etag": ref.etag, "size": ref.size})
    env = stack.function_env() | ({"PYTHONPATH": str(ROOT / "src")} if python != sys.executable else {}) | (extra_env or {})
    done = subprocess.run([python, "-c", script, argument], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"loader failed: {done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return json.loads(done.stdout.strip().splitlines()[-1]) | {
        "statements": stack.statements() - before,
        # CPU seconds, the loader's and the local stack's (gateway and moto, one process) while it ran
        "loader_cpu_s": after.ru_utime - children.ru_utime + after.ru_stime - children.ru_stime,
        "stack_cpu_s": stack.cpu_seconds() - stack_cpu,
    }


def measure_end_to_end(stack: LocalStack, workdir: Path) -> dict[str, Any]:
    small = workdir / "small.ndjson"
    small.write_bytes(event_lines(SMALL_FILE_BYTES, bad_every=0))
    big = workdir / "e2e.ndjson"
    write_events(big, env_int("BENCH_E2E_MB", 100) * MB)
    small_ref = stack.upload("incoming/bench/small-ours.jsonl", small)
    ours_small = run_loader(stack, LOAD_ONE, small_ref)
    naive_small = run_loader(stack, NAIVE, stack.upload("incoming/bench/small-naive.jsonl", small), str(COMPARISON_PYTHON))
    ours, naive = [], []
    large_refs = []
    for i in range(REPEAT):
        large_refs.append(stack.upload(f"incoming/bench/e2e-ours-{i}.jsonl", big))
        ours.append(run_loader(stack, LOAD_ONE, large_refs[-1]))
        naive.append(run_loader(stack, NAIVE, stack.upload(f"incoming/bench/e2e-naive-{i}.jsonl", big), str(COMPARISON_PYTHON)))
    ours_s = statistics.median(r["seconds"] for r in ours)
    naive_s = statistics.median(r["seconds"] for r in naive)
    # The same file through the stage (it is under WIDF_STAGE_ABOVE_BYTES), beside the bound runs above.
    staged = run_loader(stack, LOAD_ONE, stack.upload("incoming/bench/e2e-staged.jsonl", big), extra_env=ALWAYS_STAGE)
    gigabytes = big.stat().st_size / (1024 * MB)
    return {
        "e2e_mb": round(big.stat().st_size / MB, 1),
        "e2e_ours_s": round(ours_s, 2),
        "e2e_naive_s": round(naive_s, 2),
        "end_to_end_vs_naive": round(naive_s / ours_s, 3),
        "e2e_ours_peak_rss_mb": round(max(r["peak_rss_mb"] for r in ours), 1),
        "e2e_naive_peak_rss_mb": round(max(r["peak_rss_mb"] for r in naive), 1),
        "statements_per_small_file": ours_small["statements"],
        "naive_statements_per_small_file": naive_small["statements"],
        "statements_per_large_file": ours[0]["statements"],
        "naive_statements_per_large_file": naive[0]["statements"],
        "statements_per_gb": round(ours[0]["statements"] / gigabytes, 1),
        "e2e_staged_s": round(staged["seconds"], 2),
        "e2e_stage_vs_bound": round(ours_s / staged["seconds"], 3),
        # What the warehouse is busy (and billed) for: the EXECUTION_TIME of the file's statements.
        "warehouse_seconds_per_small_file": warehouse_seconds(stack, small_ref),
        "small_file_bytes": small.stat().st_size,
        "warehouse_seconds_per_gb": round(statistics.median(warehouse_seconds(stack, ref) for ref in large_refs) / gigabytes, 2),
    }


def warehouse_seconds(stack: LocalStack, ref: FileRef) -> float:
    return round(sum(r["EXECUTION_TIME"] for r in stack.statements_of(ref)) / 1000, 3)


def measure_memory(stack: LocalStack, workdir: Path) -> dict[str, Any]:
    # DAILY_SUMMARY's refresh (in full, locally) would run on the same two cores during these loads, and fall on
    # their CPU and time; in Snowflake it is a warehouse job of its own. Suspended for this section, the last.
    stack.admin("ALTER DYNAMIC TABLE WIDF_DEMO_DB.PUBLIC.DAILY_SUMMARY SUSPEND")
    try:
        return memory_side_by_side(stack, workdir)
    finally:
        stack.admin("ALTER DYNAMIC TABLE WIDF_DEMO_DB.PUBLIC.DAILY_SUMMARY RESUME")


def memory_side_by_side(stack: LocalStack, workdir: Path) -> dict[str, Any]:
    results = {}
    for label, megabytes in (("small", env_int("BENCH_RSS_SMALL_MB", 10)), ("large", env_int("BENCH_RSS_LARGE_MB", 1024))):
        path = workdir / f"rss-{label}.ndjson"
        write_events(path, megabytes * MB)
        stack.empty_raw_data()
        run = run_loader(stack, LOAD_ONE, stack.upload(f"incoming/bench/rss-{label}.jsonl", path))
        results[label] = {
            "mb": round(path.stat().st_size / MB, 1),
            "peak_rss_mb": round(run["peak_rss_mb"], 1),
            "seconds": round(run["seconds"], 1),
            "rows": run["rows"],
            "statements": run["statements"],
        }
        if label == "large":
            # The same file by the bound path (the stage switched off), beside the stage's run above, from the
            # same empty table.
            staged = run
            stack.empty_raw_data()
            bound = run_loader(stack, LOAD_ONE, stack.upload("incoming/bench/rss-large-bound.jsonl", path), extra_env=NO_STAGE)
            gigabytes = path.stat().st_size / GB
        path.unlink()
    large = results["large"]
    return {
        "rss": results,
        "rss_1gb_vs_10mb": round(large["peak_rss_mb"] / results["small"]["peak_rss_mb"], 3),
        "large_file_stage_vs_bound": round(bound["seconds"] / large["seconds"], 3),
        "large_file_stage_s": large["seconds"],
        "large_file_bound_s": round(bound["seconds"], 1),
        "large_file_peak_rss_mb": large["peak_rss_mb"],
        "large_file_bound_peak_rss_mb": round(bound["peak_rss_mb"], 1),
        "large_file_cpu_s": {
            way: {"loader": round(run["loader_cpu_s"], 1), "local_stack": round(run["stack_cpu_s"], 1)}
            for way, run in (("staged", staged), ("bound", bound))
        },
        # The most the stage could gain here: the bound run's time over the staged run's CPU, loader and local
        # stack together, spread over every core with no wait at all.
        "large_file_stage_vs_bound_cpu_ceiling": round(
            bound["seconds"] / ((staged["loader_cpu_s"] + staged["stack_cpu_s"]) / (os.cpu_count() or 1)), 3
        ),
        "statements_per_gb_staged": round(large["statements"] / gigabytes, 1),
        "statements_per_gb_bound": round(bound["statements"] / gigabytes, 1),
    }


def measure_scale_out(stack: LocalStack, workdir: Path) -> dict[str, Any]:
    """Files per minute through queue, runner and gateway with 1, 2 and 4 concurrent pollers.

    The template's MaximumConcurrency starts at 2 (as in AWS), so the runner's deployed
    spec is set directly here to measure a single poller too.
    """
    from dataclasses import replace as with_changes

    from widf_local import aws
    from widf_local.aws import FunctionSpec
    from widf_local.stack import StackPaths

    spec_path = StackPaths(stack.state).function_spec
    original = spec_path.read_text()
    files = env_int("BENCH_SCALE_FILES", 60)
    body = event_lines(48 * 1024, bad_every=0)
    s3 = aws.client("s3", stack.info.aws_endpoint)
    rates = {}
    try:
        for pollers in (1, 2, 4):
            spec_path.write_text(with_changes(FunctionSpec.from_json(original), max_concurrency=pollers).to_json())
            prefix = f"incoming/scale-{pollers}/"
            started = time.perf_counter()
            for i in range(files):
                s3.put_object(Bucket=stack.deployment.resources.bucket, Key=f"{prefix}{i:04d}.ndjson", Body=body)
            while loaded(stack, prefix) < files:
                if time.perf_counter() - started > 600:
                    raise RuntimeError(f"scale-out with {pollers} pollers did not finish in 10 minutes")
                time.sleep(0.5)  # polling the ledger for the end of the run; the measurement is the whole span
            rates[pollers] = round(files / (time.perf_counter() - started) * 60, 1)
    finally:
        spec_path.write_text(original)
    return {"scale_out_files_per_minute": rates, "scale_out_files": files, "scale_out_file_kb": len(body) // 1024}


def loaded(stack: LocalStack, prefix: str) -> int:
    from widf_cli.local_stack import admin_connection

    with admin_connection(stack.info) as connection:
        return (
            connection.cursor()
            .execute(
                "SELECT COUNT(*) FROM WIDF_DEMO_DB.PUBLIC.LOAD_HISTORY WHERE STATUS = 'LOADED' AND SOURCE_KEY LIKE %s", (f"{prefix}%",)
            )
            .fetchone()[0]
        )


def measure_latency(stack: LocalStack, workdir: Path) -> dict[str, Any]:
    """Upload to queryable row through the whole local stack (S3 notification, queue, runner, load), for small
    files one after another once the function is warm, split by QUERY_HISTORY into delivery (upload to the
    file's first statement), load (to its commit's end) and visibility (to the SELECT that first sees it);
    then upload to DAILY_SUMMARY counting the file's rows, for a few files (that waits for a refresh)."""
    from datetime import UTC, datetime

    from widf_cli.local_stack import admin_connection
    from widf_local import aws

    s3 = aws.client("s3", stack.info.aws_endpoint)
    bucket = stack.deployment.resources.bucket
    body = orjson.dumps(samples.sample_events(20))
    spans: list[dict[str, float]] = []
    summary: list[float] = []
    with admin_connection(stack.info) as connection:
        cursor = connection.cursor()

        def count(sql: str, *params: Any) -> int:
            return cursor.execute(sql, params).fetchone()[0] or 0

        def wait(until: Callable[[], bool], what: str, every: float = 0.01) -> float:
            started = time.perf_counter()
            while not until():
                if time.perf_counter() - started > 180:
                    raise RuntimeError(f"latency: {what} did not happen within 3 minutes")
                time.sleep(every)  # polling what is measured: the figure is the span to the first poll that sees it
            return time.perf_counter()

        files, summarised = env_int("BENCH_LATENCY_FILES", 20), env_int("BENCH_SUMMARY_LATENCY_FILES", 3)
        for i in range(files + summarised + 1):  # the first only warms the function
            key = f"incoming/latency/{i:03d}.json"
            total = count("SELECT COUNT(*) FROM WIDF_DEMO_DB.PUBLIC.RAW_DATA")
            uploaded_at, uploaded = datetime.now(UTC), time.perf_counter()
            put = s3.put_object(Bucket=bucket, Key=key, Body=body)
            uri = f"s3://{bucket}/{key}"
            seen = wait(lambda uri=uri: count("SELECT COUNT(*) FROM WIDF_DEMO_DB.PUBLIC.RAW_DATA WHERE SOURCE_FILE = %s", uri) >= 20, key)
            if 0 < i <= files:
                statements = stack.statements_of(FileRef(bucket, key, version_id=put["VersionId"]))
                first, committed = statements[0]["START_TIME"], statements[-1]["END_TIME"]
                spans.append(
                    {
                        "row": seen - uploaded,
                        "delivery": (first - uploaded_at).total_seconds(),
                        "load": (committed - first).total_seconds(),
                    }
                )
            elif i > files:
                summary.append(
                    wait(
                        lambda total=total: count("SELECT SUM(TOTAL_EVENTS) FROM WIDF_DEMO_DB.PUBLIC.DAILY_SUMMARY") >= total + 20,
                        "summary",
                        0.1,
                    )
                    - uploaded
                )

    def percentile(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)

    rows = [s["row"] for s in spans]
    return {
        "latency_files": len(spans),
        "latency_p50_s": percentile(rows, 0.5),
        "latency_p95_s": percentile(rows, 0.95),
        "latency_delivery_p50_s": percentile([s["delivery"] for s in spans], 0.5),
        "latency_load_p50_s": percentile([s["load"] for s in spans], 0.5),
        "summary_latency_files": len(summary),
        "summary_latency_p50_s": percentile(summary, 0.5),
    }


def measure_cli() -> dict[str, Any]:
    """What every command pays to start: `widf-loader --help` and `widf-loader config`, each the median of five
    fresh processes (against a state directory with no stack, so `config` reads nothing but its settings)."""
    with tempfile.TemporaryDirectory() as nowhere:

        def seconds(*args: str) -> float:
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "widf_cli", "--state-dir", nowhere, *args], check=True, capture_output=True)
                runs.append(time.perf_counter() - started)
            return round(statistics.median(runs), 3)

        return {"cli_help_s": seconds("--help"), "cli_config_s": seconds("config")}


# -- cold start and artefact -----------------------------------------------------

# The artefact the template deploys (connector 4.x), and the same function built with connector 5.x,
# which needs an Amazon Linux 2023 runtime (infra/package.py's CONNECTORS): measured side by side.
ARTEFACTS = {"4": ROOT / "dist" / "widf-loader-lambda.zip", "5": ROOT / "dist" / "widf-loader-lambda-connector5.zip"}
# Lambda's /var/task is read-only, so Python caches no bytecode there: every run here imports as a
# fresh container does, from the unpacked artefact alone (-S -s: no site-packages) writing nothing (-B).
ARTEFACT_PYTHON = (sys.executable, "-S", "-s", "-B")


def unpacked_artefact(into: Path, connector: str = "4") -> Path:
    """The artefact, unpacked as Lambda's /var/task. Packaged first: the zip is rebuilt only when the lock,
    the packaging script or a shipped source changed, so a stale zip is never measured."""
    subprocess.run(
        [sys.executable, str(ROOT / "infra" / "package.py"), "--connector", connector], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    task = into / f"task-connector{connector}"
    with zipfile.ZipFile(ARTEFACTS[connector]) as archive:
        archive.extractall(task)
    return task


def artefact_env(task: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONPATH": str(task), "PYTHONDONTWRITEBYTECODE": "1"}


def measure_artefact() -> dict[str, Any]:
    """Both artefacts' sizes, and the handler's import from each, in turns."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as workdir:
        tasks = {connector: unpacked_artefact(Path(workdir), connector) for connector in ARTEFACTS}
        imports: dict[str, list[float]] = {connector: [] for connector in ARTEFACTS}
        for _ in range(max(REPEAT, 5)):
            for connector, task in tasks.items():
                done = subprocess.run(
                    [
                        *ARTEFACT_PYTHON,
                        "-c",
                        "import time; t = time.perf_counter(); import widf_loader.handler; print(time.perf_counter() - t)",
                    ],
                    env=artefact_env(task),
                    cwd=task,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                imports[connector].append(float(done.stdout))
    for connector, artefact in ARTEFACTS.items():
        suffix = "" if connector == "4" else "_connector5"
        with zipfile.ZipFile(artefact) as archive:
            unpacked = sum(i.file_size for i in archive.infolist())
        results |= {
            f"artefact{suffix}_mb": round(unpacked / MB, 1),
            f"artefact{suffix}_zip_mb": round(artefact.stat().st_size / MB, 1),
            f"handler{suffix}_cold_import_s": round(statistics.median(imports[connector]), 3),
        }
    return results


# A Lambda container's first invocation, in a fresh interpreter from the unpacked artefact: import the
# handler, then call it with the event Lambda delivers (an SQS batch whose message is the S3 notification,
# as infra/template.yaml wires the function) and a context like Lambda's. Seconds from start to answer.
COLD_START = """
import time
started = time.perf_counter()
import json, os, sys
import widf_loader.handler as handler
imported = time.perf_counter()

class Context:
    function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
    memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
    invoked_function_arn = f"arn:aws:lambda:{os.environ['AWS_REGION']}:123456789012:function:{function_name}"
    aws_request_id = "bench-cold-start"
    log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
    log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
    deadline = time.time() + 300

    def get_remaining_time_in_millis(self):
        return max(0, int((self.deadline - time.time()) * 1000))

answer = handler.lambda_handler(json.loads(sys.argv[1]), Context())
print(json.dumps({"seconds": time.perf_counter() - started, "import_s": imported - started, "answer": answer}))
"""


def sqs_event(*refs: FileRef) -> dict[str, Any]:
    """What Lambda's SQS poller hands the function: S3's notification of each file as a message body."""
    from widf_local.runner import sqs_event as lambda_sqs_event
    from widf_ops.queues import s3_notification

    messages = []
    for i, ref in enumerate(refs):
        sent = replace(
            ref,
            event_name="ObjectCreated:Put",
            event_time=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            principal="AWS:AIDABENCH",
            source_ip="198.51.100.7",
            sequencer="0055",
        )
        messages.append(
            {
                "MessageId": f"bench-message-{i}",
                "ReceiptHandle": f"bench-receipt-{i}",
                "Body": s3_notification(sent),
                "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
                "MD5OfBody": "",
            }
        )
    return lambda_sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:widf-bench")


def cold_start_ours(stack: LocalStack, task: Path, *refs: FileRef) -> dict[str, Any]:
    env = (
        stack.function_env()
        | artefact_env(task)
        | {
            "TZ": ":UTC",
            "AWS_LAMBDA_FUNCTION_NAME": "widf-loader-bench",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/widf-loader-bench",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        }
    )
    before = stack.statements()
    done = subprocess.run(
        [*ARTEFACT_PYTHON, "-c", COLD_START, json.dumps(sqs_event(*refs))], check=False, env=env, cwd=task, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold start failed: {done.stderr[-2000:]}")
    run = json.loads(done.stdout.strip().splitlines()[-1])
    if run["answer"] != {"batchItemFailures": []}:
        raise RuntimeError(f"cold start did not load {[r.uri for r in refs]}: {run['answer']}; log: {done.stdout[-2000:]}")
    return run | {"statements": stack.statements() - before}


def cold_start_snowpark(stack: LocalStack, ref: FileRef) -> float:
    script = (ROOT / "bench" / "snowpark_handler.py").read_text()
    env = stack.function_env() | {"PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([str(COMPARISON_PYTHON), "-c", script, ref.bucket, ref.key], check=False, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1][:300])
    return float(done.stdout.strip().splitlines()[-1])


def measure_cold_start(stack: LocalStack, workdir: Path) -> dict[str, Any]:
    """Fresh interpreter: import the handler, connect with WIDF, load a 20-record file (median).

    Ours runs from the unpacked artefact, as shipped; the Snowpark + pandas handler from its venv
    (bytecode compiled at install). The two take turns, so load from elsewhere falls on both alike."""
    sample = workdir / "cold.json"
    sample.write_bytes(orjson.dumps(samples.sample_events(20)))
    tasks = {connector: unpacked_artefact(workdir, connector) for connector in ARTEFACTS}
    ours: list[dict[str, Any]] = []
    ours_5: list[dict[str, Any]] = []
    snowpark: list[float] = []
    result: dict[str, Any] = {}
    if not COMPARISON_PYTHON.exists():
        result["cold_start_snowpark_error"] = "bench/.venv-snowpark is missing: `make bench` creates it"
    # .jsonl: no notification rule of the template matches it, so the stack's own function never loads these
    # files (nor takes CPU) before the run being measured does.
    for i in range(max(REPEAT, 5)):
        for connector, runs in (("4", ours), ("5", ours_5)):
            key = f"incoming/bench/cold-{connector}-{i}.jsonl"
            runs.append(cold_start_ours(stack, tasks[connector], stack.upload(key, sample)))
            if loaded(stack, key) != 1:
                raise RuntimeError(f"the cold start did not load {key}")
        if COMPARISON_PYTHON.exists() and "cold_start_snowpark_error" not in result:
            try:
                snowpark.append(cold_start_snowpark(stack, stack.upload(f"incoming/bench/cold-snowpark-{i}.jsonl", sample)))
            except RuntimeError as e:
                result["cold_start_snowpark_error"] = str(e)
    # One SQS batch of ten small files, as the template's batch size hands them to one invocation: its
    # statements, and its warehouse time (they carry one tag, naming all ten files).
    small = workdir / "batch.ndjson"
    small.write_bytes(event_lines(SMALL_FILE_BYTES, bad_every=0))
    batch = [stack.upload(f"incoming/bench/batch-{i}.jsonl", small) for i in range(10)]
    result["statements_per_batch_of_10_small_files"] = cold_start_ours(stack, tasks["4"], *batch)["statements"]
    result["warehouse_seconds_per_batch_of_10_small_files"] = warehouse_seconds(stack, batch[0])
    result |= {
        "cold_start_s": round(statistics.median(r["seconds"] for r in ours), 3),
        "cold_start_import_s": round(statistics.median(r["import_s"] for r in ours), 3),
        "cold_start_statements": ours[0]["statements"],
        "cold_start_connector5_s": round(statistics.median(r["seconds"] for r in ours_5), 3),
        "cold_start_connector5_import_s": round(statistics.median(r["import_s"] for r in ours_5), 3),
    }
    if snowpark:
        result["cold_start_snowpark_s"] = round(statistics.median(snowpark), 3)
        result["cold_start_vs_snowpark"] = round(result["cold_start_s"] / result["cold_start_snowpark_s"], 3)
        result["cold_start_connector5_vs_snowpark"] = round(result["cold_start_connector5_s"] / result["cold_start_snowpark_s"], 3)
    return result


# -- report ------------------------------------------------------------------------


SECTIONS = ("pipeline", "artefact", "cli", "latency", "cold_start", "end_to_end", "scale_out", "memory")


def main() -> int:
    only = [name.strip() for name in os.environ.get("BENCH_ONLY", "").split(",") if name.strip()] or list(SECTIONS)
    if unknown := set(only) - set(SECTIONS):
        print(f"BENCH_ONLY: unknown {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    results: dict[str, Any] = {"machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]}}
    if "pipeline" in only:
        print("pipeline vs JSON floor ...", flush=True)
        results |= measure_pipeline()
    if "artefact" in only:
        print("artefact and cold import ...", flush=True)
        results |= measure_artefact()
    if "cli" in only:
        print("command start-up ...", flush=True)
        results |= measure_cli()
    stacked = [
        # Latency and cold start first, while RAW_DATA is small: the local engine scans what Snowflake would
        # prune, and recomputes DAILY_SUMMARY in full (on the same two cores) where Snowflake refreshes it
        # incrementally on its own warehouse.
        ("latency", "upload to queryable row, and to DAILY_SUMMARY ...", measure_latency),
        ("cold_start", "cold start, statements per batch ...", measure_cold_start),
        ("end_to_end", "end to end vs naive, statements per file ...", measure_end_to_end),
        ("scale_out", "scale-out with 1, 2 and 4 pollers ...", measure_scale_out),
        ("memory", "memory, small vs large file ...", measure_memory),
    ]
    if any(name in only for name, _, _ in stacked):
        stack = LocalStack()
        try:
            with tempfile.TemporaryDirectory() as workdir:
                for name, title, measure in stacked:
                    if name in only:
                        print(title, flush=True)
                        results |= measure(stack, Path(workdir))
        finally:
            stack.close()
    results |= costs.estimate(results)  # credits per day, from the warehouse time just measured
    if len(only) == len(SECTIONS):
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {RESULTS.relative_to(ROOT)} and {report.write_page(RESULTS).relative_to(ROOT)}", flush=True)
    else:
        print(json.dumps(results, indent=2))
    print_table(results)
    return 0


def print_table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="widf-loader benchmark (ratios measured side by side in this run)", title_justify="left")
    for column in ("measure", "value", "target", "met"):
        table.add_column(column)
    # The rows of docs/performance.md's table too (bench/report.py), so the page shows what this shows.
    for row in report.ROWS:
        table.add_row(row.measure, row.figure(results), row.target, row.verdict(results))
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
