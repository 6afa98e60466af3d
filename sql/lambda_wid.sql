-- widf-loader: the service user the Lambda function logs in as, by workload
-- identity (no password, no key), and the least privilege its role needs.
--   widf-loader snow lambda-wid            (takes the role ARN from the deployed stack)
--   snow sql -f sql/lambda_wid.sql -D user=LAMBDA_LOADER_BOT -D role=WIDF_DEMO_ROLE \
--     -D warehouse=COMPUTE_WH -D database=WIDF_DEMO_DB -D schema=PUBLIC \
--     -D role_arn=arn:aws:iam::123456789012:role/widf-loader-function-role
-- role_arn is the IAM *role* ARN (arn:aws:iam::...:role/...), not the
-- assumed-role session ARN (arn:aws:sts::...:assumed-role/...).
USE ROLE ACCOUNTADMIN;

CREATE OR REPLACE USER <% user %>
  TYPE = SERVICE
  WORKLOAD_IDENTITY = (TYPE = AWS ARN = '<% role_arn %>')
  DEFAULT_ROLE = <% role %>
  DEFAULT_WAREHOUSE = <% warehouse %>
  COMMENT = 'widf-loader: the Lambda function, trusted by its IAM role';

GRANT USAGE ON WAREHOUSE <% warehouse %> TO ROLE <% role %>;
GRANT USAGE ON DATABASE <% database %> TO ROLE <% role %>;
GRANT USAGE ON SCHEMA <% database %>.<% schema %> TO ROLE <% role %>;
GRANT SELECT, INSERT ON TABLE <% database %>.<% schema %>.RAW_DATA TO ROLE <% role %>;
GRANT SELECT, INSERT ON TABLE <% database %>.<% schema %>.LOAD_HISTORY TO ROLE <% role %>;
GRANT INSERT ON TABLE <% database %>.<% schema %>.REJECTED_RECORDS TO ROLE <% role %>;
GRANT ROLE <% role %> TO USER <% user %>;
