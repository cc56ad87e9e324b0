"""The self-contained HTML report with its charts, linked from the asset's metadata."""

import base64

import dagster as dg

from assets import WRITER_POOL
from assets.analytics.table_reads import Select, of_episode, read_selected
from selloff.report.html_report import chart_images, write_selloff_report
from selloff.resources import EpisodesResource, SourceResource, WarehouseResource

_ANALYTICS = ("selloff_rollup", "selloff_windows", "rotation", "valuation_spread",
              "basket_factor_split", "factor_attribution", "claim_verdicts",
              "data_quality_findings")


@dg.asset(
    key=["report", "selloff_report"],
    group_name="report",
    deps=[dg.AssetKey(["analytics", a]) for a in _ANALYTICS],
    pool=WRITER_POOL,
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"html"},
    description="reports/selloff_report.html: waterfall, losses by market and basket, AI "
    "basket market cap, flows, valuation spread, factor attribution, claim verdicts, "
    "data-quality findings.",
)
def selloff_report(source: SourceResource, episodes: EpisodesResource,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    # The charts use the market caps of basket members and market-level flows only: that
    # is what DuckDB hands over, not the 6 M- and 10 M-row facts.
    frames = read_selected(warehouse, {
        **{a: Select("analytics", a) for a in _ANALYTICS},
        "dim_basket_member": Select("marts", "dim_basket_member"),
        "dim_security": Select("marts", "dim_security"),
        "fct_fund_flows_daily": Select("marts", "fct_fund_flows_daily",
                                       where="flow_scope = 'market'"),
    })
    first = episodes.load()[0]
    for a in _ANALYTICS:
        frames[a] = of_episode(frames.get(a), first)
    members = frames.get("dim_basket_member")
    if members is not None:
        frames.update(read_selected(warehouse, {"fct_market_cap_daily": Select(
            "marts", "fct_market_cap_daily", ("security_id", "trade_date", "market_cap_usd"),
            "security_id IN (SELECT id FROM __ids)")},
            ids=members["security_id"].unique().to_list()))
    path = write_selloff_report(frames, warehouse.reports_dir / "selloff_report.html",
                                synthetic=source.is_synthetic)
    images = chart_images(frames, dpi=70)
    charts = {
        f"chart: {name}": dg.MetadataValue.md(
            f"![{name}](data:image/png;base64,{base64.b64encode(png).decode()})")
        for name, png in images.items()
    }
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)),
                                          "bytes": path.stat().st_size, **charts})
