"""Fixtures that start the real local stack, as a user would, through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from widf_loader.admin import SnowflakeNames
from widf_loader.local.stack import StackInfo, StackPaths, read_stack


def cli(state_dir: Path, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "widf_loader.cli", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", "WIDF_TARGET": "local"},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"widf-loader {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


class Stack:
    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.paths = StackPaths(state_dir)

    @property
    def info(self) -> StackInfo:
        return read_stack(self.paths)

    def cli(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        return cli(self.state_dir, *args, check=check, timeout=timeout)


def started_stack(state_dir: Path) -> Iterator[Stack]:
    stack = Stack(state_dir)
    stack.cli("local", "up")
    try:
        yield stack
    finally:
        stack.cli("local", "down", check=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A fresh local stack per test module (its data is in memory)."""
    yield from started_stack(tmp_path_factory.mktemp("stack"))


@pytest.fixture
def names() -> SnowflakeNames:
    return SnowflakeNames()
