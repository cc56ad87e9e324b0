"""A small, valid snapshot (one CSV per dataset) for tests of the landing gate.

Every row is true to its contract, so a test breaks exactly one cell and knows which
dataset, row and rule the gate must name. Dates are in 2025, all trading days.
"""

from __future__ import annotations

import json
from pathlib import Path

GOOD: dict[str, str] = {
    "securities": (
        "security_id,market,exchange_mic,symbol,name,name_local,currency,sector,industry,"
        "listing_board,is_ai,cik,source\n"
        "US:NVDA,US,XNAS,NVDA,NVIDIA,,USD,Technology,Semiconductors,,true,1045810,test\n"
        "CN:688256.SH,CN,XSHG,688256.SH,Cambricon,寒武纪,CNY,Technology,Semiconductors,STAR,"
        "true,,test\n"
        "KR:005930,KR,XKRX,005930,Samsung Electronics,삼성전자,KRW,Technology,Semiconductors,"
        "KOSPI,true,,test\n"
    ),
    "indexes": (
        "index_id,market,name,currency,source\n"
        "US:SPX,US,S&P 500,USD,test\n"
        "CN:000688.SH,CN,STAR 50,CNY,test\n"
    ),
    "prices_daily": (
        "security_id,trade_date,open,high,low,close,adj_close,volume,currency,source\n"
        "US:NVDA,2025-11-03,200,210,195,206.88,206.88,1000,USD,test\n"
        "US:NVDA,2025-11-04,205,206,195,198.69,198.69,1000,USD,test\n"
        "CN:688256.SH,2025-11-03,1400,1420,1350,1380.5,,500,CNY,test\n"
        "KR:005930,2025-11-03,106000,108000,105000,107500,,20000,KRW,test\n"
    ),
    "index_levels_daily": (
        "index_id,trade_date,open,high,low,close,source\n"
        "US:SPX,2025-11-03,6850,6880,6820,6851.97,test\n"
        "CN:000688.SH,2025-11-03,1450,1470,1430,1460.2,test\n"
    ),
    "shares_outstanding": (
        "security_id,as_of_date,share_class,shares,filed_date,source\n"
        "US:NVDA,2025-11-14,total,24300000000,2025-11-19,test\n"
        "CN:688256.SH,2025-09-30,total,418000000,2025-10-20,test\n"
    ),
    "fundamentals": (
        "security_id,metric,period_start,period_end,fiscal_year,fiscal_period,filed_date,"
        "value_basis,value,unit,form,accession,source\n"
        "US:NVDA,revenue,2025-07-28,2025-10-26,2026,Q3,2025-11-19,discrete,57006000000,USD,"
        "10-Q,0001045810-25-000230,test\n"
        "US:NVDA,eps_diluted,2025-07-28,2025-10-26,2026,Q3,2025-11-19,discrete,1.30,USD/share,"
        "10-Q,0001045810-25-000230,test\n"
    ),
    "fund_flows_daily": (
        "flow_scope,entity_id,trade_date,investor_type,period,net_buy_value,currency,source\n"
        "market,KR:KOSPI,2025-11-03,foreign,day,-1200000000000,KRW,test\n"
        "market,JP:TSE,2025-11-07,foreign,week,-500000000000,JPY,test\n"
    ),
    "fx_rates_daily": (
        "trade_date,currency,usd_per_unit,source\n"
        "2025-11-03,JPY,0.0065,test\n"
        "2025-11-03,KRW,0.0007,test\n"
        "2025-11-03,CNY,0.1404,test\n"
    ),
    "index_valuation_daily": (
        "index_id,trade_date,pe_ttm,pb,dividend_yield,source\n"
        "CN:000688.SH,2025-11-03,150.2,7.1,0.3,test\n"
    ),
    "baskets": (
        "basket_id,security_id,valid_from,valid_to,source\n"
        "US_AI,US:NVDA,2025-01-01,,test\n"
        "CN_AI,CN:688256.SH,2025-01-01,2025-12-31,test\n"
    ),
}


def write_good_snapshot(folder: Path, overrides: dict[str, str | bytes] | None = None) -> Path:
    """Write GOOD (with `overrides`: dataset -> file text or bytes) as a snapshot folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for dataset, text in {**GOOD, **(overrides or {})}.items():
        path = folder / f"{dataset}.csv"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    (folder / "manifest.json").write_text(json.dumps({"name": "gate_test"}), encoding="utf-8")
    return folder


def set_cell(text: str, row: int, column: str, value: str) -> str:
    """`text` (a CSV) with the cell of data row `row` (1-based) and `column` set to `value`."""
    lines = text.splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    # A value with a comma is quoted, so it stays one cell and reaches the number parser.
    cells[header.index(column)] = f'"{value}"' if "," in value else value
    lines[row] = ",".join(cells)
    return "\n".join(lines) + "\n"
