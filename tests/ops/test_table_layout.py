"""The shipped tables' columns are written once in code (widf_loader.warehouse); sql/setup.sql keeps its
own DDL, so that it runs with `snow sql` alone, and these tests hold the two together."""

from __future__ import annotations

import re

import pytest

from helpers import REPOSITORY, TESTS
from widf_loader.outcomes import LoadStatus
from widf_loader.pipeline_config import read_pipeline_config
from widf_loader.warehouse import LEDGER_COLUMNS, RAW_DATA_TABLE, REJECTED_RECORDS_TABLE
from widf_ops.admin import SnowflakeNames
from widf_ops.ddl import create_target_tables

SETUP_SQL = REPOSITORY / "sql" / "setup.sql"
TYPED = TESTS / "configs" / "typed_purchases.toml"


def setup_sql_columns(table: str) -> list[tuple[str, str]]:
    """(name, type) of each column sql/setup.sql creates the table with, comments and spacing aside."""
    body = re.search(rf"CREATE TABLE IF NOT EXISTS {table} \((.*?)\n\);", SETUP_SQL.read_text(), re.S)
    assert body, f"sql/setup.sql creates no {table}"
    lines = (line.split("--")[0].strip().rstrip(",") for line in body.group(1).splitlines())
    return [(name, " ".join(kind.split())) for name, kind in (line.split(None, 1) for line in lines if line)]


@pytest.mark.parametrize(("table", "columns"), [("RAW_DATA", RAW_DATA_TABLE), ("REJECTED_RECORDS", REJECTED_RECORDS_TABLE)])
def test_setup_sql_creates_the_tables_the_code_describes(table, columns):
    assert setup_sql_columns(table) == list(columns)


def test_setup_sql_creates_the_ledger_the_loader_writes():
    assert [name for name, _ in setup_sql_columns("LOAD_HISTORY")] == [*LEDGER_COLUMNS, "FINISHED_AT", "LOADED_BY"]


def test_setup_sqls_note_on_status_lists_every_load_status():
    [note] = re.findall(r"^\s*STATUS\s+VARCHAR,\s*--\s*(.+)$", SETUP_SQL.read_text(), re.M)
    assert note.split(" | ") == list(LoadStatus)


def test_a_configured_target_table_begins_with_raw_datas_columns():
    [purchases] = create_target_tables(read_pipeline_config(TYPED), SnowflakeNames())
    columns = purchases.split(" (", 1)[1].removesuffix(")").split(", ")
    assert purchases.startswith("CREATE TABLE IF NOT EXISTS WIDF_DEMO_DB.PUBLIC.PURCHASES (")
    assert columns == [f"{name} {kind}" for name, kind in setup_sql_columns("RAW_DATA")] + [
        "USER_ID VARCHAR",
        "AMOUNT NUMBER(18,2)",
        "OS VARCHAR",
    ]
