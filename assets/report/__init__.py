from assets.report.fact_check import fact_check
from assets.report.publish import published_warehouse

report_assets = [fact_check, published_warehouse]

__all__ = ["report_assets"]
