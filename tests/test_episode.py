"""Episode files: the bundled ones load, and a bad file fails naming file, entry and rule,
all problems at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from selloff.claims import METRICS
from selloff.episode import (
    EpisodeError,
    bundled_episode_paths,
    load_episode,
    load_episodes,
)

D = dt.date

MINIMAL = {
    "id": "mini",
    "title": "A minimal episode",
    "markets": ["US"],
    "detection": {"search_start": "2025-04-01", "search_end": "2025-04-30",
                  "drawdown_lookback_start": "2025-01-01"},
    "windows": [{"id": "crash", "start": "2025-04-03", "end": "2025-04-04", "main": True}],
    "defaults": {"search_period": {"start": "2025-04-01", "end": "2025-04-30"}},
    "claims": [{"id": "X01", "section": "test", "quote": "q", "text": "t",
                "metric": "index_worst_day_return", "params": {"index_id": "US:SPX"},
                "stated_value": -6, "comparator": "lt", "unit": "pct"}],
}


class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared by two entries out twice: episode files refuse aliases."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def write(tmp_path: Path, data: object, name: str = "ep") -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.dump(data, Dumper=_PlainDumper, sort_keys=False)
    (folder / "episode.yaml").write_text(text, encoding="utf-8")
    return folder


def test_bundled_episodes_load() -> None:
    episodes = load_episodes()
    ids = [e.episode_id for e in episodes]
    assert ids == ["ai_selloff_2025", "tariff_shock_2025"]
    assert [p.name for p in bundled_episode_paths()] == ids
    ai, tariff = episodes
    assert ai.main.window_id == "selloff_period" and len(ai.claims) == 19
    assert tariff.main.window_id == "us_tariff_crash"
    assert (tariff.main.start, tariff.main.end) == (D(2025, 4, 3), D(2025, 4, 4))
    assert len(tariff.claims) >= 8
    assert set(ai.baskets["US_AI_BIG8"]) >= {"US:NVDA", "US:META", "US:TSLA"}
    # Every claim names a metric of the registry; the new ones exist.
    assert {"index_worst_day_return", "basket_worst_day_mcap_change"} <= set(METRICS)
    assert ai.first_day <= D(2025, 1, 1) and ai.last_day >= D(2025, 11, 30)


def test_minimal_episode(tmp_path: Path) -> None:
    e = load_episode(write(tmp_path, MINIMAL))
    assert e.episode_id == "mini" and e.markets == ("US",) and e.main.window_id == "crash"
    assert e.registry.claims[0].parts[0].params["search_period"] == {
        "start": "2025-04-01", "end": "2025-04-30"}


def test_every_problem_at_once_names_file_entry_and_rule(tmp_path: Path) -> None:
    bad = {
        **MINIMAL,
        "id": "Bad Id",
        "markets": ["US", "XX"],
        "detection": {"search_start": "2025-05-01", "search_end": "2025-04-30"},
        "windows": [{"id": "a", "start": "2025-04-05", "end": "2025-04-04"},
                    {"id": "b", "start": "2025-04-05", "end": "2025-04-06"}],
        "baskets": {"B": ["US:AAPL", "JP:7203", "nonsense"]},
        "claims": [{**MINIMAL["claims"][0], "metric": "no_such_metric"},
                   {**MINIMAL["claims"][0], "id": "X02", "comparator": "about"},
                   {**MINIMAL["claims"][0], "id": "X03", "metric": "index_window_return",
                    "params": {"index_id": "US:SPX", "window": "nowhere"}}],
        "colour": "red",
    }
    folder = write(tmp_path, bad)
    with pytest.raises(EpisodeError) as err:
        load_episode(folder)
    text = str(err.value)
    assert str(folder / "episode.yaml") in text
    for fragment in ("unknown key 'colour'", "id 'Bad Id'", "'XX' is not in the market registry",
                     "missing 'drawdown_lookback_start'", "window 'a': start 2025-04-05 is after end",
                     "exactly one window must be 'main: true'",
                     "basket 'B': member 'JP:7203' is outside the episode's markets",
                     "basket 'B': member 'nonsense'", "X01: unknown metric 'no_such_metric'",
                     "X02: comparator 'about'", "claim X03: window 'nowhere'"):
        assert fragment in text, fragment
    assert len(err.value.problems) >= 11


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(EpisodeError, match="file not found"):
        load_episode(tmp_path / "absent")
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "episode.yaml").write_text("id: [unclosed\n")
    with pytest.raises(EpisodeError, match="not valid YAML"):
        load_episode(folder)


def test_duplicate_episode_ids(tmp_path: Path) -> None:
    a, b = write(tmp_path, MINIMAL, "a"), write(tmp_path, MINIMAL, "b")
    with pytest.raises(EpisodeError, match="'mini' is used by more than one folder"):
        load_episodes([a, b])


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "title", "markets", "detection", "windows",
                                         "claims", "baskets", "headline"]),
                       st.one_of(st.none(), st.integers(), st.text(max_size=5),
                                 st.lists(st.integers(), max_size=2))))
def test_garbage_never_crashes(data: dict) -> None:
    # Any mapping is either a valid episode or an EpisodeError listing what is wrong.
    from selloff.episode import parse_episode

    with pytest.raises(EpisodeError) as err:
        parse_episode(data, "garbage.yaml")
    assert err.value.problems


def test_valuation_is_typed_and_needs_a_reference(tmp_path: Path) -> None:
    from selloff.episode_model import Valuation

    ai = load_episodes()[0]
    assert ai.valuation == Valuation(("US_AI_BIG8", "CN_AI"), "CN_DIVIDEND", "CN:000922.SH")
    assert load_episode(write(tmp_path, MINIMAL, "plain")).valuation == Valuation()
    # AI baskets with nothing to compare them with: refused, not compared with a default.
    alone = {**MINIMAL, "valuation": {"ai_baskets": ["US_AI_BIG8"]}}
    with pytest.raises(EpisodeError) as err:
        load_episode(write(tmp_path, alone, "alone"))
    assert any("ai_baskets need a dividend_basket or a dividend_index" in p
               for p in err.value.problems)
