-- Remove what trial_setup.sql and trial_service_user.sql made, and nothing
-- else: the trial's COMPUTE_WH came with the account and stays. Idempotent.
--
--   snow sql --enable-templating=ALL -f tests/scripts/trial_cleanup.sql \
--     -D service_user=INGEST_BOT -D database=INGEST_DB \
--     -D loader_role=INGEST_LOADER -D sa_role=INGEST_ROLE
--
-- First the user, so nothing signs in as it any more; then the database, whose
-- schemas, tables and grants go with it; then the roles.

USE ROLE ACCOUNTADMIN;

DROP USER IF EXISTS <%service_user%>;
DROP DATABASE IF EXISTS <%database%>;
DROP ROLE IF EXISTS <%loader_role%>;
DROP ROLE IF EXISTS <%sa_role%>;

SHOW WAREHOUSES LIKE 'COMPUTE_WH';
