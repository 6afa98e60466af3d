-- A service user for the job that loads the pipeline from AWS, with a role
-- that may insert into the landing table and stage what it loads: a
-- Snowpark job's write_pandas creates a staging table, a temporary stage and
-- a temporary file format in the schema. The user has no password and no
-- key: it signs in with workload identity federation, as the IAM role the job
-- runs with.
--
--   snow sql --enable-templating=ALL -f tests/scripts/trial_service_user.sql \
--     -D database=INGEST_DB -D schema=LANDING -D loader_role=INGEST_LOADER \
--     -D service_user=INGEST_BOT -D role_arn=arn:aws:iam::123456789012:role/ingest-job
--
-- Run trial_setup.sql first. The test suite runs this file unmodified, through
-- the Snowflake CLI, against the local gateway (tests/local/test_snowcli.py).

USE ROLE ACCOUNTADMIN;

CREATE ROLE IF NOT EXISTS <%loader_role%>
  COMMENT = 'Inserts into the landing table, through tables and stages of its own';
GRANT USAGE ON WAREHOUSE COMPUTE_WH TO ROLE <%loader_role%>;
GRANT USAGE ON DATABASE <%database%> TO ROLE <%loader_role%>;
GRANT USAGE ON SCHEMA <%database%>.<%schema%> TO ROLE <%loader_role%>;
GRANT SELECT, INSERT ON TABLE <%database%>.<%schema%>.RAW_DATA TO ROLE <%loader_role%>;
GRANT CREATE TABLE, CREATE STAGE, CREATE FILE FORMAT ON SCHEMA <%database%>.<%schema%> TO ROLE <%loader_role%>;

CREATE USER IF NOT EXISTS <%service_user%>
  TYPE = SERVICE
  WORKLOAD_IDENTITY = (TYPE = AWS ARN = '<%role_arn%>')
  DEFAULT_ROLE = <%loader_role%>
  DEFAULT_WAREHOUSE = COMPUTE_WH
  DEFAULT_NAMESPACE = <%database%>.<%schema%>
  COMMENT = 'Loads raw events from AWS';
GRANT ROLE <%loader_role%> TO USER <%service_user%>;

-- Check the result.
DESCRIBE USER <%service_user%>;
SHOW USERS LIKE '<%service_user%>';
SHOW GRANTS TO ROLE <%loader_role%>;
