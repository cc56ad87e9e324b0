"""What the claims read comes from what their metrics declare (selloff.claims.reads)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import polars as pl
import pytest

from selloff.claims.metrics import (
    METRICS,
    Frames,
    MetricContext,
    MetricResult,
    Param,
    UndeclaredRead,
    register,
)
from selloff.claims.reads import claim_reads, declared
from selloff.claims.registry import Claim, ClaimPart, Registry, parse_registry
from selloff.claims.verdicts import compute_claim_verdicts
from selloff.episode import bundled_episode_paths, load_episode

D = dt.date


def _registry(metric: str, **params: object) -> Registry:
    part = ClaimPart("p", metric, params, None, 0.0, "lt", None, None, "pct")
    return Registry((Claim("C01", "1", "q", "t", metric, params, (part,)),), "test.yaml")


@pytest.fixture
def peer_metric() -> Iterator[str]:
    """A metric added the way a newcomer adds one: a new parameter naming a security."""
    name = "test_peer_last_close"

    @register(name, reads=("fct_market_cap_daily",), required={"peer_id": Param.SECURITY,
                                                               "since": Param.DATE})
    def metric(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
        rows = frames.table("fct_market_cap_daily").filter(
            pl.col("security_id") == params["peer_id"])
        return MetricResult(float(rows["close"][-1]))

    yield name
    del METRICS[name]


def test_a_new_security_parameter_is_read(peer_metric: str) -> None:
    reg = parse_registry({"claims": [{
        "id": "C01", "section": "1", "quote": "q", "text": "t", "metric": peer_metric,
        "params": {"peer_id": "KR:005930", "since": "2025-03-03"},
        "stated_value": 1, "comparator": "gt", "unit": "x"}]})
    reads = claim_reads(reg, None, None)
    assert reads.securities == {"KR:005930"}
    assert reads.first_day == D(2025, 3, 3)
    assert reads.tables == {"fct_market_cap_daily"}


def test_an_undeclared_parameter_is_an_error() -> None:
    reg = _registry("security_event_day_return", security_id="US:NVDA", peer_id="US:AMD")
    with pytest.raises(KeyError, match="security_event_day_return: parameter 'peer_id' is "
                       "not declared"):
        claim_reads(reg, None, None)


def test_a_parameter_must_say_what_it_names() -> None:
    with pytest.raises(ValueError, match="parameter 'peer_id' must say what it names"):
        register("test_untyped", reads=(), required={"peer_id": "security"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="reads \\['fct_prices'\\]"):
        register("test_unknown_table", reads=("fct_prices",))
    assert "test_untyped" not in METRICS and "test_unknown_table" not in METRICS


def test_an_undeclared_read_fails_the_run() -> None:
    name = "test_reads_undeclared"

    @register(name, reads=(), required={"security_id": Param.SECURITY})
    def metric(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
        frames.table("dim_security")
        return MetricResult(1.0)

    try:
        frames = {"dim_security": pl.DataFrame({"security_id": ["US:X"]})}
        with pytest.raises(UndeclaredRead, match=f"metric {name} reads dim_security"):
            compute_claim_verdicts(frames, _registry(name, security_id="US:X"))
    finally:
        del METRICS[name]


def test_basket_and_market_parameters_resolve_to_their_securities() -> None:
    members = pl.DataFrame({"basket_id": ["B", "B", "C"],
                            "security_id": ["CN:600000", "CN:600001", "CN:600002"]})
    securities = pl.DataFrame({"security_id": ["CN:1", "CN:2", "US:3"],
                               "market": ["CN", "CN", "US"], "is_ai": [True, False, True]})
    by_basket = claim_reads(_registry("basket_return_to_peak", basket_id="B",
                                      start_date=D(2025, 2, 1),
                                      search_period={"start": D(2025, 3, 1),
                                                     "end": D(2025, 3, 31)}),
                            members, securities)
    assert by_basket.securities == {"CN:600000", "CN:600001"}
    assert by_basket.first_day == D(2025, 2, 1)
    by_market = claim_reads(_registry("basket_return_to_peak", market="CN",
                                      start_date=D(2025, 2, 1),
                                      search_period={"start": D(2025, 3, 1),
                                                     "end": D(2025, 3, 31)}),
                            members, securities)
    assert by_market.securities == {"CN:1"}
    # A lookup of entity_moves names a security but reads no daily rows of it.
    lookup = claim_reads(_registry("security_worst_day", security_id="US:NVDA",
                                   search_period={"start": D(2025, 3, 1), "end": D(2025, 3, 31)}),
                         members, securities)
    assert lookup.securities == set() and lookup.tables == {"entity_moves"}


def test_the_bundled_claims_read_only_declared_tables() -> None:
    tables = declared()
    assert {"fct_market_cap_daily", "entity_moves", "rotation"} <= tables
    for folder in bundled_episode_paths():
        ep = load_episode(folder)
        reads = claim_reads(ep.registry, None, None)
        assert reads.tables <= tables
        assert reads.first_day is not None and reads.first_day <= ep.last_day
