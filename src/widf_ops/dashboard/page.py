"""The dashboard as one HTML page: CSS and an SVG chart inline, no script, nothing fetched from anywhere.

Every value from the warehouse (file names, reasons) is user data: it is
escaped here, in `text()`, and nowhere is markup built from it otherwise.
"""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import datetime

from widf_loader.outcomes import FINAL_STATUSES, LoadStatus
from widf_ops.dashboard.data import DailyFigure, Load, Reject, Snapshot

PALETTE = ("#2563eb", "#16a34a", "#f59e0b", "#db2777", "#7c3aed", "#0891b2", "#dc2626", "#65a30d")
STATUS_CLASSES: dict[str, str] = {LoadStatus.LOADED: "ok", LoadStatus.REJECTED: "warn", LoadStatus.FAILED: "bad"}
CHART_DAYS = 7

STYLE = """
:root { --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --card:#fff; --bg:#f1f5f9; --ok:#15803d; --warn:#b45309; --bad:#b91c1c; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color:var(--ink); background:var(--bg); }
header { background:#0f172a; color:#fff; padding:18px 32px; display:flex; align-items:baseline; gap:16px; flex-wrap:wrap; }
header h1 { margin:0; font-size:20px; font-weight:650; letter-spacing:.2px; }
header .where { color:#93c5fd; font-weight:600; }
header .stamp { margin-left:auto; color:#cbd5e1; font-size:13px; }
main { padding:24px 32px 40px; display:grid; gap:20px; max-width:1280px; margin:0 auto; }
.tiles { display:grid; grid-template-columns:repeat(auto-fit, minmax(150px, 1fr)); gap:14px; }
.tile { background:var(--card); border:1px solid var(--line); border-radius:12px; padding:14px 16px; }
.tile .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.6px; }
.tile .value { font-size:28px; font-weight:700; margin-top:2px; font-variant-numeric:tabular-nums; }
.tile.alert { border-color:#fecaca; background:#fef2f2; } .tile.alert .value { color:var(--bad); }
.tile.calm .value { color:var(--ok); }
.card { background:var(--card); border:1px solid var(--line); border-radius:12px; padding:18px 20px; overflow:hidden; }
.card h2 { margin:0 0 12px; font-size:15px; font-weight:650; }
.card h2 small { color:var(--muted); font-weight:400; margin-left:6px; }
.grid2 { display:grid; grid-template-columns:minmax(0, 3fr) minmax(0, 2fr); gap:20px; }
@media (max-width: 1000px) { .grid2 { grid-template-columns:1fr; } }
table { width:100%; border-collapse:collapse; font-size:13px; }
th { text-align:left; color:var(--muted); font-weight:600; font-size:12px; border-bottom:1px solid var(--line); padding:6px 8px; }
td { border-bottom:1px solid var(--line); padding:7px 8px; vertical-align:top; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
#rejects td:nth-child(2) { width:38%; } #recent-loads td:nth-child(2) { width:32%; }
tr:last-child td { border-bottom:none; }
.file { font-weight:600; overflow-wrap:anywhere; } .path { color:var(--muted); font-size:12px; overflow-wrap:anywhere; }
.reason { color:#334155; word-break:break-word; }
.badge { display:inline-block; padding:1px 8px; border-radius:999px; font-size:11px; font-weight:700; letter-spacing:.4px; background:#e2e8f0; color:#334155; }
.badge.ok { background:#dcfce7; color:var(--ok); } .badge.warn { background:#ffedd5; color:var(--warn); } .badge.bad { background:#fee2e2; color:var(--bad); }
.empty { color:var(--muted); padding:12px 0; }
.problems { background:#fff7ed; border:1px solid #fed7aa; color:#9a3412; border-radius:12px; padding:12px 16px; }
footer { color:var(--muted); font-size:12px; text-align:center; padding-bottom:24px; }
"""


def text(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    return f"{moment:%H:%M:%S}" if moment.date() == now.date() else f"{moment:%Y-%m-%d %H:%M}"


def tile(label: str, value: object, element_id: str, tone: str = "") -> str:
    return f'<div class="tile {tone}" id="{element_id}"><div class="label">{text(label)}</div><div class="value">{text(value)}</div></div>'


def tiles(snapshot: Snapshot) -> str:
    outcomes = snapshot.outcomes
    loaded = outcomes.get(LoadStatus.LOADED, (0, 0, 0))
    rejected_files = outcomes.get(LoadStatus.REJECTED, (0, 0, 0))[0]
    failed = outcomes.get(LoadStatus.FAILED, (0, 0, 0))[0]
    rejected_records = sum(v[2] for status, v in outcomes.items() if status in FINAL_STATUSES)
    queues = snapshot.queues
    waiting = "?" if queues is None else queues.waiting + queues.in_flight
    dead = "?" if queues is None else queues.dead_letters
    return (
        '<section class="tiles">'
        + "".join(
            (
                tile("Files loaded", loaded[0], "files-loaded", "calm" if loaded[0] else ""),
                tile("Rows loaded", f"{loaded[1]:,}", "rows-loaded"),
                tile("Records rejected", rejected_records, "records-rejected"),
                tile("Files rejected", rejected_files, "files-rejected", "alert" if rejected_files else ""),
                tile("Failed attempts", failed, "failed-attempts", "alert" if failed else ""),
                tile("Queue", waiting, "queue-depth"),
                tile("Dead-letter queue", dead, "dlq-depth", "alert" if queues and queues.dead_letters else "calm"),
            )
        )
        + "</section>"
    )


def chart(figures: list[DailyFigure]) -> str:
    """DAILY_SUMMARY as horizontal bars, one per day, stacked by action: events per day, and what they were."""
    if not figures:
        return '<svg id="daily-summary-chart" role="img" aria-label="No daily summary yet" width="100%" height="60"><text x="0" y="35" fill="#64748b">No rows in DAILY_SUMMARY yet: it refreshes within its target lag.</text></svg>'
    days = sorted({f.load_date for f in figures})[-CHART_DAYS:]
    actions = sorted({f.action for f in figures})
    colour = {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(actions)}
    events: dict[tuple, int] = defaultdict(int)
    for f in figures:
        events[(f.load_date, f.action)] += f.total_events
    totals = {d: sum(events[(d, a)] for a in actions) for d in days}
    step = nice_ceiling(max(1, max(totals.values()) / 5))  # a few round ticks
    ticks = int(-(-max(totals.values()) // step)) or 1
    top = step * ticks
    left, width, row, bar, legend_height = 90, 900, 40, 24, 40  # drawn at about the size it is shown: text stays body-sized
    height = legend_height + row * len(days) + 30
    parts = [
        f'<svg id="daily-summary-chart" role="img" aria-label="Events per day by action" viewBox="0 0 {left + width + 90} {height}" width="100%">'
    ]
    x: float = left
    for action in actions:  # legend
        parts.append(
            f'<rect x="{x}" y="8" width="12" height="12" rx="3" fill="{colour[action]}"/><text x="{x + 17}" y="18.5" font-size="13" fill="#334155">{text(action)}</text>'
        )
        x += 30 + 7 * len(action)
    for tick in range(ticks + 1):  # grid
        value = step * tick
        gx = left + width * tick / ticks
        parts.append(f'<line x1="{gx:.1f}" y1="{legend_height}" x2="{gx:.1f}" y2="{height - 26}" stroke="#e2e8f0"/>')
        parts.append(f'<text x="{gx:.1f}" y="{height - 10}" font-size="11" fill="#64748b" text-anchor="middle">{value:,.0f}</text>')
    for index, day in enumerate(days):
        y = legend_height + index * row + (row - bar) / 2
        parts.append(
            f'<text x="{left - 10}" y="{y + bar / 2 + 4:.1f}" font-size="12" fill="#0f172a" text-anchor="end">{day:%a %d %b}</text>'
        )
        x = float(left)
        for action in actions:
            if not (count := events[(day, action)]):
                continue
            w = width * count / top
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{bar}" fill="{colour[action]}"><title>{text(action)}: {count:,} events</title></rect>'
            )
            x += w
        parts.append(
            f'<text x="{x + 8:.1f}" y="{y + bar / 2 + 4:.1f}" font-size="12" font-weight="600" fill="#0f172a">{totals[day]:,}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def nice_ceiling(value: float) -> int:
    """The next round number (1, 2 or 5 times a power of ten) at or above value, for the axis."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def badge(status: str) -> str:
    return f'<span class="badge {STATUS_CLASSES.get(status, "")}">{text(status)}</span>'


def file_cell(uri: str) -> str:
    """The file's name first (what people recognise), its folder under it, the whole URI on hover."""
    folder, _, name = uri.removeprefix("s3://").partition("/")[2].rpartition("/")
    return f'<div class="file" title="{text(uri)}">{text(name)}</div><div class="path">{text(folder + "/" if folder else "")}</div>'


def reason(load: Load) -> str:
    """The reason without the file's URI in front: the row already names the file."""
    return (load.reason or "").removeprefix(f"{load.source_file}: ")


def loads_table(loads: list[Load], now: datetime) -> str:
    if not loads:
        return '<div class="empty" id="recent-loads">No file has been loaded yet.</div>'
    rows = "".join(
        f'<tr data-file-id="{text(load.file_id)}" data-status="{text(load.status)}"><td>{when(load.finished_at, now)}</td><td>{file_cell(load.source_file)}</td>'
        f'<td>{badge(load.status)}</td><td class="num">{load.rows_loaded:,}</td><td class="num">{load.rows_rejected:,}</td>'
        f'<td class="reason">{text(reason(load))}</td></tr>'
        for load in loads
    )
    return f'<table id="recent-loads"><thead><tr><th>Finished</th><th>File</th><th>Status</th><th>Rows</th><th>Rejected</th><th>Reason</th></tr></thead><tbody>{rows}</tbody></table>'


def rejects_table(rejects: list[Reject], now: datetime) -> str:
    if not rejects:
        return '<div class="empty" id="rejects">No rejected records.</div>'
    rows = "".join(
        f'<tr><td>{when(r.rejected_at, now)}</td><td>{file_cell(r.source_file)}<div class="path">record {r.record_index} · route {text(r.route)}</div></td>'
        f'<td class="reason">{text(r.reason)}</td></tr>'
        for r in rejects
    )
    return f'<table id="rejects"><thead><tr><th>When</th><th>File</th><th>Reason</th></tr></thead><tbody>{rows}</tbody></table>'


def rejects_count(snapshot: Snapshot) -> str:
    """How many rejected records there are in all, beside the most recent few the panel lists."""
    if snapshot.rejects_total is None:
        return ""
    shown = f"the latest {len(snapshot.rejects)} of " if len(snapshot.rejects) < snapshot.rejects_total else ""
    return f' · {shown}<span id="rejects-total">{snapshot.rejects_total:,}</span> in all'


def page(snapshot: Snapshot, refresh_seconds: int) -> str:
    now = snapshot.taken_at
    problems = (
        '<section class="problems" id="problems"><strong>Could not read:</strong><ul>'
        + "".join(f"<li>{text(p)}</li>" for p in snapshot.problems)
        + "</ul></section>"
        if snapshot.problems
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{int(refresh_seconds)}">
<title>widf-loader · {text(snapshot.where)}</title><style>{STYLE}</style></head>
<body>
<header><h1>widf-loader</h1><span class="where">{text(snapshot.where)}</span>
<span class="stamp">updated {now:%H:%M:%S} UTC · refreshes every {int(refresh_seconds)} s</span></header>
<main>
{problems}
{tiles(snapshot)}
<section class="card"><h2>Events per day, by action <small>DAILY_SUMMARY</small></h2>{chart(snapshot.summary)}</section>
<div class="grid2">
<section class="card"><h2>Recent loads <small>LOAD_HISTORY</small></h2>{loads_table(snapshot.loads, now)}</section>
<section class="card"><h2>Rejected records <small>REJECTED_RECORDS{rejects_count(snapshot)}</small></h2>{rejects_table(snapshot.rejects, now)}</section>
</div>
</main>
<footer>Read through the administrator's connection; nothing on this page is sent anywhere else.</footer>
</body></html>"""
