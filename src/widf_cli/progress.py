"""The backfill's progress bar: files and bytes, their rates, the time left."""

from __future__ import annotations

from datetime import timedelta

from rich.filesize import decimal
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

from widf_cli.common import console


class FilesColumn(ProgressColumn):
    """Files and bytes done, their rates since the start, and the time left (by files): one column, so it reads as one line."""

    def render(self, task: Task) -> Text:
        elapsed, done_bytes = task.elapsed or 0, task.fields["bytes"]
        text = f"{task.completed:.0f}/{task.total:.0f} files, {decimal(done_bytes)}/{decimal(task.fields['total_bytes'])}"
        if elapsed and task.completed:
            text += f", {task.completed / elapsed:.1f} files/s ({decimal(int(done_bytes / elapsed))}/s)"
        remaining = task.time_remaining
        text += f", ETA {'-:--:--' if remaining is None else timedelta(seconds=int(remaining))}"
        return Text(text, style="progress.data.speed")


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=20), FilesColumn(), console=console)
