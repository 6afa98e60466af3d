"""A Lambda handler written the way Snowpark users write one, as the public demo's is: each uploaded file read
into pandas, written with `session.write_pandas` to a staging table, then moved into RAW_DATA with
`INSERT ... PARSE_JSON` and the staging table dropped. It signs in with workload identity federation as the
role it runs with, and knows nothing of the local stack: everything comes from the environment a function
would have, and the local stack's runtime adds what it adds for every function (AWS_ENDPOINT_URL, which the
connector's STS host resolution reads through botocore; the Snowflake endpoint).

Run by tests/local/test_snowpark.py from a Snowpark environment of its own: the event as JSON on stdin, the
handler's answer as JSON on stdout.
"""

import json
import os
import sys

import boto3
import pandas as pd
from snowflake.snowpark import Session


def snowflake_session() -> Session:
    configs = {
        "account": os.environ["SNOWFLAKE_ACCOUNT"],
        "authenticator": "WORKLOAD_IDENTITY",
        "workload_identity_provider": "AWS",
        "database": os.environ["SNOWFLAKE_DATABASE"],
        "schema": os.environ["SNOWFLAKE_SCHEMA"],
        "warehouse": os.environ["SNOWFLAKE_WAREHOUSE"],
        "role": os.environ["SNOWFLAKE_ROLE"],
    }
    for option in ("host", "port", "protocol"):
        if value := os.environ.get(f"SNOWFLAKE_{option.upper()}"):
            configs[option] = int(value) if option == "port" else value
    return Session.builder.configs(configs).create()


def lambda_handler(event: dict, context: object) -> dict:
    s3 = boto3.client("s3")
    session = snowflake_session()
    loaded = []
    try:
        for record in event["Records"]:
            bucket, key = record["s3"]["bucket"]["name"], record["s3"]["object"]["key"]
            events = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            frame = pd.DataFrame({"SOURCE_FILE": f"s3://{bucket}/{key}", "PAYLOAD": [json.dumps(e) for e in events]})
            session.write_pandas(frame, table_name="RAW_DATA_STAGING", auto_create_table=True, overwrite=True)
            session.sql(
                "INSERT INTO RAW_DATA (SOURCE_FILE, PAYLOAD) SELECT SOURCE_FILE, PARSE_JSON(PAYLOAD) FROM RAW_DATA_STAGING"
            ).collect()
            session.sql("DROP TABLE IF EXISTS RAW_DATA_STAGING").collect()
            loaded.append({"file": f"s3://{bucket}/{key}", "records": len(events)})
    finally:
        session.close()
    return {"statusCode": 200, "body": json.dumps({"loaded": loaded, "session_id": session.session_id})}


if __name__ == "__main__":
    print(json.dumps(lambda_handler(json.load(sys.stdin), None)))
