-- widf-loader: remove what setup.sql and lambda_wid.sql created. Idempotent.
-- The warehouse is left alone: it may serve other work.
--   widf-loader snow cleanup
--   snow sql -f sql/cleanup.sql -D user=LAMBDA_LOADER_BOT -D role=WIDF_DEMO_ROLE -D database=WIDF_DEMO_DB
USE ROLE ACCOUNTADMIN;

DROP USER IF EXISTS <% user %>;
DROP DATABASE IF EXISTS <% database %>;
DROP ROLE IF EXISTS <% role %>;
