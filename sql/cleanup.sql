-- widf-loader: remove what setup.sql and lambda_wid.sql created. Idempotent.
--   widf-loader snow cleanup
--   snow sql -f sql/cleanup.sql -D user=LAMBDA_LOADER_BOT -D role=WIDF_DEMO_ROLE -D database=WIDF_DEMO_DB -D warehouse=COMPUTE_WH
-- The order matters: first the user (nothing can log in as it any more), then
-- the database (its tables, DAILY_SUMMARY and every grant on them go with it),
-- then the role (dropping a role revokes what was granted to it and what it was
-- granted, the warehouse USAGE included). There are no REVOKE statements:
-- Snowflake has no REVOKE IF EXISTS, so they would fail on a second run, and
-- the drops revoke the same grants. The warehouse is left alone: it may serve
-- other work.
USE ROLE ACCOUNTADMIN;

DROP USER IF EXISTS <% user %>;
DROP DATABASE IF EXISTS <% database %>;
DROP ROLE IF EXISTS <% role %>;
