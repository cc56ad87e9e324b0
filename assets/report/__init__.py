from assets.report.fact_check import fact_check
from assets.report.publish import published_warehouse
from assets.report.selloff_report import selloff_report

report_assets = [fact_check, selloff_report, published_warehouse]

__all__ = ["report_assets"]
