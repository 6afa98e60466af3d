"""Which statements run on a warehouse, as QUERY_HISTORY records them (Snowflake's "Overview of warehouses":
SELECTs that read tables, DML, loading)."""

from __future__ import annotations

import pytest

from widf_local.gateway.history import uses_warehouse


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO RAW_DATA (SOURCE_FILE) SELECT ?",
        "merge into LOAD_HISTORY h using (select 1) s on true when matched then delete",
        "COPY INTO T FROM @S",
        "SELECT COUNT(*) FROM RAW_DATA",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "(SELECT A FROM T)",
    ],
)
def test_dml_loads_and_queries_of_tables_use_the_warehouse(sql):
    assert uses_warehouse(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "COMMIT",
        "CREATE TABLE T (A INT)",
        "SHOW TABLES",
        "SELECT CURRENT_USER()",
        "SELECT 'FROM nowhere'",
        "select system$cancel_all_queries(1)",
    ],
)
def test_ddl_show_commit_and_selects_of_no_table_do_not(sql):
    assert not uses_warehouse(sql)
