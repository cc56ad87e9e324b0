"""Sell-offs found in the data: candidate episodes, ranked (`analytics.episode_candidates`).

An episode file says which sell-off to measure; this module answers the question that
comes first: which sell-offs were there, and how big? It searches the whole data, not an
episode, with the engine of moves (`selloff.analytics.moves`): the same level series,
the same day and calendar-week moves, the same window moves.

Entities searched (each a level series L_t of `moves`):
- every index (its close), every basket of `dim_basket_member` (its chain-linked USD cap);
- each market's cap-weighted aggregate `<M>:MKT_CAPW`: the basket of every security of
  market M in the data, chain-linked like a basket (`basket_levels`), so its return is
  cap-weighted and its step is the market cap gained or lost in USD.

Events of one entity (thresholds in `DiscoveryConfig`, defaults there):
- drawdown: a zigzag over L. From a peak P (running maximum) the trough T is the lowest
  level since; the drawdown ends when L rises to a new high or rebounds by `rebound`
  from T (L_t / T - 1 >= rebound); it is an event when T / P - 1 <= -drawdown_threshold.
  Its move runs from the peak close to the trough close (start = the session after P).
- day shock: the day move r_t = L_t / L_{t-1} - 1 with
      r_t <= -day_sigma * s_t   and   r_t <= -day_floor,
  s_t the standard deviation of the entity's previous `day_lookback` day moves (t itself
  excluded; at least `day_min_obs` of them).
- week shock: the same on calendar-week moves (last close of the previous week to last
  close of the week) with week_sigma, week_lookback, week_min_obs, week_floor.

Candidates: events of every entity and market, sorted by start, are grouped while the
next event starts no later than `merge_gap_days` calendar days after the latest end of
the group so far (a US Friday and Asia's Monday are one sell-off). A drawdown links over
its fast leg only: from the session after its last close at or above the log midpoint
sqrt(P * T) to the trough, at most its last `max_leg_sessions` sessions (a drawdown
from a January peak would otherwise chain every event until April into one candidate). A candidate's span [start, end] runs from its first event's (leg) start to
its last event's end; t0 is its earliest event's t0 (a drawdown's peak). Over it:
- fall: the deepest decline of an entity hit from its peak since t0 to a trough in the
  span;
- worst day / week: the lowest day move (day in the span) and calendar-week move (week
  holding a session of the span) of an entity hit;
- cap lost (USD) = sum over its markets M of -(money step of <M>:MKT_CAPW from its peak to
  its trough within the span), 0 when that aggregate did not fall;
- severity = sum over its markets M of 100 * (w_fall |F_M| + w_day |D_M| + w_week |W_M|)
             + w_cap * cap lost / 1e12,
  where F_M, D_M, W_M are the fall, worst day and worst week (negative parts only) of the
  market's broad measure: its default index (selloff.markets) when the data has it, else
  <M>:MKT_CAPW. A sell-off that hits more markets, deeper, faster and costs more ranks
  higher; baskets name what fell but do not weigh in the rank (a three-name basket would
  outweigh a market).
- headline: the index hit with the deepest fall, else the basket hit with the deepest
  fall, else the deepest-falling default index of its markets; the main window runs
  from the session after the headline's peak to its trough.

Units as in every analytics table: returns are fractions, amounts full USD.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from selloff.analytics.moves import (
    LEVEL_SCHEMA,
    basket_levels,
    index_levels,
    level_moves,
)
from selloff.analytics.tables import (
    ALL_MARKETS,
    CANDIDATE_EVENTS_SCHEMA,
    CANDIDATES_SCHEMA,
    conform,
    empty,
    require_columns,
)
from selloff.markets import MARKETS_BY_CODE, market_of_expr

AGGREGATE_SUFFIX = "MKT_CAPW"
EVENT_KINDS = ("drawdown", "day_shock", "week_shock")


@dataclass(frozen=True)
class DiscoveryConfig:
    """Thresholds, look-backs and score weights (fractions for returns).

    Defaults: a drawdown of 10 % ending on a 10 % rebound; a day 3 trailing standard
    deviations (60 sessions, at least 10) and 2 % down; a week 2.5 deviations (26 weeks,
    at least 6) and 4 % down; events 3 calendar days apart or closer grouped; a drawdown
    links over at most the last 40 sessions of its fast leg; weights 1 (fall), 1 (day), 0.5 (week)
    per percentage point of each market, 1 per USD trillion of cap lost.
    """

    drawdown_threshold: float = 0.10
    rebound: float = 0.10
    day_sigma: float = 3.0
    day_lookback: int = 60
    day_min_obs: int = 10
    day_floor: float = 0.02
    week_sigma: float = 2.5
    week_lookback: int = 26
    week_min_obs: int = 6
    week_floor: float = 0.04
    merge_gap_days: int = 3
    max_leg_sessions: int = 40
    weight_fall: float = 1.0
    weight_day: float = 1.0
    weight_week: float = 0.5
    weight_cap: float = 1.0


_INT_FIELDS = {"day_lookback", "day_min_obs", "week_lookback", "week_min_obs",
               "merge_gap_days", "max_leg_sessions"}
_FRACTIONS = {"drawdown_threshold", "rebound", "day_floor", "week_floor"}


class DiscoveryConfigError(ValueError):
    """Overrides that break a rule; `problems` names each key and the rule."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("discovery configuration: " + "; ".join(problems))


def discovery_config(overrides: Mapping[str, Any] | None = None) -> DiscoveryConfig:
    """`DiscoveryConfig` with `overrides` on top of the defaults, each checked: known key,
    a number, lookbacks and counts whole and positive, fractions in (0, 1), sigmas and
    weights >= 0. Every problem is reported at once."""
    base = DiscoveryConfig()
    if not overrides:
        return base
    known = {f.name for f in dataclasses.fields(DiscoveryConfig)}
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key not in known:
            problems.append(f"{key!r}: unknown key (known: {', '.join(sorted(known))})")
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            problems.append(f"{key!r}: must be a finite number, got {raw!r}")
            continue
        if key in _INT_FIELDS:
            if int(raw) != raw or raw < (0 if key == "merge_gap_days" else 1):
                problems.append(f"{key!r}: must be a whole number >= "
                                f"{0 if key == 'merge_gap_days' else 1}, got {raw!r}")
                continue
            values[key] = int(raw)
        elif key in _FRACTIONS:
            if not 0 < raw < 1:
                problems.append(f"{key!r}: must be a fraction in (0, 1) (0.1 is 10 %), got {raw!r}")
                continue
            values[key] = float(raw)
        else:
            if raw < 0:
                problems.append(f"{key!r}: must be >= 0, got {raw!r}")
                continue
            values[key] = float(raw)
    merged = dataclasses.replace(base, **values)
    for n, m in (("day_min_obs", "day_lookback"), ("week_min_obs", "week_lookback")):
        if getattr(merged, n) > getattr(merged, m):
            problems.append(f"{n!r}: {getattr(merged, n)} exceeds {m!r} {getattr(merged, m)}")
    if problems:
        raise DiscoveryConfigError(problems)
    return merged


# --------------------------------------------------------------------------- level series


def aggregate_id(market: str) -> str:
    return f"{market}:{AGGREGATE_SUFFIX}"


CapsByMarket = Mapping[str, pl.DataFrame]


def caps_by_market(market_cap: pl.DataFrame | pl.LazyFrame | CapsByMarket) -> dict[str, pl.DataFrame]:
    """`fct_market_cap_daily` rows split by the market of their security (the prefix of
    its id), or the split as given (market -> that market's rows, as the discovery asset
    reads them from DuckDB one market at a time)."""
    if isinstance(market_cap, Mapping):
        return {m: f for m, f in market_cap.items() if f.height}
    require_columns(market_cap, "fct_market_cap_daily",
                    ("security_id", "trade_date", "market_cap_usd"))
    frame = market_cap.lazy().collect()
    # The market of each distinct id, then one partition: no string split per row.
    ids = frame.select(pl.col("security_id").unique())
    markets = ids.with_columns(market_of_expr("security_id").alias("__market"))
    split = frame.join(markets, on="security_id", how="left").partition_by(
        "__market", as_dict=True, include_key=False)
    return {k[0]: v for k, v in split.items() if k[0] is not None and v.height}


def market_aggregate(market: str, caps: pl.DataFrame) -> pl.DataFrame:
    """The aggregate `<market>:MKT_CAPW` of one market's rows of fct_market_cap_daily:
    the basket of every security in them (`basket_levels`). A function of the set of
    those rows alone (basket_levels sorts before it sums), so it can be kept while the
    market's rows are unchanged."""
    require_columns(caps, "fct_market_cap_daily", ("security_id", "trade_date", "market_cap_usd"))
    members = (caps.select(pl.col("security_id").unique().sort())
               .select(pl.lit(aggregate_id(market)).alias("basket_id"), "security_id"))
    return basket_levels(caps, members)


def market_aggregate_levels(market_cap: pl.DataFrame | pl.LazyFrame | CapsByMarket) -> pl.DataFrame:
    """Each market's cap-weighted aggregate as a level series: the basket of every
    security of the market in the data (`basket_levels`, the one chain-linking).
    `market_cap` is the whole table or its rows split by market (`caps_by_market`)."""
    by_market = caps_by_market(market_cap)
    # One market at a time, on that market's rows only: each aggregate holds only its
    # market's securities, so the result is the same as one call over all (the same
    # rows reach the same sort and sums), while the join and sort inside basket_levels
    # hold one market's rows at once, not every market's (at 18,000 x 10 the whole-data
    # call was the run's memory peak, 6.1 GB), and no step scans every market's rows
    # once per market.
    out = [market_aggregate(m, by_market[m]) for m in sorted(by_market, key=aggregate_id)]
    return pl.concat(out) if out else empty(LEVEL_SCHEMA)


def discovery_levels(index_daily: pl.DataFrame | None,
                     market_cap: pl.DataFrame | CapsByMarket | None,
                     basket_members: pl.DataFrame | None,
                     aggregates: Mapping[str, pl.DataFrame] | None = None) -> dict[str, pl.DataFrame]:
    """Level series by entity kind ('index', 'basket', 'market'), empty kinds left out.
    `market_cap` is fct_market_cap_daily, whole or split by market (`caps_by_market`).

    `aggregates`: when given, every market's `market_aggregate` (market -> its levels),
    computed before (or kept from an earlier run while the market's rows are unchanged);
    `market_cap` then needs to hold only the basket members' rows."""
    out: dict[str, pl.DataFrame] = {}
    if index_daily is not None and index_daily.height:
        out["index"] = index_levels(index_daily)
    by_market = caps_by_market(market_cap) if market_cap is not None else {}
    if by_market and basket_members is not None and basket_members.height:
        # Only the members' rows: basket_levels joins them to the members anyway.
        ids = basket_members["security_id"].unique().to_list()
        member_caps = pl.concat([f.filter(pl.col("security_id").is_in(ids))
                                 for _, f in sorted(by_market.items())])
        out["basket"] = basket_levels(member_caps, basket_members)
    if aggregates is not None:
        parts = [aggregates[m] for m in sorted(aggregates, key=aggregate_id)
                 if aggregates[m].height]
        out["market"] = pl.concat(parts) if parts else empty(LEVEL_SCHEMA)
    elif by_market:
        out["market"] = market_aggregate_levels(by_market)
    return {k: v for k, v in out.items() if v.height}


# --------------------------------------------------------------------------- events


def zigzag_drawdowns(dates: Sequence[dt.date], levels: Sequence[float], threshold: float,
                     rebound: float) -> list[tuple[int, int]]:
    """(peak index, trough index) of every drawdown of one series (module docstring):
    from the running peak, the lowest level since; it closes on a new high or a rebound
    of `rebound` from the trough and counts when trough / peak - 1 <= -threshold."""
    out: list[tuple[int, int]] = []

    def deep(p: int, t: int) -> bool:
        return t != p and levels[t] / levels[p] - 1.0 <= -threshold

    peak = trough = 0
    for i in range(1, len(levels)):
        x = levels[i]
        if x >= levels[peak]:
            # A new high (or the old one again) closes the drawdown; the next starts here.
            if deep(peak, trough):
                out.append((peak, trough))
            peak = trough = i
        elif x / levels[trough] - 1.0 >= rebound and deep(peak, trough):
            # A rebound short of a new high also closes it: the next fall is measured from
            # the rebound, so two sell-offs months apart are two events, not one.
            out.append((peak, trough))
            peak = trough = i
        elif x < levels[trough]:
            trough = i
    if deep(peak, trough):
        out.append((peak, trough))
    return out


def fast_leg(levels: Sequence[float], peak: int, trough: int) -> int:
    """Index of the first session of a drawdown's fast leg: the session after the last
    close at or above the log midpoint sqrt(L_peak * L_trough) before the trough."""
    mid = math.sqrt(levels[peak] * levels[trough])
    last_above = max(i for i in range(peak, trough) if levels[i] >= mid)
    return last_above + 1


def _drawdown_events(levels: pl.DataFrame, kind: str, cfg: DiscoveryConfig) -> pl.DataFrame:
    windows, owner = [], {}
    for (entity,), s in levels.sort("entity_id", "trade_date").group_by("entity_id",
                                                                        maintain_order=True):
        s = s.filter(pl.col("level").is_not_null() & (pl.col("level") > 0))
        dates, lv = s["trade_date"].to_list(), s["level"].to_list()
        for p, t in zigzag_drawdowns(dates, lv, cfg.drawdown_threshold, cfg.rebound):
            wid = f"drawdown:{entity}:{dates[p]}"
            # start is the session after the peak, so the window's t0 is the peak close.
            windows.append((wid, dates[p + 1], dates[t]))
            # The link span is the fast leg, at most its last max_leg_sessions sessions.
            leg = max(fast_leg(lv, p, t), t - cfg.max_leg_sessions + 1)
            owner[wid] = (entity, t - p, dates[leg], leg > fast_leg(lv, p, t))
    if not windows:
        return empty(CANDIDATE_EVENTS_SCHEMA)
    moves = level_moves(levels, kind, (), windows)
    own = pl.DataFrame(
        [(k, *v) for k, v in owner.items()], orient="row",
        schema={"window_id": pl.Utf8, "entity_id": pl.Utf8, "n_sessions": pl.Int64,
                "link_start": pl.Date, "slow": pl.Boolean})
    rows = moves.join(own, on=["window_id", "entity_id"], how="inner").with_columns(
        pl.lit("drawdown").alias("event_kind"), pl.lit(None, pl.Float64).alias("sigma"),
        pl.lit(None, pl.Float64).alias("z"))
    return conform(rows.with_columns(pl.lit(None, pl.Utf8).alias("candidate_id")),
                   CANDIDATE_EVENTS_SCHEMA)


def _shock_events(moves: pl.DataFrame, period: str, sigma_k: float, lookback: int,
                  min_obs: int, floor: float) -> pl.DataFrame:
    rows = (
        moves.filter(pl.col("period") == period)
        .sort("entity_id", "t1_date")
        .with_columns(pl.col("return").shift(1).rolling_std(lookback, min_samples=min_obs)
                      .over("entity_id", order_by="t1_date").alias("sigma"))
        .filter(pl.col("sigma").is_not_null() & (pl.col("sigma") > 0)
                & (pl.col("return") <= -sigma_k * pl.col("sigma"))
                & (pl.col("return") <= -floor))
        .with_columns((pl.col("return") / pl.col("sigma")).alias("z"),
                      pl.lit(f"{period}_shock").alias("event_kind"),
                      pl.lit(1 if period == "day" else None, pl.Int64).alias("n_sessions"),
                      pl.col("start_date").alias("link_start"),
                      pl.lit(False).alias("slow"), pl.lit(None, pl.Utf8).alias("candidate_id"))
    )
    return conform(rows, CANDIDATE_EVENTS_SCHEMA)


def find_events(levels: Mapping[str, pl.DataFrame],
                cfg: DiscoveryConfig = DiscoveryConfig()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(events, moves): every entity's drawdowns and day and week shocks (without
    candidate_id), and the day and week moves of every entity over its whole data."""
    events, all_moves = [empty(CANDIDATE_EVENTS_SCHEMA)], []
    for kind, series in levels.items():
        span = (series["trade_date"].min(), series["trade_date"].max())
        moves = level_moves(series, kind, [span])
        all_moves.append(moves)
        events.append(_drawdown_events(series, kind, cfg))
        events.append(_shock_events(moves, "day", cfg.day_sigma, cfg.day_lookback,
                                    cfg.day_min_obs, cfg.day_floor))
        events.append(_shock_events(moves, "week", cfg.week_sigma, cfg.week_lookback,
                                    cfg.week_min_obs, cfg.week_floor))
    moves = pl.concat(all_moves, how="vertical_relaxed") if all_moves else pl.DataFrame()
    out = pl.concat(events, how="vertical_relaxed").sort("start_date", "entity_kind", "entity_id",
                                                         "event_kind")
    return out, moves


# --------------------------------------------------------------------------- grouping


def group_events(events: pl.DataFrame, merge_gap_days: int) -> pl.DataFrame:
    """`events` with candidate_id: sorted by link_start, an event joins the current
    group when it starts at most `merge_gap_days` after the group's latest end, else it
    opens the next one; the id is `found_<first link_start>`. Groups are disjoint."""
    if events.height == 0:
        return events
    ev = events.sort("link_start", "end_date", "entity_id")
    gap = dt.timedelta(days=merge_gap_days)
    ids: list[str] = []
    first = last = None
    for start, end in ev.select("link_start", "end_date").iter_rows():
        if last is None or start > last + gap:
            first, last = start, end
        else:
            last = max(last, end)
        ids.append(f"found_{first:%Y_%m_%d}")
    return ev.with_columns(pl.Series("candidate_id", ids, pl.Utf8))


# --------------------------------------------------------------------------- candidates


def _peak_to_trough(levels: pl.DataFrame, first: dt.date, trough_from: dt.date,
                    last: dt.date) -> pl.DataFrame:
    """(entity_id, peak_date, trough_date, fall) per entity: the deepest decline from its
    running peak since `first` to a trough in [trough_from, last] (no row when it only
    rose). The peak is the latest close at the running maximum before the trough."""
    f = (levels.filter(pl.col("trade_date").is_between(first, last) & (pl.col("level") > 0))
         .sort("entity_id", "trade_date")
         .with_columns(pl.col("level").cum_max().over("entity_id").alias("peak_level"))
         .with_columns((pl.col("level") / pl.col("peak_level") - 1.0).alias("fall")))
    troughs = (f.filter((pl.col("fall") < 0) & (pl.col("trade_date") >= trough_from))
               .sort("entity_id", "fall", "trade_date")
               .group_by("entity_id", maintain_order=True).first()
               .select("entity_id", pl.col("trade_date").alias("trough_date"),
                       pl.col("peak_level").alias("trough_peak"), "fall"))
    peaks = (f.join(troughs, on="entity_id")
             .filter((pl.col("trade_date") <= pl.col("trough_date"))
                     & (pl.col("level") == pl.col("trough_peak")))
             .group_by("entity_id").agg(pl.col("trade_date").max().alias("peak_date")))
    return (troughs.join(peaks, on="entity_id")
            .select("entity_id", "peak_date", "trough_date", "fall").sort("entity_id"))


def _broad_measure(market: str, index_ids: set[str]) -> str:
    reg = MARKETS_BY_CODE.get(market)
    if reg is not None and reg.default_index in index_ids:
        return reg.default_index
    return aggregate_id(market)


def _sessions(levels: pl.DataFrame, entity: str) -> list[dt.date]:
    return levels.filter(pl.col("entity_id") == entity)["trade_date"].sort().to_list()


def summarize_candidates(events: pl.DataFrame, moves: pl.DataFrame,
                         levels: Mapping[str, pl.DataFrame],
                         cfg: DiscoveryConfig = DiscoveryConfig()) -> pl.DataFrame:
    """One row per candidate of grouped `events` (CANDIDATES_SCHEMA), ranked by severity."""
    if events.height == 0:
        return empty(CANDIDATES_SCHEMA)
    all_levels = pl.concat([v.with_columns(pl.lit(k).alias("entity_kind"))
                            for k, v in levels.items()], how="vertical_relaxed")
    kind_of = dict(all_levels.select("entity_id", "entity_kind").unique().iter_rows())
    index_ids = {e for e, k in kind_of.items() if k == "index"}
    rows = []
    for (cid,), ev in events.group_by("candidate_id", maintain_order=True):
        start, end = ev["link_start"].min(), ev["end_date"].max()
        hit = sorted(set(ev["entity_id"].to_list()))
        markets = sorted({m for m in ev["market"].to_list() if m and m != ALL_MARKETS})
        t0 = ev["t0_date"].min()
        span_levels = all_levels.filter(pl.col("entity_id").is_in(
            hit + [_broad_measure(m, index_ids) for m in markets]
            + [aggregate_id(m) for m in markets]))
        falls = _peak_to_trough(span_levels, t0, start, end)
        days = moves.filter((pl.col("period") == "day")
                            & pl.col("t1_date").is_between(start, end))
        weeks = moves.filter((pl.col("period") == "week") & (pl.col("end_date") >= start)
                             & (pl.col("start_date") <= end))

        def worst(frame: pl.DataFrame, ids: list[str]) -> dict | None:
            f = frame.filter(pl.col("entity_id").is_in(ids) & pl.col("return").is_not_nan())
            return f.sort("return", "t1_date").row(0, named=True) if f.height else None

        fall_hit = falls.filter(pl.col("entity_id").is_in(hit)).sort("fall", "entity_id")
        fall = fall_hit.row(0, named=True) if fall_hit.height else None
        wd, ww = worst(days, hit), worst(weeks, hit)
        # Money: each market's aggregate from its own peak to trough within the span.
        cap_lost = 0.0
        agg_falls = falls.filter(pl.col("entity_id").is_in([aggregate_id(m) for m in markets]))
        if agg_falls.height and "market" in levels:
            wins = []
            for r in agg_falls.iter_rows(named=True):
                ses = _sessions(levels["market"], r["entity_id"])
                after = next(d for d in ses if d > r["peak_date"])
                wins.append((f"cap:{r['entity_id']}", after, r["trough_date"]))
            cm = level_moves(levels["market"].filter(pl.col("entity_id").is_in(
                agg_falls["entity_id"].to_list())), "market", (), wins)
            cm = cm.filter(pl.col("window_id") == "cap:" + pl.col("entity_id"))
            cap_lost = -float(cm["change_usd"].fill_null(0.0).sum())
        score = cfg.weight_cap * max(cap_lost, 0.0) / 1e12
        for m in markets:
            b = _broad_measure(m, index_ids)
            f = falls.filter(pl.col("entity_id") == b)
            d, w = worst(days, [b]), worst(weeks, [b])
            score += 100 * (cfg.weight_fall * (-f["fall"][0] if f.height else 0.0)
                            + cfg.weight_day * max(-(d["return"] if d else 0.0), 0.0)
                            + cfg.weight_week * max(-(w["return"] if w else 0.0), 0.0))
        head = _headline(falls, hit, kind_of) or _headline(
            falls, [_broad_measure(m, index_ids) for m in markets], kind_of)
        main_start = main_end = None
        if head is not None:
            ses = _sessions(all_levels, head["entity_id"])
            main_start = next(d for d in ses if d > head["peak_date"])
            main_end = head["trough_date"]
        rows.append({
            "candidate_id": cid, "start_date": start, "end_date": end, "t0_date": t0,
            "markets": ",".join(markets), "n_markets": len(markets),
            "entities": ",".join(hit), "n_entities": len(hit), "n_events": ev.height,
            "event_kinds": ",".join(k for k in EVENT_KINDS if k in set(ev["event_kind"])),
            "headline_entity": head["entity_id"] if head else None,
            "main_start": main_start, "main_end": main_end,
            "headline_fall": head["fall"] if head else None,
            "fall_return": fall["fall"] if fall else None,
            "fall_entity": fall["entity_id"] if fall else None,
            "fall_peak_date": fall["peak_date"] if fall else None,
            "fall_trough_date": fall["trough_date"] if fall else None,
            "worst_day_return": wd["return"] if wd else None,
            "worst_day_date": wd["t1_date"] if wd else None,
            "worst_day_entity": wd["entity_id"] if wd else None,
            "worst_week_return": ww["return"] if ww else None,
            "worst_week_start": ww["start_date"] if ww else None,
            "worst_week_end": ww["end_date"] if ww else None,
            "worst_week_entity": ww["entity_id"] if ww else None,
            "cap_lost_usd": max(cap_lost, 0.0), "severity": score,
        })
    out = pl.DataFrame(rows).sort(["severity", "start_date"], descending=[True, False])
    out = out.with_columns(pl.int_range(1, out.height + 1, dtype=pl.Int64).alias("rank"))
    return conform(out, CANDIDATES_SCHEMA)


def _headline(falls: pl.DataFrame, hit: list[str], kind_of: Mapping[str, str]) -> dict | None:
    # An episode's headline must be an index or basket the warehouse has (not an aggregate).
    for kind in ("index", "basket"):
        f = falls.filter(pl.col("entity_id").is_in([e for e in hit if kind_of.get(e) == kind]))
        if f.height:
            return f.sort("fall", "entity_id").row(0, named=True)
    return None


def discover(index_daily: pl.DataFrame | None,
             market_cap: pl.DataFrame | CapsByMarket | None,
             basket_members: pl.DataFrame | None,
             cfg: DiscoveryConfig = DiscoveryConfig(),
             aggregates: Mapping[str, pl.DataFrame] | None = None,
             ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(episode_candidates, episode_candidate_events) of the whole data; `market_cap` is
    fct_market_cap_daily, whole or split by market (`caps_by_market`), or only the basket
    members' rows when `aggregates` holds every market's aggregate (`discovery_levels`)."""
    levels = discovery_levels(index_daily, market_cap, basket_members, aggregates)
    events, moves = find_events(levels, cfg)
    if events.height == 0:
        return empty(CANDIDATES_SCHEMA), empty(CANDIDATE_EVENTS_SCHEMA)
    events = group_events(events, cfg.merge_gap_days)
    return summarize_candidates(events, moves, levels, cfg), conform(events, CANDIDATE_EVENTS_SCHEMA)


def select_candidates(candidates: pl.DataFrame, *, since: dt.date | None = None,
                      until: dt.date | None = None, markets: Sequence[str] = (),
                      top: int | None = None) -> pl.DataFrame:
    """Candidates overlapping [since, until] and hitting any of `markets`, best first,
    ranked again 1..n among them."""
    f = candidates
    if since is not None:
        f = f.filter(pl.col("end_date") >= since)
    if until is not None:
        f = f.filter(pl.col("start_date") <= until)
    if markets:
        f = f.filter(pl.col("markets").str.split(",").list.eval(
            pl.element().is_in(list(markets))).list.any())
    f = f.sort(["severity", "start_date"], descending=[True, False])
    if top is not None:
        f = f.head(top)
    return f.with_columns(pl.int_range(1, f.height + 1, dtype=pl.Int64).alias("rank"))


def candidate_problems(candidates: pl.DataFrame, events: pl.DataFrame) -> list[str]:
    """What breaks the table's rules (the blocking check): ranks 1..n by falling
    severity, start <= end, disjoint spans, declines dated inside their candidate,
    events and candidates matching one to many."""
    problems: list[str] = []
    c = candidates.sort("rank")
    if c["rank"].to_list() != list(range(1, c.height + 1)):
        problems.append("rank is not 1..n")
    sev = c["severity"].to_list()
    if any(b > a + 1e-9 for a, b in zip(sev, sev[1:], strict=False)):
        problems.append("severity does not fall with rank")
    for r in c.iter_rows(named=True):
        cid, s, e = r["candidate_id"], r["start_date"], r["end_date"]
        if s > e:
            problems.append(f"{cid}: start {s} after end {e}")
        for col in ("fall_return", "headline_fall"):
            if r[col] is not None and r[col] > 0:
                problems.append(f"{cid}: {col} {r[col]} is not a decline")
        if r["worst_day_date"] is not None and not s <= r["worst_day_date"] <= e:
            problems.append(f"{cid}: worst day {r['worst_day_date']} outside {s}..{e}")
        if r["fall_trough_date"] is not None and not s <= r["fall_trough_date"] <= e:
            problems.append(f"{cid}: trough {r['fall_trough_date']} outside {s}..{e}")
        if r["cap_lost_usd"] is None or r["cap_lost_usd"] < 0:
            problems.append(f"{cid}: cap_lost_usd {r['cap_lost_usd']} is not >= 0")
    by_start = c.sort("start_date")
    spans = list(by_start.iter_rows(named=True))
    for a, b in zip(spans, spans[1:], strict=False):
        if b["start_date"] <= a["end_date"]:
            problems.append(f"{a['candidate_id']} and {b['candidate_id']} overlap")
    have, used = set(c["candidate_id"]), set(events["candidate_id"])
    problems += [f"{cid}: no events" for cid in sorted(have - used)]
    problems += [f"events of unknown candidate {cid}" for cid in sorted(used - have)]
    return problems


__all__ = ["candidate_problems", "DiscoveryConfig", "DiscoveryConfigError", "discover", "discovery_config",
           "market_aggregate", "select_candidates", "zigzag_drawdowns"]
