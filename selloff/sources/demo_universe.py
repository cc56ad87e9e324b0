"""The security universe of the synthetic demo market (selloff.sources.demo).

The 80 core names borrow real tickers so that the claim registry's default baskets and
named securities (Nvidia, Meta, Cambricon, ...) resolve against the demo exactly as they do
against real data; every figure attached to them is simulated, and every row the demo
produces says so in its `source` column. Beyond the core, generated names fill the universe.

Each market the demo simulates is a `DemoMarket` entry here (its volatility, trading lot,
board, random stream, ...) on top of its registry entry (selloff/markets.py), plus its core
names, its indexes (`DEMO_INDEXES`) and its currency's path (`DEMO_FX`): adding a market to
the demo is adding data to this module, not code.

Slightly over 400 lines: it is data (the core names, their sectors and baskets), not logic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selloff.markets import MARKET_CURRENCY, market, market_of

SECTORS = ("AI Chips", "Hyperscalers", "AI Hardware", "Banks", "Coal", "Consumer", "Utilities")
AI_SECTORS = frozenset(SECTORS[:3])
CURRENCY = MARKET_CURRENCY  # one registry of market facts (selloff/markets.py)


@dataclass(frozen=True)
class DemoMarket:
    """How the demo simulates one market of the registry.

    `stream` numbers the market's random streams: a market's draws depend only on it and
    the seed, so adding a market never moves another's figures (never reuse a number).
    `extra_share` is the market's share of generated names beyond the core; `code_pool`
    (first, stop, step, width) numbers them where codes are plain numbers (US and CN names
    have generators of their own). `report_forms` names the Q1, half-year, Q3 and annual
    reports (US filings are 10-Q/10-K). `ai_basket` collects its AI names, if set.
    """

    code: str
    stream: int
    market_vol: float  # daily volatility of the market factor
    episode_sens: float  # how hard the market takes the scripted sell-off
    episode_market_share: float  # share of the AI move the broad market takes in it
    turnover: tuple[float, float]  # (AI, other): daily share of the float traded
    tick: float
    lot: float
    price_scale: float  # typical price of a generated name, local currency
    mcap_scale_bn: float  # typical cap of a generated name, local currency bn
    extra_share: float
    board: str
    report_forms: tuple[str, str, str, str] = ("", "", "", "")
    fye: int = 12  # fiscal year-end month of generated names (US draws its own)
    code_pool: tuple[int, int, int, int] | None = None
    ai_basket: str | None = None
    # True for the first four markets only: their filings share one random stream and their
    # core names come before the generated ones, as before markets were data, so their
    # figures (and the generated US names' CIKs, numbered by position) stay as they were.
    # A market added since draws its filings from its own stream, its names after those.
    legacy_order: bool = False

    @property
    def mic(self) -> str:
        """The market's main exchange (US and CN names pick theirs by code)."""
        return market(self.code).mics[0]


DEMO_MARKETS: dict[str, DemoMarket] = {d.code: d for d in (
    DemoMarket("US", 1, 0.009, 1.0, 0.3, (0.008, 0.005), 0.01, 1.0, 60.0, 8.0, 0.40, "NYSE",
               legacy_order=True),
    DemoMarket("CN", 2, 0.010, 0.65, 0.7, (0.015, 0.004), 0.01, 100.0, 25.0, 20.0, 0.35,
               "Main Board", ("Q1 report", "interim report", "Q3 report", "annual report"),
               legacy_order=True),
    DemoMarket("KR", 3, 0.011, 1.0, 0.35, (0.006, 0.003), 1.0, 1.0, 40000.0, 1500.0, 0.10,
               "KOSPI", ("quarterly report", "half-year report", "quarterly report",
                         "business report"), code_pool=(10000, 100000, 10, 6), ai_basket="KR_AI",
               legacy_order=True),
    DemoMarket("JP", 4, 0.010, 1.0, 0.35, (0.006, 0.004), 1.0, 100.0, 2500.0, 300.0, 0.15,
               "Prime", ("quarterly report", "quarterly report", "quarterly report",
                         "annual securities report"), fye=3, code_pool=(1301, 10000, 1, 4),
               ai_basket="JP_AI", legacy_order=True),
    # Taiwan: TAIEX is dominated by TSMC, so the broad market takes much of the AI move.
    # No generated names (extra_share 0), so the other markets' generated names stay as
    # they were; its core names are below.
    DemoMarket("TW", 5, 0.011, 0.9, 0.5, (0.005, 0.003), 0.01, 1000.0, 80.0, 60.0, 0.0,
               "TWSE", ("Q1 report", "half-year report", "Q3 report", "annual report"),
               code_pool=(1101, 10000, 1, 4), ai_basket="TW_AI"),
)}


@dataclass(frozen=True)
class SecuritySpec:
    """One simulated security; prices and caps are at the anchor date (the 2025 AI peak).

    `price` is in the post-split basis; `mcap_bn` is in billions of local currency;
    `pe` < 0 marks a loss-maker (|pe| then sets the size of the loss); `fye` is the fiscal
    year-end month; `gamma` overrides the sector's loading on the AI factor.
    """

    security_id: str
    name: str
    sector: str
    industry: str
    price: float
    mcap_bn: float
    pe: float
    name_local: str | None = None
    fye: int = 12
    gamma: float | None = None

    @property
    def market(self) -> str:
        return market_of(self.security_id)

    @property
    def code(self) -> str:
        return self.security_id.split(":", 1)[1]


def _s(sid: str, name: str, sector: str, industry: str, price: float, mcap_bn: float,
       pe: float, local: str | None = None, fye: int = 12, gamma: float | None = None
       ) -> SecuritySpec:
    return SecuritySpec(sid, name, sector, industry, price, mcap_bn, pe, local, fye, gamma)


CORE: tuple[SecuritySpec, ...] = (
    # United States (USD, caps in USD bn)
    _s("US:NVDA", "Nvidia", "AI Chips", "Semiconductors", 207, 5030, 55, fye=1, gamma=1.3),
    _s("US:AVGO", "Broadcom", "AI Chips", "Semiconductors", 380, 1790, 75, fye=10, gamma=1.4),
    _s("US:AMD", "Advanced Micro Devices", "AI Chips", "Semiconductors", 255, 415, 110, gamma=1.6),
    _s("US:MU", "Micron Technology", "AI Chips", "Semiconductors", 220, 245, 28, fye=8, gamma=1.5),
    _s("US:INTC", "Intel", "AI Chips", "Semiconductors", 40, 175, -60, gamma=0.9),
    _s("US:MSFT", "Microsoft", "Hyperscalers", "Software", 541, 4030, 38, fye=6, gamma=0.6),
    _s("US:GOOGL", "Alphabet", "Hyperscalers", "Interactive Media", 275, 3330, 27, gamma=0.9),
    _s("US:AMZN", "Amazon.com", "Hyperscalers", "Broadline Retail", 230, 2450, 34, gamma=0.7),
    _s("US:META", "Meta Platforms", "Hyperscalers", "Interactive Media", 751, 1890, 27, gamma=0.8),
    _s("US:ORCL", "Oracle", "Hyperscalers", "Software", 275, 780, 62, fye=5, gamma=1.3),
    _s("US:AAPL", "Apple", "AI Hardware", "Technology Hardware", 269, 3990, 40, fye=9, gamma=0.4),
    _s("US:TSLA", "Tesla", "AI Hardware", "Automobiles", 461, 1530, 200, gamma=1.0),
    _s("US:SMCI", "Super Micro Computer", "AI Hardware", "Technology Hardware", 52, 31, 30,
       fye=6, gamma=1.5),
    _s("US:DELL", "Dell Technologies", "AI Hardware", "Technology Hardware", 160, 108, 22,
       fye=1, gamma=1.1),
    _s("US:ANET", "Arista Networks", "AI Hardware", "Communications Equipment", 160, 201, 55,
       gamma=1.3),
    _s("US:MDAI", "Spectral AI", "AI Hardware", "Health Care Equipment", 2.2, 0.06, -4, gamma=1.0),
    _s("US:JPM", "JPMorgan Chase", "Banks", "Banks", 310, 850, 15),
    _s("US:BAC", "Bank of America", "Banks", "Banks", 53, 395, 14),
    _s("US:WFC", "Wells Fargo", "Banks", "Banks", 87, 280, 14),
    _s("US:C", "Citigroup", "Banks", "Banks", 101, 185, 13),
    _s("US:BTU", "Peabody Energy", "Coal", "Coal & Consumable Fuels", 27, 3.3, 10),
    _s("US:CNR", "Core Natural Resources", "Coal", "Coal & Consumable Fuels", 80, 4.2, 12),
    _s("US:WMT", "Walmart", "Consumer", "Consumer Staples Retail", 101, 805, 38, fye=1),
    _s("US:KO", "Coca-Cola", "Consumer", "Beverages", 69, 297, 23),
    _s("US:PG", "Procter & Gamble", "Consumer", "Household Products", 151, 355, 23, fye=6),
    _s("US:MCD", "McDonald's", "Consumer", "Restaurants", 300, 214, 26),
    _s("US:NEE", "NextEra Energy", "Utilities", "Electric Utilities", 82, 169, 24),
    _s("US:DUK", "Duke Energy", "Utilities", "Electric Utilities", 124, 96, 20),
    _s("US:SO", "Southern Company", "Utilities", "Electric Utilities", 94, 103, 21),
    # China A-shares (CNY, caps in CNY bn)
    _s("CN:688256.SH", "Cambricon Technologies", "AI Chips", "半导体", 1450, 606, 150, "寒武纪", gamma=1.8),
    _s("CN:688981.SH", "SMIC", "AI Chips", "半导体", 125, 1000, 200, "中芯国际", gamma=1.3),
    _s("CN:688041.SH", "Hygon Information", "AI Chips", "半导体", 260, 605, 180, "海光信息", gamma=1.4),
    _s("CN:688012.SH", "AMEC", "AI Chips", "半导体设备", 300, 188, 100, "中微公司", gamma=1.2),
    _s("CN:688008.SH", "Montage Technology", "AI Chips", "半导体", 140, 160, 75, "澜起科技", gamma=1.2),
    _s("CN:002371.SZ", "Naura Technology", "AI Chips", "半导体设备", 470, 340, 50, "北方华创", gamma=1.0),
    _s("CN:603501.SH", "OmniVision (Will Semi)", "AI Chips", "半导体", 140, 170, 45, "豪威集团", gamma=0.9),
    _s("CN:300308.SZ", "Zhongji Innolight", "AI Hardware", "通信设备", 560, 620, 60, "中际旭创", gamma=1.7),
    _s("CN:300502.SZ", "Eoptolink", "AI Hardware", "通信设备", 360, 360, 50, "新易盛", gamma=1.8),
    _s("CN:300394.SZ", "TFC Optical", "AI Hardware", "通信设备", 170, 130, 75, "天孚通信", gamma=1.5),
    _s("CN:300476.SZ", "Victory Giant", "AI Hardware", "元件", 300, 260, 55, "胜宏科技", gamma=1.6),
    _s("CN:601138.SH", "Foxconn Industrial Internet", "AI Hardware", "消费电子", 66, 1300, 48,
       "工业富联", gamma=1.2),
    _s("CN:000977.SZ", "Inspur Information", "AI Hardware", "计算机设备", 70, 103, 45, "浪潮信息", gamma=1.2),
    _s("CN:000063.SZ", "ZTE", "AI Hardware", "通信设备", 45, 215, 30, "中兴通讯", gamma=0.8),
    _s("CN:601398.SH", "ICBC", "Banks", "银行", 7.6, 2700, 7, "工商银行"),
    _s("CN:601288.SH", "Agricultural Bank of China", "Banks", "银行", 6.9, 2400, 8, "农业银行"),
    _s("CN:601939.SH", "China Construction Bank", "Banks", "银行", 9.4, 2400, 7, "建设银行"),
    _s("CN:600036.SH", "China Merchants Bank", "Banks", "银行", 42, 1060, 7, "招商银行"),
    _s("CN:601988.SH", "Bank of China", "Banks", "银行", 5.6, 1800, 7.5, "中国银行"),
    _s("CN:000001.SZ", "Ping An Bank", "Banks", "银行", 11.5, 223, 5, "平安银行"),
    _s("CN:601166.SH", "Industrial Bank", "Banks", "银行", 21, 440, 5.5, "兴业银行"),
    _s("CN:601088.SH", "China Shenhua Energy", "Coal", "煤炭开采", 40, 800, 13, "中国神华"),
    _s("CN:601225.SH", "Shaanxi Coal Industry", "Coal", "煤炭开采", 21, 200, 9, "陕西煤业"),
    _s("CN:601898.SH", "China Coal Energy", "Coal", "煤炭开采", 12, 160, 9, "中煤能源"),
    _s("CN:600188.SH", "Yankuang Energy", "Coal", "煤炭开采", 14, 140, 10, "兖矿能源"),
    _s("CN:600519.SH", "Kweichow Moutai", "Consumer", "白酒", 1430, 1800, 20, "贵州茅台"),
    _s("CN:000858.SZ", "Wuliangye Yibin", "Consumer", "白酒", 120, 465, 15, "五粮液"),
    _s("CN:600887.SH", "Inner Mongolia Yili", "Consumer", "乳品", 28, 178, 16, "伊利股份"),
    _s("CN:000333.SZ", "Midea Group", "Consumer", "白色家电", 73, 560, 13, "美的集团"),
    _s("CN:600900.SH", "China Yangtze Power", "Utilities", "电力", 28, 690, 20, "长江电力"),
    _s("CN:600011.SH", "Huaneng Power International", "Utilities", "电力", 7.4, 116, 11, "华能国际"),
    # Korea (KRW, caps in KRW bn)
    _s("KR:005930", "Samsung Electronics", "AI Chips", "Semiconductors", 104000, 616000, 20,
       "삼성전자", gamma=1.2),
    _s("KR:000660", "SK Hynix", "AI Chips", "Semiconductors", 540000, 393000, 12, "SK하이닉스", gamma=1.5),
    _s("KR:042700", "Hanmi Semiconductor", "AI Hardware", "Semiconductor Equipment", 110000, 10500, 50,
       "한미반도체", gamma=1.6),
    _s("KR:035420", "NAVER", "Hyperscalers", "Interactive Media", 260000, 41000, 20, "네이버", gamma=0.7),
    _s("KR:105560", "KB Financial Group", "Banks", "Banks", 118000, 45000, 8, "KB금융"),
    _s("KR:055550", "Shinhan Financial Group", "Banks", "Banks", 68000, 34000, 7, "신한지주"),
    _s("KR:005380", "Hyundai Motor", "Consumer", "Automobiles", 260000, 53000, 5, "현대차"),
    _s("KR:033780", "KT&G", "Consumer", "Tobacco", 145000, 17000, 14, "KT&G"),
    _s("KR:015760", "Korea Electric Power", "Utilities", "Electric Utilities", 41000, 26000, 5, "한국전력"),
    # Japan (JPY, caps in JPY bn)
    _s("JP:8035", "Tokyo Electron", "AI Chips", "Semiconductor Equipment", 33000, 15500, 30,
       "東京エレクトロン", fye=3, gamma=1.3),
    _s("JP:6857", "Advantest", "AI Chips", "Semiconductor Equipment", 22000, 16000, 55,
       "アドバンテスト", fye=3, gamma=1.6),
    _s("JP:6526", "Socionext", "AI Chips", "Semiconductors", 3000, 530, 40, "ソシオネクスト",
       fye=3, gamma=1.3),
    _s("JP:9984", "SoftBank Group", "Hyperscalers", "Telecom & Investment", 6600, 37000, 15,
       "ソフトバンクグループ", fye=3, gamma=1.8),
    _s("JP:6501", "Hitachi", "AI Hardware", "Electrical Equipment", 4800, 22000, 35, "日立製作所",
       fye=3, gamma=0.9),
    _s("JP:8306", "Mitsubishi UFJ Financial Group", "Banks", "Banks", 2400, 29000, 11,
       "三菱UFJフィナンシャル・グループ", fye=3),
    _s("JP:8316", "Sumitomo Mitsui Financial Group", "Banks", "Banks", 4300, 16700, 12,
       "三井住友フィナンシャルグループ", fye=3),
    _s("JP:7203", "Toyota Motor", "Consumer", "Automobiles", 3000, 47000, 10, "トヨタ自動車", fye=3),
    _s("JP:9983", "Fast Retailing", "Consumer", "Apparel Retail", 55000, 17500, 40,
       "ファーストリテイリング", fye=8),
    _s("JP:2914", "Japan Tobacco", "Consumer", "Tobacco", 5200, 10400, 18, "日本たばこ産業"),
    _s("JP:9501", "Tokyo Electric Power", "Utilities", "Electric Utilities", 800, 1300, 8,
       "東京電力ホールディングス", fye=3),
    # Taiwan (TWD, caps in TWD bn)
    _s("TW:2330", "Taiwan Semiconductor Manufacturing", "AI Chips", "Semiconductors", 1480, 38400,
       24, "台積電", gamma=1.3),
    _s("TW:2454", "MediaTek", "AI Chips", "Semiconductors", 1400, 2240, 20, "聯發科", gamma=1.1),
    _s("TW:2317", "Hon Hai Precision Industry", "AI Hardware", "Electronic Manufacturing Services",
       230, 3200, 17, "鴻海", gamma=1.2),
    _s("TW:2382", "Quanta Computer", "AI Hardware", "Technology Hardware", 290, 1120, 19, "廣達",
       gamma=1.4),
    _s("TW:2881", "Fubon Financial", "Banks", "Banks", 90, 1250, 10, "富邦金"),
    _s("TW:1216", "Uni-President Enterprises", "Consumer", "Food Products", 75, 425, 22, "統一"),
)

# Hand-picked baskets, as a registry would define them (the sector baskets are derived).
US_AI_BIG8 = ("US:NVDA", "US:MSFT", "US:AAPL", "US:GOOGL", "US:AMZN", "US:META", "US:AVGO", "US:TSLA")
US_TOP5_CAPEX = ("US:MSFT", "US:GOOGL", "US:AMZN", "US:META", "US:ORCL")
CN_AI = (
    "CN:688256.SH", "CN:688981.SH", "CN:688041.SH", "CN:688012.SH", "CN:688008.SH",
    "CN:300308.SZ", "CN:300502.SZ", "CN:300394.SZ", "CN:601138.SH", "CN:000977.SZ",
    "CN:300476.SZ",
)

# Index levels, valuations and tilts at the anchor date: (index_id, market, name, level,
#  P/E, P/B, dividend yield, earnings growth per year, sector tilt of the cap weights).
_ALL = dict.fromkeys(SECTORS, 1.0)
DEMO_INDEXES = (
    ("US:SPX", "US", "S&P 500", 6890.0, 28.0, 5.3, 0.012, 0.10, _ALL),
    ("US:NDX", "US", "Nasdaq-100", 26000.0, 36.0, 9.0, 0.007, 0.15,
     {**dict.fromkeys(AI_SECTORS, 1.0), "Consumer": 0.4, "Utilities": 0.1}),
    ("CN:000300.SH", "CN", "CSI 300", 4700.0, 14.3, 1.5, 0.026, 0.05, _ALL),
    ("CN:399006.SZ", "CN", "ChiNext Index", 3250.0, 45.0, 5.5, 0.009, 0.20,
     {"AI Chips": 0.8, "AI Hardware": 1.5, "Hyperscalers": 1.0, "Consumer": 0.5,
      "Banks": 0.1, "Coal": 0.1, "Utilities": 0.2}),
    ("CN:000016.SH", "CN", "SSE 50", 3050.0, 11.8, 1.3, 0.033, 0.04,
     {**dict.fromkeys(AI_SECTORS, 0.15), "Banks": 1.0, "Coal": 1.0, "Consumer": 1.0,
      "Utilities": 1.0}),
    ("CN:000688.SH", "CN", "STAR 50", 1500.0, 200.0, 7.5, 0.003, 0.30,
     {"AI Chips": 1.0, "AI Hardware": 0.6, "Hyperscalers": 0.6, "Banks": 0.05, "Coal": 0.05,
      "Consumer": 0.05, "Utilities": 0.05}),
    ("CN:000922.SH", "CN", "CSI Dividend", 5700.0, 7.53, 0.75, 0.057, 0.02,
     {"Banks": 1.0, "Coal": 1.5, "Utilities": 1.0, "Consumer": 0.3}),
    ("KR:KOSPI", "KR", "KOSPI", 4080.0, 15.0, 1.2, 0.017, 0.15, _ALL),
    ("JP:N225", "JP", "Nikkei 225", 51300.0, 19.0, 2.2, 0.016, 0.08,
     {**_ALL, **dict.fromkeys(AI_SECTORS, 1.5)}),
    ("TW:TAIEX", "TW", "TAIEX", 28300.0, 22.0, 2.8, 0.022, 0.15,
     {**_ALL, **dict.fromkeys(AI_SECTORS, 2.0)}),
)
# Currency paths: USD per unit at the anchor, daily volatility, drift per session of the
# episode. Each currency draws from its own stream (its position here), so append only.
DEMO_FX: dict[str, tuple[float, float, float]] = {
    "CNY": (0.1406, 0.0015, 0.0),
    "KRW": (0.000697, 0.004, -0.0008),
    "JPY": (0.00658, 0.005, -0.0004),
    "TWD": (0.0327, 0.003, -0.0003),
}

# Shares of the extra (generated) names by market and by sector.
_EXTRA_MARKETS = tuple((d.code, d.extra_share) for d in DEMO_MARKETS.values())
_EXTRA_SECTORS = (0.16, 0.08, 0.16, 0.15, 0.10, 0.22, 0.13)
# Code ranges for generated China names, by sector: (first, last, exchange suffix).
_CN_RANGES = {
    "AI Chips": ((688000, 689999, "SH"),),
    "AI Hardware": ((300000, 301999, "SZ"),),
    "Hyperscalers": ((2000, 3999, "SZ"),),
    "Banks": ((601000, 601999, "SH"),),
    "Coal": ((600000, 600999, "SH"),),
    "Consumer": ((1, 999, "SZ"), (603000, 603999, "SH")),
    "Utilities": ((605000, 605999, "SH"),),
}
# Typical P/E by sector for generated names.
_PE_MEDIAN = {"AI Chips": 60.0, "Hyperscalers": 35.0, "AI Hardware": 45.0, "Banks": 7.0,
              "Coal": 9.0, "Consumer": 20.0, "Utilities": 15.0}


def _letters(k: int, width: int) -> str:
    out = []
    for _ in range(width):
        k, r = divmod(k, 26)
        out.append(chr(ord("A") + r))
    return "".join(reversed(out))


def _cn_codes(sector: str, count: int, taken: set[str]) -> list[str]:
    codes: list[str] = []
    for first, last, suffix in _CN_RANGES[sector]:
        for num in range(first, last + 1):
            if len(codes) == count:
                return codes
            sid = f"CN:{num:06d}.{suffix}"
            if sid not in taken:
                codes.append(sid)
    if len(codes) < count:
        raise ValueError(f"too many generated China {sector} names ({count}); lower n_securities")
    return codes


def extra_securities(count: int, rng: np.random.Generator) -> list[SecuritySpec]:
    """Generated names beyond the core, spread over markets and sectors."""
    if count <= 0:
        return []
    taken = {s.security_id for s in CORE}
    markets = rng.choice([m for m, _ in _EXTRA_MARKETS], size=count, p=[w for _, w in _EXTRA_MARKETS])
    sectors = rng.choice(len(SECTORS), size=count, p=_EXTRA_SECTORS)
    price_z = rng.normal(0.0, 0.8, count)
    mcap_z = rng.normal(0.0, 1.0, count)
    pe_z = rng.normal(0.0, 0.35, count)
    loss = rng.random(count) < 0.08
    fye_choice = rng.choice([12, 12, 12, 12, 9, 6, 3], size=count)
    gamma_z = rng.normal(0.0, 0.25, count)

    ids: list[str | None] = [None] * count
    for code, spec in DEMO_MARKETS.items():
        idx = np.flatnonzero(markets == code)
        if not idx.size:
            continue
        if code == "US":
            # Z + three letters: no listed US ticker has this shape in the core list.
            for j, i in enumerate(idx):
                ids[i] = f"US:Z{_letters(j, 3)}"
        elif code == "CN":
            for s, sector in enumerate(SECTORS):
                sub = idx[sectors[idx] == s]
                for i, sid in zip(sub, _cn_codes(sector, len(sub), taken), strict=True):
                    ids[i] = sid
        else:
            if spec.code_pool is None:
                raise ValueError(f"demo market {code}: generated names need a code_pool")
            first, stop, step, width = spec.code_pool
            pool = (sid for n in range(first, stop, step)
                    if (sid := f"{code}:{n:0{width}d}") not in taken)
            for i in idx:
                ids[i] = next(pool)

    out: list[SecuritySpec] = []
    for i in range(count):
        market = str(markets[i])
        sector = SECTORS[int(sectors[i])]
        pe = _PE_MEDIAN[sector] * float(np.exp(pe_z[i]))
        is_ai = sector in AI_SECTORS
        if loss[i] and is_ai:
            pe = -pe
        fye = int(fye_choice[i]) if market == "US" else DEMO_MARKETS[market].fye
        gamma = (1.2 if is_ai else 0.0) + float(gamma_z[i])
        out.append(SecuritySpec(
            security_id=str(ids[i]),
            name=f"Demo {sector} {i + 1:04d}",
            sector=sector,
            industry=sector,
            price=round(DEMO_MARKETS[market].price_scale * float(np.exp(price_z[i])), 2),
            mcap_bn=DEMO_MARKETS[market].mcap_scale_bn * float(np.exp(mcap_z[i])),
            pe=pe,
            name_local=None,
            fye=fye,
            gamma=gamma,
        ))
    return out


def universe(n_securities: int, rng: np.random.Generator) -> list[SecuritySpec]:
    """The first n core names (spread over markets), then generated names up to n; n = 0
    means the whole core."""
    if n_securities == 0:
        n_securities = len(CORE)
    if n_securities < 8:
        raise ValueError(f"n_securities={n_securities} is too small; the demo needs at least 8")
    if n_securities >= len(CORE):
        legacy = [s for s in CORE if DEMO_MARKETS[s.market].legacy_order]
        added = [s for s in CORE if not DEMO_MARKETS[s.market].legacy_order]
        return legacy + extra_securities(n_securities - len(CORE), rng) + added
    # Fewer than the core: keep names in proportion, in list order within each market so
    # the headline names (listed first) stay in.
    by_market: dict[str, list[SecuritySpec]] = {}
    for spec in CORE:
        by_market.setdefault(spec.market, []).append(spec)
    keep: list[SecuritySpec] = []
    for _market, specs in by_market.items():
        k = max(1, round(len(specs) * n_securities / len(CORE)))
        keep.extend(specs[:k])
    keep = keep[:n_securities]
    order = {s.security_id: i for i, s in enumerate(CORE)}
    return sorted(keep, key=lambda s: order[s.security_id])
