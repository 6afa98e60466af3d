"""Run by the Snowpark environment's own interpreter (not the project's): the other ways Snowpark and connector
users write a DataFrame, and a COPY written by hand, against one table, reported as JSON on stdout.

stdin: {"connect": {...Session configs...}, "parquet": "<a local path to write a Parquet file to>"}

Each step is reported with what the table holds after it, so the test sees what every write did.
"""

import json
import sys

import pandas as pd
from snowflake.connector.pandas_tools import write_pandas
from snowflake.snowpark import Session


def contents(session: Session, table: str) -> list[list]:
    return [list(row) for row in session.sql(f"SELECT NAME, N FROM {table} ORDER BY N").collect()]


def main(request: dict) -> dict:
    session = Session.builder.configs(request["connect"]).create()
    connection, report = session.connection, {}
    try:
        session.sql("CREATE OR REPLACE TABLE FRAMES (NAME VARCHAR, N NUMBER)").collect()
        # The connector's own write_pandas into an existing table, then Snowpark's without auto_create_table.
        success, chunks, rows, _ = write_pandas(connection, pd.DataFrame({"NAME": ["a", "b"], "N": [1, 2]}), "FRAMES")
        report["connector"] = {"success": success, "chunks": chunks, "rows": rows, "table": contents(session, "FRAMES")}
        session.write_pandas(pd.DataFrame({"NAME": ["c"], "N": [3]}), "FRAMES")
        report["snowpark_append"] = contents(session, "FRAMES")
        # overwrite=True without auto_create_table truncates the table first.
        write_pandas(connection, pd.DataFrame({"NAME": ["d"], "N": [4]}), "FRAMES", overwrite=True)
        report["overwrite"] = contents(session, "FRAMES")
        # auto_create_table without overwrite: the table is made from INFER_SCHEMA's types.
        frame = pd.DataFrame({"NAME": ["e"], "N": [5], "SCORE": [0.5], "OK": [True], "AT": pd.to_datetime(["2026-12-01 09:30"])})
        session.write_pandas(frame, "INFERRED", auto_create_table=True)
        report["inferred_columns"] = [[r[0], r[1]] for r in session.sql("DESCRIBE TABLE INFERRED").collect()]
        report["inferred_rows"] = [[str(v) for v in row] for row in session.sql("SELECT * FROM INFERRED").collect()]
        # A COPY written by hand: a named stage, a PUT of a Parquet file, fields matched to columns by name.
        pd.DataFrame({"n": [6, 7], "name": ["f", "g"], "extra": ["x", "y"]}).to_parquet(request["parquet"])
        cursor = connection.cursor()
        cursor.execute("CREATE OR REPLACE STAGE FRAMES_IN")
        cursor.execute(f"PUT 'file://{request['parquet']}' @FRAMES_IN")
        copied = cursor.execute(
            "COPY INTO FRAMES FROM @FRAMES_IN FILE_FORMAT = (TYPE = PARQUET) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE"
        ).fetchall()
        report["matched_copy"] = {"status": [[r[0], r[1], r[3]] for r in copied], "table": contents(session, "FRAMES")}
        report["listed"] = [r[0] for r in cursor.execute("LIST @FRAMES_IN").fetchall()]
    finally:
        session.close()
    return report


if __name__ == "__main__":
    print(json.dumps(main(json.load(sys.stdin)), default=str))
