"""The Dagster catalog of every asset: owners, column schemas and table names, from the
descriptions in the library (selloff/catalog.py) and dbt's YAML, in one place."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import dagster as dg

from selloff.catalog import TableDoc, documented_tables

# Who answers for each layer (the UI's "Owners" and its owner filter).
OWNERS: dict[str, list[str]] = {
    "extract": ["team:data-engineering"],
    "staging": ["team:data-engineering"],
    "marts": ["team:data-engineering"],
    "lake": ["team:data-engineering"],
    "publish": ["team:data-engineering"],
    "analytics": ["team:research"],
    "report": ["team:research"],
}
TABLE_SCHEMAS = ("raw", "staging", "marts", "analytics")


def column_schema(doc: TableDoc) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(c.name, _type_name(c.dtype), description=c.description)
        for c in doc.columns])


def _type_name(dtype: object) -> str:
    # The DuckDB type the column lands as, which is what an analyst sees in DESCRIBE.
    names = {"String": "VARCHAR", "Float64": "DOUBLE", "Int64": "BIGINT", "Date": "DATE",
             "Boolean": "BOOLEAN"}
    text = str(dtype)
    return names.get(text, text.upper())


def _catalogued(spec: dg.AssetSpec) -> dg.AssetSpec:
    key = spec.key.path
    extra: dict[str, object] = {}
    if len(key) == 2 and key[0] in TABLE_SCHEMAS:
        if "dagster/table_name" not in spec.metadata:
            extra["dagster/table_name"] = f"selloff.{key[0]}.{key[1]}"
        doc = documented_tables().get((key[0], key[1]))
        if doc is not None:
            extra["dagster/column_schema"] = column_schema(doc)
    owners = spec.owners or OWNERS.get(spec.group_name or "", [])
    return spec.replace_attributes(owners=owners, metadata={**spec.metadata, **extra})


def with_catalog(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """`assets` with owners, table names and column schemas (raw and analytics from the
    library; dbt models keep the schema dagster-dbt reads from their YAML), and links to
    the source file that defines each."""
    mapped = dg.map_asset_specs(_catalogued, list(assets))
    with warnings.catch_warnings():
        # Code references are "beta" in Dagster 1.13; the links are what the UI shows.
        warnings.simplefilter("ignore", dg.BetaWarning)
        return list(dg.with_source_code_references(mapped))
