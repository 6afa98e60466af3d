"""`backfill` and `replay-dlq`: files the events missed, and messages the function gave up on."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.filesize import decimal

from widf_cli.aws import aws_errors, aws_side, deployment
from widf_cli.common import admin_connection, app, console, fail, friendly_errors, names, print_table
from widf_loader.events import FileRef
from widf_loader.outcomes import LoadStatus
from widf_ops.backfill import (
    Follow,
    Inventory,
    Ledger,
    Outcome,
    Unfinished,
    parse_s3_url,
    parse_since,
    read_landing_rules,
    run_backfill,
    send_to_queue,
    take_inventory,
)
from widf_ops.redrive import peek, replay_dead_letters

FIRST_SHOWN = 10  # keys listed by a dry run, reasons listed by a summary


def queue_arn(sqs: Any, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def max_receive_count(sqs: Any, queue_url: str) -> int | None:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
    policy = attributes.get("RedrivePolicy")
    return int(json.loads(policy)["maxReceiveCount"]) if policy else None


def show_inventory(inventory: Inventory, since: str | None) -> None:
    settled = inventory.settled_by_status
    rows: list[tuple[str, object]] = [
        ("objects listed (current versions)", inventory.listed),
        ("not for the function (the bucket's notification rules)", inventory.not_landing),
    ]
    if since:
        rows.append((f"modified before {since}", inventory.older))
    rows += [
        ("already loaded", settled[LoadStatus.LOADED]),
        ("already rejected", settled[LoadStatus.REJECTED]),
        ("to send", f"{len(inventory.to_send)} ({decimal(inventory.bytes_to_send)})"),
    ]
    print_table(["", inventory.location.url], rows)


def show_dry_run(inventory: Inventory) -> None:
    for ref in inventory.to_send[:FIRST_SHOWN]:
        console.print(f"  {ref.key}  ({decimal(ref.size or 0)}, version {ref.version_id or 'none'})", highlight=False, markup=False)
    if len(inventory.to_send) > FIRST_SHOWN:
        console.print(f"  ... and {len(inventory.to_send) - FIRST_SHOWN} more")
    console.print(
        f"Dry run: would send {len(inventory.to_send)} files ({decimal(inventory.bytes_to_send)}) to the function's queue; sent nothing."
    )


def show_summary(outcomes: Sequence[Outcome], seconds: float) -> None:
    by_status = Counter(o.status for o in outcomes)
    rows = sum(o.rows_loaded for o in outcomes if o.status is LoadStatus.LOADED)
    console.print(
        f"Backfill finished in {seconds:.1f} s: [green]{by_status[LoadStatus.LOADED]} loaded[/] ({rows} rows), "
        f"{by_status[LoadStatus.REJECTED]} rejected, {by_status[LoadStatus.SKIPPED]} skipped (object gone), {by_status[LoadStatus.FAILED]} failed, "
        f"{sum(by_status[u] for u in Unfinished)} without an outcome.",
        highlight=False,
    )
    troubled = [o for o in outcomes if o.status in (LoadStatus.REJECTED, LoadStatus.FAILED)][:FIRST_SHOWN]
    if troubled:
        print_table(["file", "status", "reason"], [(o.ref.key, o.status, o.reason) for o in troubled], title="First reasons")


def nothing_to_send(inventory: Inventory) -> str:
    if inventory.settled:
        return f"Nothing to send: all {len(inventory.settled)} files for the function under {inventory.location.url} are already loaded (or rejected) in LOAD_HISTORY."
    return f"Nothing to send: no object under {inventory.location.url} is one the function loads (see the counts above)."


def tally_text(counts: Counter) -> str:
    return f"sent {counts['SENT']}: loaded {counts[LoadStatus.LOADED]}, rejected {counts[LoadStatus.REJECTED]}, failed {counts[LoadStatus.FAILED]}"


@app.command("backfill")
@friendly_errors
@aws_errors
def backfill(
    url: Annotated[str, typer.Argument(help="s3://BUCKET/PREFIX: the objects to load (the landing bucket, or one you name)")],
    since: Annotated[
        str | None,
        typer.Option(
            help="only objects modified since: 2024-05-01, 2024-05-01T12:00:00Z, or a duration back: 12h, 7d (a bare number is minutes)"
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be sent, and send nothing")] = False,
    concurrency: Annotated[int, typer.Option(min=1, max=1000, help="files sent and not yet finished, at most")] = 100,
    stall_timeout: Annotated[int, typer.Option(min=10, max=86400, help="stop following when no file finished for this many seconds")] = 600,
) -> None:
    """Load objects already in S3 through the function, exactly once; re-running sends only what is not loaded yet.

    Example: widf-loader backfill s3://widf-loader-landing-123456789012/incoming/2024/ --since 7d --dry-run
    """
    location = parse_s3_url(url)
    since_moment = parse_since(since) if since else None
    side = aws_side()
    where = deployment(side)
    s3, sqs = side.client("s3"), side.client("sqs")
    rules = read_landing_rules(s3, where.bucket, queue_arn(sqs, where.queue_url))
    if location.bucket != where.bucket:
        console.print(
            f"[yellow]note[/]: s3://{location.bucket} is not the landing bucket (s3://{where.bucket}); the function's role must be allowed to read it."
        )
    n = names()
    with admin_connection() as connection:
        ledger = Ledger(connection, f"{n.database}.{n.schema}.LOAD_HISTORY")
        with console.status(f"Listing {location.url} and checking LOAD_HISTORY..."):
            inventory = take_inventory(s3, location, rules, since_moment, ledger)
        show_inventory(inventory, since)
        if dry_run:
            show_dry_run(inventory)
            return
        if not inventory.to_send:
            console.print(nothing_to_send(inventory), highlight=False)
            return
        principal = f"widf-loader-backfill:{side.client('sts').get_caller_identity()['Arn']}"
        follow = Follow(concurrency=concurrency, stall_seconds=stall_timeout, failures_until_dead=max_receive_count(sqs, where.queue_url))
        started = time.monotonic()
        try:
            outcomes = follow_with_progress(inventory, lambda refs: send_to_queue(sqs, where.queue_url, refs, principal), ledger, follow)
        except KeyboardInterrupt:
            fail("Interrupted: the files already sent still load; run the same backfill again to send the rest.", 130)
    show_summary(outcomes, time.monotonic() - started)
    if unfinished := [o for o in outcomes if o.status in (LoadStatus.FAILED, *Unfinished)]:
        fail(
            f"{len(unfinished)} files did not load: `widf-loader aws logs` shows why; after a fix, `widf-loader replay-dlq` "
            "returns failed messages, and running this backfill again sends only what is still not loaded."
        )


def follow_with_progress(inventory: Inventory, send: Any, ledger: Ledger, follow: Follow) -> list[Outcome]:
    counts: Counter = Counter()
    done_bytes = 0
    from widf_cli.progress import progress_bar  # rich's progress display costs a quarter second to import

    with progress_bar() as progress:
        task = progress.add_task(tally_text(counts), total=len(inventory.to_send), bytes=0, total_bytes=inventory.bytes_to_send)

        def sent(refs: Sequence[FileRef]) -> None:
            counts["SENT"] += len(refs)
            progress.update(task, description=tally_text(counts))

        def finished(outcome: Outcome) -> None:
            nonlocal done_bytes
            counts[outcome.status] += 1
            done_bytes += outcome.ref.size or 0
            progress.update(task, advance=1, bytes=done_bytes, description=tally_text(counts))

        return run_backfill(inventory, send, ledger, follow, on_sent=sent, on_outcome=finished)


@app.command("replay-dlq")
@friendly_errors
@aws_errors
def replay_dlq(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="count the messages and show the files the first ones name; move nothing")
    ] = False,
    max_messages: Annotated[int | None, typer.Option("--max", min=1, help="move at most this many messages")] = None,
) -> None:
    """Move the dead-letter queue's messages back to the function's queue (after fixing what made them fail).

    Example: widf-loader replay-dlq --dry-run
    """
    side = aws_side()
    where = deployment(side)
    sqs = side.client("sqs")
    if dry_run:
        seen = peek(sqs, where.dlq_url)
        console.print(f"The dead-letter queue holds about {seen.waiting} messages ({seen.in_flight} in flight).")
        if seen.files:
            console.print("The first name:")
        for uri in seen.files:
            console.print(f"  {uri}", highlight=False, markup=False)
        console.print("Dry run: moved nothing.")
        return
    with console.status("Moving messages from the dead-letter queue...") as status:
        moved = 0

        def count(n: int) -> None:
            nonlocal moved
            moved += n
            status.update(f"Moving messages from the dead-letter queue... {moved} moved")

        replay = replay_dead_letters(sqs, where.dlq_url, where.queue_url, max_messages, on_moved=count)
    console.print(
        f"[green]✓[/] Moved {replay.moved} message{'' if replay.moved == 1 else 's'} from the dead-letter queue to the function's queue; `widf-loader aws logs` shows their loads."
    )
    if replay.refused:
        fail(f"The function's queue refused {len(replay.refused)} messages (they stay in the dead-letter queue): {replay.refused[0]}")
