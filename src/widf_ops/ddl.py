"""Tables the pipeline configuration adds, created by the administrator.

`widf-loader snow setup` creates every target table the configuration names
(beyond the shipped RAW_DATA; each begins with RAW_DATA's columns), and `snow
lambda-wid` grants the loader's role exactly INSERT and SELECT on them: the
loader itself never creates anything.
Every name here is a validated identifier and every type one of an allowed
few (see pipeline_config), so the text below is safe to run.
"""

from __future__ import annotations

from widf_loader.pipeline_config import PipelineConfig
from widf_loader.warehouse import RAW_DATA_TABLE, REJECTED_RECORDS_TABLE
from widf_ops.admin import SnowflakeNames

SHIPPED_TABLES = ("RAW_DATA", "LOAD_HISTORY", "REJECTED_RECORDS")


def _create(names: SnowflakeNames, table: str, columns: list[str]) -> str:
    return f"CREATE TABLE IF NOT EXISTS {names.database}.{names.schema}.{table} ({', '.join(columns)})"


def create_target_tables(config: PipelineConfig, names: SnowflakeNames) -> list[str]:
    statements, seen = [], set(SHIPPED_TABLES)
    for target in config.targets:
        if target.table not in seen:
            seen.add(target.table)
            columns = [f"{n} {t}" for n, t in RAW_DATA_TABLE] + [f"{c.name} {c.type}" for c in target.columns]
            statements.append(_create(names, target.table, columns))
    if config.rejected_records_table not in seen:
        statements.append(_create(names, config.rejected_records_table, [f"{n} {t}" for n, t in REJECTED_RECORDS_TABLE]))
    return statements


def grant_target_tables(config: PipelineConfig, names: SnowflakeNames) -> list[str]:
    """Exactly what the loader does to the configured tables: insert rows (and read them back)."""
    where = f"{names.database}.{names.schema}"
    grants = [f"GRANT SELECT, INSERT ON TABLE {where}.{t} TO ROLE {names.role}" for t in config.tables if t not in SHIPPED_TABLES]
    if config.rejected_records_table not in SHIPPED_TABLES:
        grants.append(f"GRANT SELECT, INSERT ON TABLE {where}.{config.rejected_records_table} TO ROLE {names.role}")
    return grants
