"""A bad pipeline configuration stops start-up with one line naming the file, the line and the problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from widf_loader.pipeline_config import DEFAULT_CONFIG, PipelineConfigError, read_pipeline_config

GOOD = """
[targets.raw]
table = "RAW_DATA"

[[routes]]
name = "all"
target = "raw"
"""


def write(tmp_path: Path, text: str, name: str = "pipeline.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_default_configuration_is_valid():
    config = read_pipeline_config(DEFAULT_CONFIG)
    assert [r.name for r in config.routes] == ["purchases", "events"]
    assert config.tables == ("RAW_DATA",)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            GOOD.replace('table = "RAW_DATA"', 'table = "RAW; DROP TABLE X"'),
            r":3: table of \[targets.raw\] 'RAW; DROP TABLE X' is not a plain Snowflake identifier",
        ),
        (GOOD.replace('target = "raw"', 'target = "purchases"'), r":7: route 'all' goes to unknown target 'purchases' \(defined: raw\)"),
        (GOOD + 'contract = "broken.schema.json"\n', r":8: route 'all': contract broken.schema.json does not compile"),
        (GOOD + 'contract = "missing.json"\n', r":8: route 'all': cannot read contract missing.json"),
        (GOOD + "colour = 'blue'\n", r":8: unknown setting 'colour' in route 'all'"),
        (
            GOOD.replace('name = "all"', 'name = "all"\nwhen = { field = "action", equals = "x" }'),
            r"the last route \('all'\) must have no 'when'",
        ),
        ("[gates]\nmax_reject_ratio = 2\n" + GOOD, r":2: gates.max_reject_ratio must be between 0 and 1"),
        ('[enrichment]\nhooks = ["no_colon"]\n' + GOOD, r":2: enrichment hook 'no_colon' is not module:function"),
        ("[[routes]\n", r"not valid TOML"),
    ],
)
def test_bad_configurations_name_the_line_and_the_problem(tmp_path, text, problem):
    (tmp_path / "broken.schema.json").write_text('{"type": "not-a-type"}')
    path = write(tmp_path, text)
    with pytest.raises(PipelineConfigError, match=problem) as refused:
        read_pipeline_config(path)
    assert str(refused.value).startswith(str(path))
    assert "\n" not in str(refused.value)


def test_the_cli_refuses_a_bad_configuration_in_one_line(tmp_path):
    path = write(tmp_path, GOOD.replace('target = "raw"', 'target = "nowhere"'))
    sample = tmp_path / "events.json"
    sample.write_text("[]")
    result = subprocess.run(
        [sys.executable, "-m", "widf_cli", "load", str(sample), "--dry-run"],
        capture_output=True,
        text=True,
        env={**os.environ, "WIDF_PIPELINE_CONFIG": str(path), "COLUMNS": "300"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "goes to unknown target 'nowhere'" in result.stderr


def test_the_dry_run_runs_in_an_administrators_shell_whose_named_connection_the_function_would_refuse(tmp_path):
    sample = tmp_path / "events.json"
    sample.write_text('[{"event_type": "page_view"}]')
    result = subprocess.run(
        [sys.executable, "-m", "widf_cli", "load", str(sample), "--dry-run"],
        capture_output=True,
        text=True,
        env={**os.environ, "SNOWFLAKE_CONNECTION_NAME": "admin", "SNOWFLAKE_HOME": str(tmp_path), "COLUMNS": "300"},
    )
    assert result.returncode == 0, result.stderr
    assert "Would load" in result.stdout
