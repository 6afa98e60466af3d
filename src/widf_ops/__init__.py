"""The administrator's side: the SQL scripts, the target tables, `doctor`,
backfill and dead-letter replay, and the dashboard. Not in the Lambda artefact."""
