"""What each table and column of the warehouse holds, written into DuckDB as comments.

The descriptions live beside the schemas they describe: raw datasets in
`selloff/contracts.py`, the trading calendar in `selloff/calendars.py`, the analytics
tables in `selloff/analytics/tables.py`; the dbt models carry theirs in their YAML
(`persist_docs` writes them). This module only gathers the first three, so
`duckdb_columns()` in the published file, the Dagster UI's column schemas and the lake
all say the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from selloff.analytics import tables as analytics_tables
from selloff.calendars import CALENDAR_COLUMN_DOCS, CALENDAR_SCHEMA, CALENDAR_TABLE_DOC
from selloff.contracts import DATASETS

# The schemas whose every table and column must carry a comment in the published file.
DOCUMENTED_SCHEMAS: tuple[str, ...] = ("raw", "staging", "marts", "analytics")


@dataclass(frozen=True)
class ColumnDoc:
    name: str
    dtype: pl.DataType
    description: str


@dataclass(frozen=True)
class TableDoc:
    schema: str
    table: str
    description: str
    columns: tuple[ColumnDoc, ...]


def raw_tables() -> dict[str, TableDoc]:
    """raw.<dataset> for every contract, plus raw.trading_calendar."""
    out = {
        name: TableDoc("raw", name, d.description,
                       tuple(ColumnDoc(c.name, c.dtype, d.column_doc(c.name)) for c in d.columns))
        for name, d in DATASETS.items()
    }
    out["trading_calendar"] = TableDoc(
        "raw", "trading_calendar", CALENDAR_TABLE_DOC,
        tuple(ColumnDoc(n, t, CALENDAR_COLUMN_DOCS[n]) for n, t in CALENDAR_SCHEMA.items()))
    return out


def analytics_table_docs() -> dict[str, TableDoc]:
    """analytics.<table> for every table the analytics assets write."""
    return {
        name: TableDoc("analytics", name, analytics_tables.TABLE_DOCS[name],
                       tuple(ColumnDoc(c, t, analytics_tables.column_doc(name, c))
                             for c, t in schema.items()))
        for name, schema in analytics_tables.TABLE_SCHEMAS.items()
    }


def documented_tables() -> dict[tuple[str, str], TableDoc]:
    """Every table this module describes, by (schema, table)."""
    docs = [*raw_tables().values(), *analytics_table_docs().values()]
    return {(d.schema, d.table): d for d in docs}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def comment_statements(con: duckdb.DuckDBPyConnection) -> list[str]:
    """COMMENT ON statements for the described tables that exist in `con`, and for their
    columns that exist (a table written by an older run may lack a new column)."""
    present: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in con.execute(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name IN ('raw', 'analytics')"
    ).fetchall():
        present.setdefault((schema, table), set()).add(column)
    out = []
    for key, doc in documented_tables().items():
        if key not in present:
            continue
        target = f"{_quote(doc.schema)}.{_quote(doc.table)}"
        out.append(f"COMMENT ON TABLE {target} IS {_literal(doc.description)}")
        out.extend(f"COMMENT ON COLUMN {target}.{_quote(c.name)} IS {_literal(c.description)}"
                   for c in doc.columns if c.name in present[key])
    return out


def apply_comments(con: duckdb.DuckDBPyConnection) -> int:
    """Comment every described raw and analytics table and column of `con`, in one
    transaction; the number of statements. A table replaced since (CREATE OR REPLACE)
    loses its comments, so publication calls this right before it copies the file."""
    statements = comment_statements(con)
    con.execute("BEGIN TRANSACTION")
    try:
        for statement in statements:
            con.execute(statement)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return len(statements)


def uncommented(con: duckdb.DuckDBPyConnection,
                schemas: tuple[str, ...] = DOCUMENTED_SCHEMAS) -> list[str]:
    """`schema.table` and `schema.table.column` in `schemas` without a comment."""
    listed = ", ".join(_literal(s) for s in schemas)
    tables = con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
        f"WHERE database_name = current_database() AND schema_name IN ({listed}) "
        "AND coalesce(comment, '') = '' UNION ALL "
        "SELECT schema_name || '.' || view_name FROM duckdb_views() "
        f"WHERE database_name = current_database() AND schema_name IN ({listed}) "
        "AND coalesce(comment, '') = '' AND NOT internal").fetchall()
    columns = con.execute(
        "SELECT schema_name || '.' || table_name || '.' || column_name FROM duckdb_columns() "
        f"WHERE database_name = current_database() AND schema_name IN ({listed}) "
        "AND coalesce(comment, '') = '' ORDER BY 1").fetchall()
    return sorted(r[0] for r in tables) + [r[0] for r in columns]
