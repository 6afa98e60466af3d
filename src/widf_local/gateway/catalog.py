"""What fakesnow's DuckDB holds, asked directly: databases, schemas, tables.

The account layer asks it whether a granted object exists and which tables
`ALL TABLES IN SCHEMA` means; the dynamic tables run their refreshes through
it. Each call uses its own DuckDB cursor (cursors are DuckDB's unit of
thread safety), and never creates a database as a side effect - unlike
fakesnow's own connect, which attaches any database it is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fakesnow.fakes import FakeSnowflakeConnection
from fakesnow.instance import FakeSnow

from widf_local.gateway.grants import Securable
from widf_local.gateway.names import written


class EngineCatalog:
    def __init__(self, fs: FakeSnow, hidden_tables: Callable[[], set[str]] = set):
        self.fs = fs
        self.hidden_tables = hidden_tables  # tables that are not TABLES (the dynamic tables' storage)
        self.stage_names: Callable[[], set[str]] = set  # the named stages (`stages.StageStore`), DB.SCHEMA.NAME
        self.format_names: Callable[[], set[str]] = set  # the named file formats, likewise

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        cursor = self.fs.duck_conn.cursor()
        try:
            return cursor.execute(sql, list(params)).fetchall()
        finally:
            cursor.close()

    def exists(self, on: Securable) -> bool:
        if on.kind in ("ACCOUNT", "WAREHOUSE"):
            return True
        if on.kind == "STAGE":
            return on.name in self.stage_names()
        if on.kind == "FILE FORMAT":
            return on.name in self.format_names()
        names = on.name.split(".", 2)
        if on.kind == "DATABASE":
            return bool(self._rows("SELECT 1 FROM information_schema.schemata WHERE catalog_name = ?", names))
        if on.kind == "SCHEMA":
            return bool(self._rows("SELECT 1 FROM information_schema.schemata WHERE catalog_name = ? AND schema_name = ?", names))
        return bool(
            self._rows("SELECT 1 FROM information_schema.tables WHERE table_catalog = ? AND table_schema = ? AND table_name = ?", names)
        )

    def databases(self) -> list[str]:
        """The databases made through fakesnow (each has its `_fs_information_schema`), by name."""
        rows = self._rows(
            "SELECT DISTINCT catalog_name FROM information_schema.schemata WHERE schema_name = '_fs_information_schema' ORDER BY 1"
        )
        return [name for (name,) in rows if name != "_fs_global"]

    def schemas(self, database: str) -> list[str]:
        """A database's own schemas: not DuckDB's (main, pg_catalog, information_schema) nor fakesnow's."""
        rows = self._rows(
            "SELECT schema_name FROM information_schema.schemata WHERE catalog_name = ? "
            "AND schema_name NOT IN ('main', 'pg_catalog', 'information_schema', '_fs_information_schema') ORDER BY 1",
            [database],
        )
        return [name for (name,) in rows]

    def tables(self, database: str | None = None, schema: str | None = None) -> list[str]:
        """db.schema.table of every base table (a dynamic table's storage among them), in SHOW TABLES's order."""
        where, params = ["table_type = 'BASE TABLE'", "table_schema NOT IN ('_fs_information_schema', 'main')"], []
        for column, value in (("table_catalog", database), ("table_schema", schema)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = self._rows(
            "SELECT table_catalog || '.' || table_schema || '.' || table_name FROM information_schema.tables "
            f"WHERE {' AND '.join(where)} AND table_catalog NOT IN ('_fs_global', 'memory', 'system', 'temp') "
            "ORDER BY table_catalog, table_schema, table_name",
            params,
        )
        return [name for (name,) in rows]

    def tables_in(self, container: Securable) -> list[str]:
        names = container.name.split(".")
        where = "table_catalog = ?" + (" AND table_schema = ?" if container.kind == "SCHEMA" else "")
        rows = self._rows(
            f"SELECT table_catalog || '.' || table_schema || '.' || table_name FROM information_schema.tables "
            f"WHERE {where} AND table_type = 'BASE TABLE' AND table_schema NOT IN ('_fs_information_schema', 'main') ORDER BY 1",
            names,
        )
        hidden = self.hidden_tables()
        return [name for (name,) in rows if name not in hidden]

    def connect(self, database: str | None = None, schema: str | None = None) -> FakeSnowflakeConnection:
        return FakeSnowflakeConnection(
            self.fs.duck_conn.cursor(), self.fs.results_cache, database, schema, create_database=False, create_schema=False
        )

    def run(self, statements: Sequence[str], *, atomic: bool = False) -> list[tuple]:
        """Run Snowflake SQL through fakesnow's transforms; the last statement's rows."""
        connection = self.connect()
        try:
            cursor = connection.cursor()
            if atomic:
                cursor.execute("BEGIN TRANSACTION")
            try:
                for statement in statements:
                    cursor.execute(statement)
                rows: list[tuple] = cursor.fetchall()  # type: ignore[assignment] # a plain cursor: tuples, not dicts
                if atomic:
                    cursor.execute("COMMIT")
            except BaseException:
                if atomic:
                    connection._duck_conn.rollback()  # noqa: SLF001 - the DuckDB transaction this cursor opened
                raise
            return rows
        finally:
            connection.close()

    def count_rows(self, table: str) -> int:
        return int(self._rows(f"SELECT COUNT(*) FROM {'.'.join(written(p) for p in table.split('.'))}")[0][0])

    def drop_database(self, name: str) -> None:
        # fakesnow cannot drop a database (DuckDB's word for it is DETACH); its data lives in memory and goes with it.
        self._rows(f"DETACH DATABASE IF EXISTS {written(name)}")
