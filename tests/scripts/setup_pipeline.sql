-- Set up a role, a warehouse and a database for a small event pipeline, the
-- way Snowflake's getting-started guides do it: names in session variables,
-- every object created IF NOT EXISTS, the objects owned by a custom role, and
-- read and write access granted to two more roles.
--
--   snow sql -f tests/scripts/setup_pipeline.sql
--
-- The test suite runs this file unmodified, through the Snowflake CLI, against
-- the local gateway (tests/local/test_snowcli.py).

USE ROLE ACCOUNTADMIN;

-- Names used below.
SET pipeline_role = 'PIPELINE_ROLE';
SET pipeline_wh = 'PIPELINE_WH';
SET pipeline_db = 'PIPELINE_DB';
SET my_user = (SELECT CURRENT_USER());

-- The owning role: granted to SYSADMIN, as Snowflake recommends for custom
-- roles, and to whoever runs this script, so that it can use it below.
CREATE ROLE IF NOT EXISTS IDENTIFIER($pipeline_role)
  COMMENT = 'Owns the pipeline database and everything in it';
GRANT ROLE IDENTIFIER($pipeline_role) TO ROLE SYSADMIN;
GRANT ROLE IDENTIFIER($pipeline_role) TO USER IDENTIFIER($my_user);

-- Compute.
CREATE WAREHOUSE IF NOT EXISTS IDENTIFIER($pipeline_wh)
  WAREHOUSE_SIZE = XSMALL
  AUTO_SUSPEND = 60
  AUTO_RESUME = TRUE
  INITIALLY_SUSPENDED = TRUE
  COMMENT = 'Pipeline loads and transformations';
GRANT USAGE ON WAREHOUSE IDENTIFIER($pipeline_wh) TO ROLE IDENTIFIER($pipeline_role);

-- Storage, handed over to the owning role.
CREATE DATABASE IF NOT EXISTS IDENTIFIER($pipeline_db)
  COMMENT = 'Click events and what is derived from them';
GRANT OWNERSHIP ON DATABASE IDENTIFIER($pipeline_db) TO ROLE IDENTIFIER($pipeline_role) COPY CURRENT GRANTS;

-- Everything inside is created by the owning role, so it owns it.
USE ROLE IDENTIFIER($pipeline_role);
USE WAREHOUSE IDENTIFIER($pipeline_wh);
USE DATABASE IDENTIFIER($pipeline_db);

CREATE SCHEMA IF NOT EXISTS EVENTS
  COMMENT = 'Raw events as they arrive';
USE SCHEMA EVENTS;

CREATE TABLE IF NOT EXISTS CLICKS (
  CLICKED_AT  TIMESTAMP_LTZ,
  USER_ID     VARCHAR,
  PAGE        VARCHAR
);

-- Clicks per page, kept fresh within a minute of the clicks.
CREATE OR REPLACE DYNAMIC TABLE CLICKS_PER_PAGE
  TARGET_LAG = '1 minute'
  WAREHOUSE = PIPELINE_WH
AS
  SELECT PAGE, COUNT(*) AS CLICKS, COUNT(DISTINCT USER_ID) AS VISITORS
  FROM CLICKS
  GROUP BY PAGE;

-- Who may read and who may write: managed by SECURITYADMIN.
USE ROLE SECURITYADMIN;

CREATE ROLE IF NOT EXISTS PIPELINE_WRITER
  COMMENT = 'Adds rows to the event tables; owns nothing';
GRANT USAGE ON DATABASE PIPELINE_DB TO ROLE PIPELINE_WRITER;
GRANT USAGE ON SCHEMA PIPELINE_DB.EVENTS TO ROLE PIPELINE_WRITER;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA PIPELINE_DB.EVENTS TO ROLE PIPELINE_WRITER;
GRANT SELECT, INSERT ON FUTURE TABLES IN SCHEMA PIPELINE_DB.EVENTS TO ROLE PIPELINE_WRITER;
GRANT CREATE TABLE ON SCHEMA PIPELINE_DB.EVENTS TO ROLE PIPELINE_WRITER;
GRANT ROLE PIPELINE_WRITER TO ROLE IDENTIFIER($pipeline_role);

CREATE ROLE IF NOT EXISTS PIPELINE_READER
  COMMENT = 'Reads the derived tables';
GRANT USAGE ON DATABASE PIPELINE_DB TO ROLE PIPELINE_READER;
GRANT USAGE ON SCHEMA PIPELINE_DB.EVENTS TO ROLE PIPELINE_READER;
GRANT SELECT ON DYNAMIC TABLE PIPELINE_DB.EVENTS.CLICKS_PER_PAGE TO ROLE PIPELINE_READER;

-- What there is now.
USE ROLE ACCOUNTADMIN;
SHOW ROLES LIKE 'PIPELINE%';
SHOW WAREHOUSES LIKE 'PIPELINE%';
SHOW TABLES IN SCHEMA PIPELINE_DB.EVENTS;
SHOW DYNAMIC TABLES IN SCHEMA PIPELINE_DB.EVENTS;
SHOW GRANTS TO ROLE PIPELINE_WRITER;
SHOW FUTURE GRANTS IN SCHEMA PIPELINE_DB.EVENTS;
