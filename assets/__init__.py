"""Dagster assets: thin wrappers that call the selloff library and write the warehouse."""

WRITER_POOL = "duckdb_writer"
# The dbt models' multi-asset (orchestration/dbt.py): its op and step name.
DBT_ASSETS_NAME = "selloff_dbt_models"
