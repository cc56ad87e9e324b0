"""The Parquet lake as Dagster assets: the raw layer and the marts, for any engine to read."""

from assets.lake.assets import lake_assets, lake_marts, lake_raw

__all__ = ["lake_assets", "lake_marts", "lake_raw"]
