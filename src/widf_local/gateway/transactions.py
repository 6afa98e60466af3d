"""Snowflake's transaction semantics, where DuckDB's differ.

* Table locks: in Snowflake, UPDATE, DELETE and MERGE on a table never run
  concurrently; each holds the table's lock until its transaction ends, and
  at most 20 statements may queue for one lock. DuckDB has optimistic
  concurrency instead, so the gateway keeps the locks itself.
* Read committed: a Snowflake statement sees what was committed before it
  ran; DuckDB's transactions see a snapshot from their first statement. For
  an insert-only MERGE that difference decides whether two deliveries of one
  file both claim it, so the gateway evaluates its NOT MATCHED condition
  against committed data, after taking the lock - as Snowflake does.
* fakesnow rewrites MERGE into several statements that DuckDB refuses inside
  an explicit transaction; an insert-only MERGE is an INSERT ... SELECT
  ... WHERE NOT EXISTS, which runs anywhere.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache

from sqlglot import exp

from widf_local.gateway.accounts import SnowflakeError
from widf_local.gateway.errors import unsupported
from widf_local.gateway.grants import parse, table_key

MAX_LOCK_WAITERS = 20
LOCKING_STATEMENTS = (exp.Update, exp.Delete, exp.Merge)
DML_STATEMENTS = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Copy)


class TableLocks:
    """One lock per table, owned by a session until its transaction ends."""

    def __init__(self, max_waiters: int = MAX_LOCK_WAITERS):
        self.max_waiters = max_waiters
        self._changed = threading.Condition()
        self._holders: dict[str, str] = {}
        self._waiters: Counter[str] = Counter()

    def acquire(self, owner: str, table: str, timeout_seconds: float) -> None:
        with self._changed:
            if self._holders.get(table, owner) == owner:
                self._holders[table] = owner
                return
            if self._waiters[table] >= self.max_waiters:
                raise SnowflakeError(
                    625,
                    f"Table '{table}' is locked by another transaction and this lock has not yet been released. "
                    f"Your statement was aborted because the number of waiters for this lock exceeds the {self.max_waiters} statements limit.",
                    "57014",
                )
            self._waiters[table] += 1
            try:
                free = self._changed.wait_for(lambda: table not in self._holders, timeout_seconds)
            finally:
                self._waiters[table] -= 1
            if not free:
                raise SnowflakeError(
                    625,
                    f"Your statement was aborted because it waited more than LOCK_TIMEOUT ({timeout_seconds:g} seconds) "
                    f"for the lock on table '{table}'.",
                    "57014",
                )
            self._holders[table] = owner

    def release_all(self, owner: str) -> None:
        with self._changed:
            for table in [t for t, o in self._holders.items() if o == owner]:
                del self._holders[table]
            self._changed.notify_all()


def locked_table(statement: exp.Expr, database: str | None, schema: str | None) -> str | None:
    """The table whose lock this statement needs, if it needs one, keyed as its grants are (table_key):
    a lock key of its own could give one table two locks, or two tables one."""
    if not isinstance(statement, LOCKING_STATEMENTS):
        return None
    target = statement.this
    return table_key(target, database, schema) if isinstance(target, exp.Table) else None


@dataclass(frozen=True)
class InsertOnlyMerge:
    """An insert-only MERGE, taken apart into what the gateway runs instead.

    Read committed, for every source row: a row is matched if the target rows committed before the
    statement match it, or the session's own view of the target does (its snapshot and its own
    uncommitted rows). The committed target rows that match some source row (`committed_matches`,
    run outside the session) are written into the insert as a VALUES list, so one INSERT in the
    session inserts exactly the rows neither view matches.
    """

    committed_matches: str  # SELECT <the target's columns the ON clause reads> of committed rows matching a source row
    columns: tuple[str, ...]  # those columns
    alias: str  # the target's name in the ON clause
    insert: exp.Insert  # INSERT ... SELECT ... FROM source WHERE NOT EXISTS (the session's own view)
    on: exp.Expr

    @cached_property
    def insert_unless_matched_here(self) -> str:
        """The INSERT when no committed row matches: the session's own view decides alone."""
        return self.insert.sql(dialect="snowflake")

    def insert_unmatched(self, committed: list[tuple]) -> str:
        """The INSERT, also skipping the source rows that these committed target rows match."""
        if not committed:
            return self.insert_unless_matched_here
        try:
            rows = [exp.tuple_(*(exp.convert(value) for value in row)) for row in committed]
        except ValueError:  # a value sqlglot cannot write as a literal
            raise unsupported(f"MERGE whose ON clause reads a {type(committed[0][0]).__name__} of the target") from None
        names = exp.TableAlias(this=exp.to_identifier(self.alias), columns=[exp.to_identifier(c) for c in self.columns])
        seen = exp.Exists(this=exp.select("1").from_(exp.Values(expressions=rows, alias=names)).where(self.on.copy()))
        statement = self.insert.copy()
        select = statement.expression
        select.set("where", exp.Where(this=exp.and_(select.args["where"].this, exp.not_(seen))))
        return statement.sql(dialect="snowflake")


@lru_cache(maxsize=64)
def insert_only_merge_of(sql: str) -> InsertOnlyMerge | None:
    """insert_only_merge of the statement this text parses to, kept by text (see parse)."""
    statement = parse(sql)
    return None if statement is None else insert_only_merge(statement)


def insert_only_merge(statement: exp.Expr) -> InsertOnlyMerge | None:
    """Rewrite `MERGE ... WHEN NOT MATCHED THEN INSERT` alone; None for any other shape."""
    if not isinstance(statement, exp.Merge):
        return None
    whens = statement.args.get("whens")
    clauses = whens.expressions if isinstance(whens, exp.Whens) else []
    if len(clauses) != 1 or clauses[0].args.get("matched") or clauses[0].args.get("condition"):
        return None
    insert = clauses[0].args.get("then")
    target, source, on = statement.this, statement.args.get("using"), statement.args.get("on")
    if not (isinstance(insert, exp.Insert) and isinstance(target, exp.Table) and source is not None and on is not None):
        return None
    # Bindings must keep their order: allow placeholders only in the source.
    if any(p for p in statement.find_all(exp.Placeholder) if not _inside(p, source)):
        return None
    values = insert.expression.expressions if isinstance(insert.expression, exp.Tuple) else None
    columns = insert.this.expressions if isinstance(insert.this, exp.Tuple) else None
    if values is None or columns is None:
        return None
    alias = target.alias or target.name
    read = sorted({c.name for c in on.find_all(exp.Column) if c.table and c.table.upper() == alias.upper()})
    if not read:
        return None
    target_name = exp.table_(target.name, db=target.db or None, catalog=target.catalog or None)
    matched = exp.Exists(this=exp.select("1").from_(target.copy()).where(on.copy()))
    select = exp.select(*[v.copy() for v in values]).from_(source.copy()).where(exp.not_(matched))
    committed = (
        exp.select(*[exp.column(c, table=alias) for c in read])
        .from_(target.copy())
        .where(exp.Exists(this=exp.select("1").from_(source.copy()).where(on.copy())))
    )
    return InsertOnlyMerge(
        committed_matches=committed.sql(dialect="snowflake"),
        columns=tuple(read),
        alias=alias,
        insert=exp.insert(select, target_name, columns=[c.name for c in columns]),
        on=on.copy(),
    )


# What a committed read may hold to run on DuckDB as sqlglot writes it: columns, bound values and literals,
# casts to the types below, comparisons and boolean logic, subqueries. fakesnow's rewrites of those are a
# no-op; a function, a path or another type needs them (INT is 32 bits in DuckDB, NUMBER(38, 0) in
# Snowflake; VARCHAR(n) would not refuse a longer string), so such a read goes through fakesnow.
_PLAIN_READ = (
    exp.Select, exp.Union, exp.From, exp.Where, exp.Subquery, exp.Table, exp.TableAlias, exp.Alias, exp.Column,
    exp.Identifier, exp.Placeholder, exp.Literal, exp.Null, exp.Boolean, exp.Cast, exp.DataType, exp.EQ, exp.NEQ,
    exp.In, exp.And, exp.Or, exp.Not, exp.Paren, exp.Exists,
)  # fmt: skip
_PLAIN_CASTS = {
    exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.BOOLEAN, exp.DataType.Type.DATE,
    exp.DataType.Type.DOUBLE, exp.DataType.Type.TIMESTAMPLTZ, exp.DataType.Type.TIMESTAMPTZ,
}  # fmt: skip


@lru_cache(maxsize=64)
def plain_read_in_duckdb(sql: str, database: str | None, schema: str | None) -> str | None:
    """The read in DuckDB's SQL, its tables named whole, when fakesnow's rewrites would leave it as it is.

    None for any other read (a function, a semi-structured value, INFORMATION_SCHEMA, a name the
    session cannot resolve): fakesnow runs those, and answers in Snowflake's words."""
    tree = parse(sql)
    if tree is None or not all(isinstance(node, _PLAIN_READ) for node in tree.walk()):
        return None
    if any(node.this not in _PLAIN_CASTS or node.expressions for node in tree.find_all(exp.DataType)):
        return None
    tree = tree.copy()
    for table in tree.find_all(exp.Table):
        catalog, db = table.catalog or database, table.db or schema
        if not (catalog and db) or db.upper() == "INFORMATION_SCHEMA":
            return None
        table.set("catalog", exp.to_identifier(catalog))
        table.set("db", exp.to_identifier(db))
    return tree.sql(dialect="duckdb")


def _inside(node: exp.Expr, ancestor: exp.Expr) -> bool:
    parent: exp.Expr | None = node
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parent
    return False
