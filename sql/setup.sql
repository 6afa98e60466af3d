-- widf-loader: the Snowflake objects the loader writes to. Idempotent: running
-- it again changes nothing. Run as an administrator:
--   widf-loader snow setup
--   snow sql -f sql/setup.sql -D database=WIDF_DEMO_DB -D schema=PUBLIC -D role=WIDF_DEMO_ROLE -D warehouse=COMPUTE_WH
USE ROLE ACCOUNTADMIN;

CREATE ROLE IF NOT EXISTS <% role %>
  COMMENT = 'widf-loader: inserts into its landing tables, creates nothing';
-- Snowflake's advice for custom roles: let SYSADMIN manage what they may do.
GRANT ROLE <% role %> TO ROLE SYSADMIN;

CREATE WAREHOUSE IF NOT EXISTS <% warehouse %>
  WAREHOUSE_SIZE = XSMALL AUTO_SUSPEND = 60 AUTO_RESUME = TRUE INITIALLY_SUSPENDED = TRUE;

CREATE DATABASE IF NOT EXISTS <% database %>
  COMMENT = 'widf-loader: JSON events loaded from S3 with workload identity';
CREATE SCHEMA IF NOT EXISTS <% database %>.<% schema %>;
USE SCHEMA <% database %>.<% schema %>;

-- One row per JSON record, with the S3 event it came from.
CREATE TABLE IF NOT EXISTS RAW_DATA (
  ID                 NUMBER AUTOINCREMENT,
  SOURCE_FILE        VARCHAR,
  PAYLOAD            VARIANT,
  LOADED_AT          TIMESTAMP_LTZ DEFAULT CURRENT_TIMESTAMP(),
  LOADED_BY          VARCHAR,
  SOURCE_BUCKET      VARCHAR,
  SOURCE_KEY         VARCHAR,
  SOURCE_VERSION_ID  VARCHAR,
  SOURCE_ETAG        VARCHAR,
  SOURCE_SIZE        NUMBER,
  SOURCE_EVENT_TIME  VARCHAR,
  SOURCE_PRINCIPAL   VARCHAR,
  SOURCE_IP          VARCHAR,
  RECORD_INDEX       NUMBER,
  LOAD_ID            VARCHAR
);

-- The ledger: one row per attempt at a file. A file is settled once it has a
-- LOADED or REJECTED row; later deliveries of it are SKIPPED_DUPLICATE.
CREATE TABLE IF NOT EXISTS LOAD_HISTORY (
  FILE_ID            VARCHAR,   -- bucket/key#version (or #etag when unversioned)
  SOURCE_FILE        VARCHAR,
  SOURCE_BUCKET      VARCHAR,
  SOURCE_KEY         VARCHAR,
  SOURCE_VERSION_ID  VARCHAR,
  SOURCE_ETAG        VARCHAR,
  SOURCE_SIZE        NUMBER,
  SOURCE_SEQUENCER   VARCHAR,
  SOURCE_EVENT_TIME  VARCHAR,
  STATUS             VARCHAR,   -- LOADED | REJECTED | SKIPPED_DUPLICATE | SKIPPED | FAILED
  ROWS_LOADED        NUMBER,
  ROWS_REJECTED      NUMBER,
  REASON             VARCHAR,
  LOAD_ID            VARCHAR,
  STARTED_AT         TIMESTAMP_LTZ,
  FINISHED_AT        TIMESTAMP_LTZ,
  LOADED_BY          VARCHAR
);

-- Quarantine: records that broke their route's contract or were refused by a
-- hook, each with the reason, from files that otherwise loaded.
CREATE TABLE IF NOT EXISTS REJECTED_RECORDS (
  SOURCE_FILE   VARCHAR,
  SOURCE_KEY    VARCHAR,
  RECORD_INDEX  NUMBER,
  ROUTE         VARCHAR,
  REASON        VARCHAR,
  RAW_RECORD    VARCHAR,   -- the record as received, up to 64 KiB
  LOAD_ID       VARCHAR,
  REJECTED_AT   TIMESTAMP_LTZ DEFAULT CURRENT_TIMESTAMP(),
  REJECTED_BY   VARCHAR
);

-- What the loader's role may do here: use the warehouse, database and schema,
-- and INSERT and SELECT on exactly the tables it writes - it creates, drops and
-- owns nothing. Granted here, with the objects, so that any user given the role
-- can load (e.g. one created from the stack's SnowflakeServiceUserStatement);
-- lambda_wid.sql grants the same again, so it is complete on its own. GRANT is
-- idempotent.
GRANT USAGE ON WAREHOUSE <% warehouse %> TO ROLE <% role %>;
GRANT USAGE ON DATABASE <% database %> TO ROLE <% role %>;
GRANT USAGE ON SCHEMA <% database %>.<% schema %> TO ROLE <% role %>;
GRANT SELECT, INSERT ON TABLE <% database %>.<% schema %>.RAW_DATA TO ROLE <% role %>;
GRANT SELECT, INSERT ON TABLE <% database %>.<% schema %>.LOAD_HISTORY TO ROLE <% role %>;
GRANT SELECT, INSERT ON TABLE <% database %>.<% schema %>.REJECTED_RECORDS TO ROLE <% role %>;

-- Daily figures per action, kept fresh by Snowflake within TARGET_LAG (one
-- minute is Snowflake's minimum); `ALTER DYNAMIC TABLE DAILY_SUMMARY REFRESH`
-- brings it up to date at once.
CREATE DYNAMIC TABLE IF NOT EXISTS DAILY_SUMMARY
  TARGET_LAG = '1 minute'
  WAREHOUSE = <% warehouse %>
AS
SELECT
  TO_DATE(LOADED_AT)                          AS LOAD_DATE,
  PAYLOAD:action::STRING                      AS ACTION,
  COUNT(DISTINCT SOURCE_FILE)                 AS FILES_LOADED,
  COUNT(*)                                    AS TOTAL_EVENTS,
  COUNT(DISTINCT PAYLOAD:user_id::STRING)     AS UNIQUE_USERS,
  COALESCE(SUM(PAYLOAD:amount::NUMBER(18, 2)), 0) AS TOTAL_AMOUNT
FROM RAW_DATA
GROUP BY 1, 2;
