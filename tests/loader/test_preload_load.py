"""Contracts, quarantine and gates through the real function, and the dry run that predicts them."""

from __future__ import annotations

import re
from decimal import Decimal

import orjson
from test_preload import with_bad_purchases

from helpers import TESTS
from widf_cli.local_stack import admin_connection
from widf_loader.events import FileRef, file_id
from widf_local import aws, samples
from widf_ops.stack_outputs import wait_for

DB = "WIDF_DEMO_DB.PUBLIC"


def upload(stack, loader, key: str, events: list) -> FileRef:
    response = aws.client("s3", stack.info.aws_endpoint).put_object(Bucket=loader.resources.bucket, Key=key, Body=orjson.dumps(events))
    return FileRef(bucket=loader.resources.bucket, key=key, version_id=response["VersionId"])


def outcome(stack, ref: FileRef) -> tuple | None:
    def settled():
        with admin_connection(stack.info) as connection:
            return (
                connection.cursor()
                .execute(
                    f"SELECT STATUS, ROWS_LOADED, ROWS_REJECTED, REASON, LOAD_ID FROM {DB}.LOAD_HISTORY WHERE FILE_ID = %s", (file_id(ref),)
                )
                .fetchone()
            )

    return wait_for(settled, seconds=90)


def query(stack, sql: str, params: tuple = ()) -> list[tuple]:
    with admin_connection(stack.info) as connection:
        return connection.cursor().execute(sql, params).fetchall()


def test_bad_records_are_quarantined_and_the_summary_counts_only_good_ones(stack, loader):
    events, negative, missing = with_bad_purchases(40)
    result = outcome(stack, upload(stack, loader, "incoming/contracts/mixed.json", events))
    assert result is not None
    status, loaded, rejected, _, load_id = result
    assert (status, loaded, rejected) == ("LOADED", 38, 2)
    quarantined = query(
        stack, f"SELECT RECORD_INDEX, ROUTE, REASON, RAW_RECORD FROM {DB}.REJECTED_RECORDS WHERE LOAD_ID = %s ORDER BY 1", (load_id,)
    )
    assert [(i, route) for i, route, _, _ in quarantined] == sorted([(negative, "purchases"), (missing, "purchases")])
    assert all("amount" in reason for _, _, reason, _ in quarantined)
    assert {orjson.loads(raw)["event_id"] for *_, raw in quarantined} == {events[negative]["event_id"], events[missing]["event_id"]}

    query(stack, f"ALTER DYNAMIC TABLE {DB}.DAILY_SUMMARY REFRESH")
    [(events_counted, amount)] = query(
        stack, f"SELECT SUM(TOTAL_EVENTS), SUM(CASE WHEN ACTION = 'purchase' THEN TOTAL_AMOUNT END) FROM {DB}.DAILY_SUMMARY"
    )
    good = [e for i, e in enumerate(events) if i not in (negative, missing)]
    assert events_counted == len(good)
    assert Decimal(str(amount)) == sum(Decimal(str(e["amount"])) for e in good if e["action"] == "purchase")


def test_a_file_over_the_gate_loads_nothing_and_is_quarantined_whole(stack, loader):
    events = samples.sample_events(10, seed=21)
    for index in (1, 4, 6):
        del events[index]["user_id"]
    key = "incoming/contracts/mostly-bad.json"
    result = outcome(stack, upload(stack, loader, key, events))
    assert result is not None
    status, loaded, rejected, reason, _ = result
    assert (status, loaded, rejected) == ("REJECTED", 0, 3)
    assert "3 of 10 records (30%) were rejected, over the 10% gate" in reason
    assert query(stack, f"SELECT COUNT(*) FROM {DB}.RAW_DATA WHERE SOURCE_KEY = %s", (key,)) == [(0,)]
    copy = aws.client("s3", stack.info.aws_endpoint).get_object(Bucket=loader.resources.bucket, Key=f"quarantine/{key}")
    assert orjson.loads(copy["Body"].read()) == events


def test_a_gated_files_bad_records_are_in_rejected_records_once_however_often_it_arrives(stack, loader):
    events = samples.sample_events(10, seed=22)
    for index in (2, 7):
        del events[index]["user_id"]
    key = "incoming/contracts/gated-twice.json"
    ref = upload(stack, loader, key, events)
    status, loaded, rejected, reason, load_id = outcome(stack, ref)
    assert (status, loaded, rejected) == ("REJECTED", 0, 2) and "over the 10% gate" in reason
    quarantined = query(
        stack,
        f"SELECT SOURCE_FILE, RECORD_INDEX, ROUTE, REASON, RAW_RECORD FROM {DB}.REJECTED_RECORDS WHERE LOAD_ID = %s ORDER BY 2",
        (load_id,),
    )
    routes = {i: "purchases" if events[i]["action"] == "purchase" else "events" for i in (2, 7)}
    assert [(i, route) for _, i, route, _, _ in quarantined] == sorted(routes.items())
    assert all('"user_id" is a required property' in why for *_, why, _ in quarantined)
    assert [orjson.loads(raw) for *_, raw in quarantined] == [events[2], events[7]]

    from helpers import notification

    aws.client("sqs", stack.info.aws_endpoint).send_message(QueueUrl=loader.resources.queue_url, MessageBody=notification(ref))
    duplicate = wait_for(
        lambda: (
            query(stack, f"SELECT REASON FROM {DB}.LOAD_HISTORY WHERE FILE_ID = %s AND STATUS = 'SKIPPED_DUPLICATE'", (file_id(ref),))
            or None
        )
    )
    assert duplicate and load_id in duplicate[0][0]
    assert query(stack, f"SELECT COUNT(*) FROM {DB}.REJECTED_RECORDS WHERE SOURCE_FILE = %s", (ref.uri,)) == [(2,)]


def test_concurrent_deliveries_of_a_gated_file_write_its_rejections_once(stack, loader, as_function):
    import threading

    from helpers import UNNOTIFIED, put, shipped_pipeline
    from widf_loader.config import LoaderSettings
    from widf_loader.warehouse import Warehouse

    events = samples.sample_events(300, seed=23)
    bad = list(range(0, 300, 7))  # 43 of 300, over the gate
    for index in bad:
        events[index]["timestamp"] = "not a time"
    settings = LoaderSettings(**{**LoaderSettings.from_env().__dict__, "batch_rows": 20})  # many statements, so the runs overlap
    s3 = aws.client(
        "s3",
        stack.info.aws_endpoint,
        **{k.lower(): as_function[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")},
    )
    ref = put(stack, loader, f"incoming/contracts/gated-concurrent{UNNOTIFIED}", orjson.dumps(events))
    start, results = threading.Barrier(2), []

    def deliver(warehouse: Warehouse) -> None:
        start.wait()
        results.append(shipped_pipeline().load_file(ref, s3=s3, warehouse=warehouse, settings=settings))

    threads = [threading.Thread(target=deliver, args=(Warehouse(settings),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(r.status for r in results) == ["REJECTED", "SKIPPED_DUPLICATE"]
    [rejected] = [r for r in results if r.status == "REJECTED"]
    assert rejected.rows_rejected == len(bad)
    indices = query(stack, f"SELECT RECORD_INDEX FROM {DB}.REJECTED_RECORDS WHERE SOURCE_KEY = %s ORDER BY 1", (ref.key,))
    assert [i for (i,) in indices] == bad
    assert query(stack, f"SELECT COUNT(*) FROM {DB}.RAW_DATA WHERE SOURCE_KEY = %s", (ref.key,)) == [(0,)]


def test_the_original_demos_file_loads_whole_and_daily_summary_agrees_with_raw_data(stack, loader):
    from rich.console import Console

    from widf_cli.demo_story import summary_matches

    fixture = TESTS / "fixtures" / "original_demo_events.json"
    events = orjson.loads(fixture.read_bytes())
    key = "incoming/original/sample_events.json"
    assert "file would load: 20 of 20 records" in stack.cli("load", str(fixture), "--key", key, "--dry-run").stdout
    result = stack.cli("load", str(fixture), "--key", key)
    assert "LOADED" in result.stdout and "REJECTED_RECORDS" not in result.stdout, result.stdout
    rows = query(stack, f"SELECT PAYLOAD FROM {DB}.RAW_DATA WHERE SOURCE_KEY = %s ORDER BY RECORD_INDEX", (key,))
    assert [orjson.loads(p) for (p,) in rows] == events
    purchases = sum(Decimal(str(e["amount"])) for e in events if e["action"] == "purchase")
    assert purchases == Decimal("1613.49")
    [(raw_amount,)] = query(stack, f"SELECT SUM(PAYLOAD:amount::NUMBER(18, 2)) FROM {DB}.RAW_DATA WHERE SOURCE_KEY = %s", (key,))
    assert Decimal(str(raw_amount)) == purchases

    from widf_ops import admin
    from widf_ops.admin import SnowflakeNames

    with admin_connection(stack.info) as connection:
        admin.refresh_daily_summary(connection, SnowflakeNames())
        columns, summary = admin.daily_summary(connection, SnowflakeNames())
        assert summary_matches(connection, SnowflakeNames(), columns, summary, Console(quiet=True))
    [(summary_amount,)] = query(stack, f"SELECT SUM(TOTAL_AMOUNT) FROM {DB}.DAILY_SUMMARY WHERE ACTION = 'purchase'")
    [(all_purchases,)] = query(
        stack, f"SELECT SUM(PAYLOAD:amount::NUMBER(18, 2)) FROM {DB}.RAW_DATA WHERE PAYLOAD:action::STRING = 'purchase'"
    )
    assert Decimal(str(summary_amount)) == Decimal(str(all_purchases)) >= purchases


def test_the_load_commands_output_lists_the_records_snow_query_shows(stack, loader, tmp_path):
    events = samples.sample_events(10, seed=24)
    for index in (3, 6):
        events[index]["currency"] = "dollars"
    sample = tmp_path / "bad-currency.json"
    sample.write_bytes(orjson.dumps(events))
    dry = stack.cli("load", str(sample), "--key", "incoming/contracts/bad-currency.json", "--dry-run")
    real = stack.cli("load", str(sample), "--key", "incoming/contracts/bad-currency.json")
    listed = orjson.loads(stack.cli("snow", "query", "--rejected", "--json", "--limit", "1000").stdout)
    mine = [r for r in listed if r["SOURCE_FILE"].endswith("/incoming/contracts/bad-currency.json")]
    assert sorted(r["RECORD_INDEX"] for r in mine) == [3, 6]
    for output in (dry.stdout, real.stdout):
        assert "(2 records)" in output
        for r in mine:
            assert re.search(rf"│ {r['RECORD_INDEX']} +│ {r['ROUTE']} +│ contract", output), output
    assert all("currency: " in r["REASON"] for r in mine)


def test_the_dry_run_predicts_what_the_load_does(stack, loader, tmp_path):
    events, _, _ = with_bad_purchases(40)
    sample = tmp_path / "predict.json"
    sample.write_bytes(orjson.dumps(events))
    dry = stack.cli("load", str(sample), "--key", "incoming/contracts/predict.json", "--dry-run")
    predicted = re.search(r"file would load: (\d+) of (\d+) records", dry.stdout)
    assert predicted, dry.stdout
    real = stack.cli("load", str(sample), "--key", "incoming/contracts/predict.json")
    assert "LOADED" in real.stdout and "REJECTED_RECORDS" in real.stdout
    [(loaded, rejected)] = query(
        stack,
        f"SELECT ROWS_LOADED, ROWS_REJECTED FROM {DB}.LOAD_HISTORY WHERE SOURCE_KEY = %s AND STATUS = 'LOADED'",
        ("incoming/contracts/predict.json",),
    )
    assert (loaded, loaded + rejected) == (int(predicted.group(1)), int(predicted.group(2)))


def test_a_configured_route_table_is_created_by_setup_granted_and_loaded_with_typed_columns(stack, loader, as_function):
    from helpers import UNNOTIFIED, put
    from widf_loader.config import LoaderSettings
    from widf_loader.pipeline import Pipeline
    from widf_loader.pipeline_config import read_pipeline_config
    from widf_loader.warehouse import Warehouse

    typed = TESTS / "configs" / "typed_purchases.toml"
    stack.cli("snow", "setup", env={"WIDF_PIPELINE_CONFIG": str(typed)})  # creates PURCHASES, grants the loader INSERT on it
    events = samples.sample_events(15, seed=31)
    ref = put(stack, loader, f"incoming/typed/events{UNNOTIFIED}", orjson.dumps(events))
    settings = LoaderSettings.from_env()
    outcome = Pipeline(read_pipeline_config(typed)).load_file(
        ref, s3=aws.client("s3", stack.info.aws_endpoint), warehouse=Warehouse(settings), settings=settings
    )
    purchases = [e for e in events if e["action"] == "purchase"]
    assert (outcome.status, outcome.rows_loaded) == ("LOADED", len(events))
    rows = query(
        stack,
        f"SELECT USER_ID, AMOUNT, OS, PAYLOAD:region::STRING, LOADED_BY FROM {DB}.PURCHASES WHERE SOURCE_KEY = %s ORDER BY RECORD_INDEX",
        (ref.key,),
    )
    assert [(u, Decimal(str(a))) for u, a, *_ in rows] == [(e["user_id"], Decimal(str(e["amount"]))) for e in purchases]
    assert {r[2] for r in rows} <= {"linux", "ios", "android"} and {r[3] for r in rows} <= {"emea", "amer"}
    assert {r[4] for r in rows} == {"LAMBDA_LOADER_BOT"}
    assert query(stack, f"SELECT COUNT(*) FROM {DB}.RAW_DATA WHERE SOURCE_KEY = %s", (ref.key,)) == [(len(events) - len(purchases),)]


def test_a_key_written_twice_in_a_record_loads_with_its_last_value(stack, loader):
    """As orjson reads it, and as Snowflake's PARSE_JSON(..., 'd') would: never a refused batch, never the first value."""
    lines = [
        b'{"event_id": "evt-duplicate-keys-0", "user_id": "u1", "action": "view", "timestamp": "2026-11-27T10:00:00Z", "page": "/a"}',
        b'{"event_id":"evt-duplicate-keys-1","user_id":"u1","action":"purchase","timestamp":"2026-11-27T10:00:00Z","amount":1.50,"amount":2.25}',
    ]
    key = "incoming/duplicate-keys/records.ndjson"
    response = aws.client("s3", stack.info.aws_endpoint).put_object(Bucket=loader.resources.bucket, Key=key, Body=b"\n".join(lines) + b"\n")
    result = outcome(stack, FileRef(bucket=loader.resources.bucket, key=key, version_id=response["VersionId"]))
    assert result is not None and result[:3] == ("LOADED", 2, 0), result
    rows = query(
        stack,
        f"SELECT RECORD_INDEX, PAYLOAD:page::STRING, PAYLOAD:amount::FLOAT FROM {DB}.RAW_DATA WHERE SOURCE_FILE LIKE %s ORDER BY 1",
        (f"%{key}",),
    )
    assert rows == [(0, "/a", None), (1, None, 2.25)]
