"""An insert-only MERGE reads committed data for every source row, as Snowflake's read committed does."""

from __future__ import annotations

import fakesnow
import snowflake.connector
import sqlglot

from widf_local.gateway.transactions import insert_only_merge, insert_only_merge_of

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
