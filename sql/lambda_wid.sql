-- widf-loader: the service user the Lambda function logs in as, by workload
-- identity (no password, no key), and the least privilege its role needs:
-- USAGE on the warehouse, database and schema, INSERT and SELECT on exactly
-- the tables the loader writes (RAW_DATA, the LOAD_HISTORY ledger and the
-- REJECTED_RECORDS quarantine) - nothing it could create, drop or own. setup.sql
-- grants the role the same; repeating them here keeps this script complete.
--   widf-loader snow lambda-wid            (takes the role ARN from the deployed stack)
--   snow sql -f sql/lambda_wid.sql -D user=LAMBDA_LOADER_BOT -D role=WIDF_DEMO_ROLE \
--     -D warehouse=COMPUTE_WH -D database=WIDF_DEMO_DB -D schema=PUBLIC \
--     -D role_arn=arn:aws:iam::123456789012:role/widf-loader-function-role
-- role_arn is the IAM *role* ARN (arn:aws:iam::...:role/...), not the
-- assumed-role session ARN (arn:aws:sts::...:assumed-role/...). Run setup.sql first.
USE ROLE ACCOUNTADMIN;

-- Idempotent: the user is created once, and its trust and defaults are (re)set
-- every run, so a new role ARN replaces the old one without dropping the user.
CREATE USER IF NOT EXISTS <% user %>
  TYPE = SERVICE
  COMMENT = 'widf-loader: the Lambda function, trusted by its IAM role';
ALTER USER <% user %> SET
  TYPE = SERVICE
  WORKLOAD_IDENTITY = (TYPE = AWS ARN = '<% role_arn %>')
  DEFAULT_ROLE = <% role %>
  DEFAULT_WAREHOUSE = <% warehouse %>;

GRANT USAGE ON WAREHOUSE <% warehouse %> TO ROLE <% role %>;
GRANT USAGE ON DATABASE <% database %> TO ROLE <% role %>;
GRANT USAGE ON SCHEMA <% database %>.<% schema %> TO ROLE <% role %>;
GRANT SELECT, INSERT ON TABLE <% database %>.<% schema %>.RAW_DATA TO ROLE <% role %>;
GRANT SELECT, INSERT ON TABLE <% database %>.<% schema %>.LOAD_HISTORY TO ROLE <% role %>;
GRANT SELECT, INSERT ON TABLE <% database %>.<% schema %>.REJECTED_RECORDS TO ROLE <% role %>;
GRANT ROLE <% role %> TO USER <% user %>;
