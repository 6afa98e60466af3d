"""A local Snowflake: fakesnow's wire protocol and DuckDB engine behind our own
login (workload identity, local admin) and account-object layer."""
