"""One table, one key: the lock a statement takes and the grants it is checked against name
the same table, however its name is written (Snowflake folds unquoted names, keeps quoted ones)."""

from __future__ import annotations

import pytest

from widf_local.gateway.grants import needs, parse
from widf_local.gateway.transactions import locked_table


@pytest.mark.parametrize(
    "table",
    ['"Ledger"', "ledger", "LEDGER", 'db.public."Ledger"', '"Db"."Public"."Ledger"', "other_db.public.ledger"],
)
def test_a_merge_locks_the_table_its_privileges_are_checked_on(table):
    statement = parse(f"MERGE INTO {table} h USING (SELECT 1 AS A) s ON h.A = s.A WHEN NOT MATCHED THEN INSERT (A) VALUES (s.A)")
    [checked] = {n.on.name for n in needs(statement, "DB", "PUBLIC") if n.on.kind == "TABLE"}
    assert locked_table(statement, "DB", "PUBLIC") == checked


def test_quoted_names_that_differ_in_case_are_different_tables():
    def lock(table: str) -> str | None:
        return locked_table(parse(f"DELETE FROM {table} WHERE A = 1"), "DB", "PUBLIC")

    assert lock('"Ledger"') != lock('"LEDGER"') == lock("ledger")
