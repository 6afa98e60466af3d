"""An insert-only MERGE reads committed data for every source row, as Snowflake's read committed does."""

from __future__ import annotations

import fakesnow
import pytest
import snowflake.connector
import sqlglot

from widf_local.gateway.transactions import insert_only_merge, insert_only_merge_of, plain_read_in_duckdb

CLAIMS = (
    "MERGE INTO L h USING (SELECT ? AS FILE_ID, ? AS STATUS UNION ALL SELECT ? AS FILE_ID, ? AS STATUS "
    "UNION ALL SELECT ? AS FILE_ID, ? AS STATUS) s "
    "ON h.FILE_ID = s.FILE_ID AND h.STATUS IN ('LOADED') AND s.STATUS IN ('LOADED') "
    "WHEN NOT MATCHED THEN INSERT (FILE_ID, STATUS) VALUES (s.FILE_ID, s.STATUS)"
)


def test_a_source_row_matched_by_either_view_is_not_inserted_and_the_others_are():
    """f1 is in the session's own view, f2 only in what another session committed meanwhile (its snapshot is older),
    f3 matches neither: one row is inserted, as Snowflake's MERGE would insert it."""
    merge = insert_only_merge(sqlglot.parse_one(CLAIMS, read="snowflake"))
    assert merge is not None and merge.columns == ("FILE_ID", "STATUS")
    params = ("f1", "LOADED", "f2", "LOADED", "f3", "SKIPPED_DUPLICATE")
    with fakesnow.patch():
        cursor = snowflake.connector.connect(database="D", schema="S", paramstyle="qmark").cursor()
        cursor.execute("CREATE SCHEMA IF NOT EXISTS D.S")
        cursor.execute("CREATE TABLE L (FILE_ID VARCHAR, STATUS VARCHAR)")
        cursor.execute("INSERT INTO L VALUES ('f1', 'LOADED')")
        assert cursor.execute(merge.committed_matches, params).fetchall() == [("f1", "LOADED")]
        cursor.execute(merge.insert_unmatched([("f2", "LOADED")]), params)
        assert cursor.rowcount == 1
        assert cursor.execute("SELECT * FROM L ORDER BY 1").fetchall() == [("f1", "LOADED"), ("f3", "SKIPPED_DUPLICATE")]


def test_a_merge_planned_once_by_its_text_answers_each_run_by_that_runs_committed_rows():
    """The gateway keeps a MERGE's rewrite by its text: the committed rows one run adds must not stay in the next's."""
    merge = insert_only_merge_of(CLAIMS)
    assert merge is not None and insert_only_merge_of(CLAIMS) is merge
    with fakesnow.patch():
        cursor = snowflake.connector.connect(database="D", schema="S", paramstyle="qmark").cursor()
        cursor.execute("CREATE SCHEMA IF NOT EXISTS D.S")
        cursor.execute("CREATE TABLE L (FILE_ID VARCHAR, STATUS VARCHAR)")
        cursor.execute(merge.insert_unmatched([("f1", "LOADED")]), ("f1", "LOADED", "f2", "LOADED", "f3", "LOADED"))
        assert cursor.rowcount == 2
        cursor.execute(merge.insert_unmatched([]), ("f1", "LOADED", "f4", "LOADED", "f5", "LOADED"))
        assert cursor.rowcount == 3  # f1 is in neither this session's view nor, this time, the committed rows
        assert [r[0] for r in cursor.execute("SELECT FILE_ID FROM L ORDER BY 1").fetchall()] == ["f1", "f2", "f3", "f4", "f5"]


def test_a_merge_whose_on_clause_reads_no_target_column_is_left_to_fakesnow():
    assert (
        insert_only_merge(
            sqlglot.parse_one(
                "MERGE INTO L h USING (SELECT 1 AS A) s ON s.A = 1 WHEN NOT MATCHED THEN INSERT (A) VALUES (s.A)", read="snowflake"
            )
        )
        is None
    )


CLAIM_WITH_A_TIME = (
    "MERGE INTO L h USING (SELECT ? AS FILE_ID, ? AS STATUS, CAST(? AS TIMESTAMP_LTZ) AS STARTED_AT UNION ALL "
    "SELECT ? AS FILE_ID, ? AS STATUS, CAST(? AS TIMESTAMP_LTZ) AS STARTED_AT) s "
    "ON h.FILE_ID = s.FILE_ID AND h.STATUS IN ('LOADED', 'REJECTED') AND s.STATUS IN ('LOADED', 'REJECTED') "
    "WHEN NOT MATCHED THEN INSERT (FILE_ID, STATUS, STARTED_AT) VALUES (s.FILE_ID, s.STATUS, s.STARTED_AT)"
)


def test_a_plain_committed_read_runs_on_duckdb_and_finds_what_fakesnow_finds():
    """The claim's committed read skips fakesnow's rewrites: on DuckDB as written, its tables named whole, it must
    answer as the same read through fakesnow does."""
    merge = insert_only_merge_of(CLAIM_WITH_A_TIME)
    plain = plain_read_in_duckdb(merge.committed_matches, "D", "S")
    assert plain is not None and "D.S.L" in plain
    with fakesnow.patch():
        connection = snowflake.connector.connect(database="D", schema="S", paramstyle="qmark")
        cursor = connection.cursor()
        cursor.execute("CREATE SCHEMA IF NOT EXISTS D.S")
        cursor.execute("CREATE TABLE L (FILE_ID VARCHAR, STATUS VARCHAR, STARTED_AT TIMESTAMP_LTZ)")
        cursor.execute("INSERT INTO L VALUES ('f1', 'LOADED', NULL), ('f2', 'FAILED', NULL), ('f3', 'REJECTED', NULL)")
        found = []
        for params in (
            ["f1", "LOADED", "2026-12-02 10:00:00", "f2", "LOADED", None],  # f2 only failed: it is not settled
            ["f3", "REJECTED", None, "f4", "LOADED", "2026-12-02 10:00:00"],
            ["f1", "SKIPPED_DUPLICATE", None, "f9", "LOADED", None],  # a duplicate's entry matches nothing
        ):
            on_duckdb = connection._duck_conn.cursor().execute(plain, params).fetchall()  # noqa: SLF001 - fakesnow's DuckDB
            assert sorted(on_duckdb) == sorted(cursor.execute(merge.committed_matches, params).fetchall())
            found.append(on_duckdb)
        assert found == [[("f1", "LOADED")], [("f3", "REJECTED")], []]


@pytest.mark.parametrize(
    ("on", "database"),
    [
        ("UPPER(h.FILE_ID) = s.FILE_ID", "D"),  # a function: fakesnow's rewrites may matter
        ("h.FILE_ID = s.FILE_ID AND h.DATA:id = 1", "D"),  # a semi-structured path
        ("h.FILE_ID = CAST(s.FILE_ID AS VARIANT)", "D"),  # a semi-structured type
        ("h.FILE_ID = s.FILE_ID AND h.SIZE = CAST(s.FILE_ID AS INT)", "D"),  # INT: 32 bits in DuckDB, not NUMBER(38, 0)
        ("h.FILE_ID = CAST(s.FILE_ID AS VARCHAR(4))", "D"),  # a length DuckDB would not enforce
        ("h.FILE_ID = s.FILE_ID", None),  # no current database: fakesnow answers with Snowflake's error
    ],
    ids=["function", "path", "variant", "int", "varchar-length", "no-database"],
)
def test_a_committed_read_that_is_not_plain_is_left_to_fakesnow(on, database):
    merge = insert_only_merge_of(
        f"MERGE INTO L h USING (SELECT ? AS FILE_ID) s ON {on} WHEN NOT MATCHED THEN INSERT (FILE_ID) VALUES (s.FILE_ID)"
    )
    assert merge is not None
    assert plain_read_in_duckdb(merge.committed_matches, database, "S") is None
    assert plain_read_in_duckdb(merge.committed_matches.replace(" L ", " INFORMATION_SCHEMA.TABLES "), "D", "S") is None
