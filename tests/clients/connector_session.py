"""Run by another connector generation's own interpreter (not the project's): one session against the
gateway, reported as JSON on stdout. Only the connector and the standard library are imported.

stdin: {"connect": {...connect() arguments...}, "other": {...a second session's arguments, optional...}}
   or: {"connect": {...}, "statements": [sql, ...]}: each statement's columns and rows, or its error
"""

from __future__ import annotations

import json
import sys

import snowflake.connector
from snowflake.connector.errors import Error


def errors(call) -> dict | None:
    try:
        call()
    except Error as e:
        return {"type": type(e).__name__, "errno": e.errno, "sqlstate": e.sqlstate, "msg": e.msg}
    return None


def statement_result(cursor, sql: str) -> dict:
    try:
        cursor.execute(sql)
    except Error as e:
        return {"error": {"type": type(e).__name__, "errno": e.errno, "sqlstate": e.sqlstate, "msg": e.msg}}
    return {"columns": [c[0] for c in cursor.description], "rows": cursor.fetchall()}


def main() -> None:
    request = json.load(sys.stdin)
    report: dict = {"version": snowflake.connector.__version__}
    login = errors(lambda: report.setdefault("connection", snowflake.connector.connect(**request["connect"])))
    if login is not None:
        report["login_error"] = login
        print(json.dumps(report, default=str))
        return
    connection = report.pop("connection")
    cursor = connection.cursor()
    if "statements" in request:
        report["results"] = [statement_result(cursor, sql) for sql in request["statements"]]
        print(json.dumps(report, default=str))
        return
    report["who"] = cursor.execute("SELECT CURRENT_USER(), CURRENT_ROLE()").fetchone()
    if "other" in request:
        other = snowflake.connector.connect(**request["other"])
        cursor.execute("CREATE OR REPLACE TABLE WIDF_CLIENT_CHECK.PUBLIC.T (ID INT, NAME VARCHAR)")
        connection.commit()
        report["bound"] = cursor.execute("SELECT ? + 1, ?", (41, "forty-two")).fetchone()
        cursor.executemany("INSERT INTO WIDF_CLIENT_CHECK.PUBLIC.T (ID, NAME) VALUES (?, ?)", [(1, "a"), (2, "b"), (3, None)])
        report["executemany_rowcount"] = cursor.rowcount
        seen = other.cursor().execute("SELECT COUNT(*) FROM WIDF_CLIENT_CHECK.PUBLIC.T").fetchone()[0]
        report["seen_by_another_session_before_commit"] = seen
        connection.rollback()
        report["after_rollback"] = cursor.execute("SELECT COUNT(*) FROM WIDF_CLIENT_CHECK.PUBLIC.T").fetchone()[0]
        cursor.executemany("INSERT INTO WIDF_CLIENT_CHECK.PUBLIC.T (ID, NAME) VALUES (?, ?)", [(1, "a"), (2, "b")])
        connection.commit()
        cursor.execute(
            "MERGE INTO WIDF_CLIENT_CHECK.PUBLIC.T t USING (SELECT ? AS ID, ? AS NAME) s ON t.ID = s.ID "
            "WHEN NOT MATCHED THEN INSERT (ID, NAME) VALUES (s.ID, s.NAME)",
            (3, "c"),
        )
        report["merge_rowcounts"] = [cursor.rowcount]
        cursor.execute(
            "MERGE INTO WIDF_CLIENT_CHECK.PUBLIC.T t USING (SELECT ? AS ID, ? AS NAME) s ON t.ID = s.ID "
            "WHEN NOT MATCHED THEN INSERT (ID, NAME) VALUES (s.ID, s.NAME)",
            (3, "c"),
        )
        report["merge_rowcounts"].append(cursor.rowcount)
        connection.commit()
        report["rows"] = cursor.execute("SELECT ID, NAME FROM WIDF_CLIENT_CHECK.PUBLIC.T ORDER BY ID").fetchall()
        report["error"] = errors(lambda: cursor.execute("SELECT * FROM WIDF_CLIENT_CHECK.PUBLIC.NO_SUCH_TABLE"))
        other.close()
    connection.close()
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
