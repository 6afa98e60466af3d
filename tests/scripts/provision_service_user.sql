-- Provision a service user for a workload that runs on AWS. It has no
-- password and no key: it authenticates with workload identity federation,
-- as the IAM role it runs with. The role ARNs come from Snowflake CLI
-- variables, the user's name from a session variable.
--
--   snow sql -f tests/scripts/provision_service_user.sql \
--     -D role_arn=arn:aws:iam::123456789012:role/pipeline-loader \
--     -D next_role_arn=arn:aws:iam::123456789012:role/pipeline-loader-v2
--
-- Run setup_pipeline.sql first: the user's default role and warehouse are
-- created there. The test suite runs this file unmodified, through the
-- Snowflake CLI, against the local gateway (tests/local/test_snowcli.py).

USE ROLE USERADMIN;

SET service_user = 'PIPELINE_LOADER';

CREATE USER IF NOT EXISTS IDENTIFIER($service_user)
  WORKLOAD_IDENTITY = (TYPE = AWS ARN = '<% role_arn %>')
  TYPE = SERVICE
  DEFAULT_ROLE = PIPELINE_WRITER
  DEFAULT_WAREHOUSE = PIPELINE_WH
  COMMENT = 'Loads click events from AWS';

-- While the workload moves to a new IAM role, trust both.
ALTER USER IDENTIFIER($service_user) ADD WORKLOAD IDENTITY NEXT_ROLE
  TYPE = AWS
  ARN = '<% next_role_arn %>';

-- Access comes with a role, never directly.
USE ROLE SECURITYADMIN;
GRANT ROLE PIPELINE_WRITER TO USER IDENTIFIER($service_user);
GRANT USAGE ON WAREHOUSE PIPELINE_WH TO ROLE PIPELINE_WRITER;

-- Check the result.
DESCRIBE USER IDENTIFIER($service_user);
SHOW USERS LIKE 'PIPELINE%';
SHOW USER WORKLOAD IDENTITY AUTHENTICATION METHODS FOR USER IDENTIFIER($service_user);
SHOW GRANTS TO USER IDENTIFIER($service_user);
