"""Dagster assets: thin wrappers that call the selloff library and write the warehouse."""

WRITER_POOL = "duckdb_writer"
