-- Set up a small ingestion pipeline in a fresh Snowflake trial account: a
-- role that owns the pipeline's database, the trial's own warehouse
-- (COMPUTE_WH) for that role, a landing table and its daily summary. Run it as the user who
-- signed up for the trial (an ACCOUNTADMIN):
--
--   snow sql --enable-templating=ALL -f tests/scripts/trial_setup.sql \
--     -D sa_role=INGEST_ROLE -D database=INGEST_DB -D schema=LANDING
--
-- Give it a schema of its own. Handing the database over to the role does not
-- hand over its PUBLIC schema, which stays with ACCOUNTADMIN, who created the
-- database: with schema=PUBLIC the role may use the schema (through the
-- user's secondary roles) but not create a table in it, and the script stops
-- at CREATE TABLE. Running it again changes nothing.
--
-- The test suite runs this file unmodified, through the Snowflake CLI, against
-- the local gateway (tests/local/test_snowcli.py).

USE ROLE ACCOUNTADMIN;

-- Who runs this: the new role is theirs.
SET current_user = (SELECT CURRENT_USER());

CREATE ROLE IF NOT EXISTS <%sa_role%>
  COMMENT = 'Owns the ingestion database and everything in it';
GRANT ROLE <%sa_role%> TO USER IDENTIFIER($current_user);

-- Storage, handed over to the role; compute, the warehouse the trial came with.
CREATE DATABASE IF NOT EXISTS <%database%>
  COMMENT = 'Raw events as they land';
GRANT OWNERSHIP ON DATABASE <%database%> TO ROLE <%sa_role%>;
GRANT USAGE ON WAREHOUSE COMPUTE_WH TO ROLE <%sa_role%>;

-- Everything inside is created by the role, so it owns it.
USE ROLE <%sa_role%>;
USE DATABASE <%database%>;
USE WAREHOUSE COMPUTE_WH;

CREATE SCHEMA IF NOT EXISTS <%schema%>;
USE SCHEMA <%schema%>;

CREATE TABLE IF NOT EXISTS RAW_DATA (
  ID           NUMBER AUTOINCREMENT,
  SOURCE_FILE  VARCHAR,
  PAYLOAD      VARIANT,
  LOADED_AT    TIMESTAMP_LTZ DEFAULT CURRENT_TIMESTAMP()
) COMMENT = 'One row per JSON record';

-- Daily figures per action, refreshed by Snowflake within a minute of new rows.
CREATE OR REPLACE DYNAMIC TABLE DAILY_SUMMARY
  TARGET_LAG = '1 minute'
  WAREHOUSE = COMPUTE_WH
AS
SELECT
  TO_DATE(LOADED_AT)                      AS LOAD_DATE,
  PAYLOAD:action::STRING                  AS ACTION,
  COUNT(*)                                AS TOTAL_EVENTS,
  COUNT(DISTINCT PAYLOAD:user_id::STRING) AS UNIQUE_USERS,
  SUM(PAYLOAD:amount::NUMBER(18, 2))      AS TOTAL_AMOUNT
FROM RAW_DATA
GROUP BY 1, 2;

-- What there is now, as the role sees it.
SHOW WAREHOUSES LIKE 'COMPUTE_WH';
SHOW DATABASES LIKE '<%database%>';
SHOW SCHEMAS IN DATABASE <%database%>;
SHOW TABLES IN SCHEMA <%database%>.<%schema%>;
