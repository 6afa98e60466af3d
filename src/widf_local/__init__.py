"""The local stack: moto, the Snowflake gateway, the Lambda runner, faults and
the demo's fixtures. Never imported by the loader, and imports nothing else of
ours (tests/project/test_layering.py)."""
