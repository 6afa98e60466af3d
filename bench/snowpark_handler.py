"""The cold-start comparison: the same 20-record load done by a handler built on Snowpark + pandas.

Run in a fresh interpreter from bench/.venv-snowpark (Snowpark and pandas are never project
dependencies). Prints the seconds from interpreter start to committed rows.
"""

import time

# The clock starts before the imports: they are what a cold start pays for (hence E402 below).
started = time.perf_counter()
import io  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import boto3  # noqa: E402
import pandas  # noqa: E402
from snowflake.snowpark import Session  # noqa: E402

bucket, key = sys.argv[1], sys.argv[2]
frame = pandas.read_json(io.BytesIO(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()))
session = Session.builder.configs(
    {
        "account": os.environ["SNOWFLAKE_ACCOUNT"],
        "host": os.environ["SNOWFLAKE_HOST"],
        "port": int(os.environ["SNOWFLAKE_PORT"]),
        "protocol": os.environ["SNOWFLAKE_PROTOCOL"],
        "authenticator": "WORKLOAD_IDENTITY",
        "workload_identity_provider": "AWS",
        "workload_identity_host": os.environ["SNOWFLAKE_WORKLOAD_IDENTITY_HOST"],
        "database": os.environ["SNOWFLAKE_DATABASE"],
        "schema": os.environ["SNOWFLAKE_SCHEMA"],
        "warehouse": os.environ["SNOWFLAKE_WAREHOUSE"],
        "role": os.environ["SNOWFLAKE_ROLE"],
    }
).create()
rows = [(f"s3://{bucket}/{key}", line) for line in frame.to_json(orient="records", lines=True, date_format="iso").splitlines()]
cursor = session.connection.cursor()
cursor.executemany("INSERT INTO RAW_DATA (SOURCE_FILE, PAYLOAD) SELECT ?, PARSE_JSON(?)", rows)
session.connection.commit()
print(time.perf_counter() - started)
