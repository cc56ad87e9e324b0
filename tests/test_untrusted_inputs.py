"""Every input is untrusted (issue #21, items 1 and 4): settings, episode files, snapshot
files, and the text they carry when it is shown.

Each case runs the real thing: the `selloff` CLI (typer's runner, in process), the episode
loader on files written here, the snapshot source and landing gate on CSV and Parquet
files, the extract asset through Dagster, the report renderers.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from selloff.episode import EpisodeError, load_episode
from selloff.settings import (
    LiveSettings,
    Settings,
    SettingsError,
    SourceKind,
    SourceSettings,
    settings_from_env,
)
from selloff.sources import make_source
from selloff.sources.snapshot import SnapshotSource
from selloff.validation import DataContractError
from tests.gate_snapshot import GOOD, write_good_snapshot

EPISODE = """\
id: mini
title: A minimal episode
markets: [US]
detection: {search_start: 2025-04-01, search_end: 2025-04-30, drawdown_lookback_start: 2025-01-01}
windows:
  - id: crash
    start: 2025-04-03
    end: 2025-04-04
    main: true
defaults:
  search_period: {start: 2025-04-01, end: 2025-04-30}
claims:
  - id: X01
    section: test
    quote: q
    text: t
    metric: index_worst_day_return
    params: {index_id: "US:SPX"}
    stated_value: -6
    comparator: lt
    unit: pct
"""

# A 1 KB "billion laughs": nine levels of nine aliases each, 9**8 strings if expanded.
_BOMB_LEVELS = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True))
ALIAS_BOMB = ('a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
              + _BOMB_LEVELS + EPISODE.replace("title: A minimal episode", "title: *i"))


def _episode(tmp_path: Path, text: str | bytes, name: str = "ep") -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    (folder / "episode.yaml").write_bytes(data)
    return folder


def _cli(*args: str):
    # Wide enough that no path or message is wrapped.
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})


def _flat(output: str) -> str:
    return " ".join(output.split())


# -- episode files ---------------------------------------------------------------------------
BAD_EPISODES = {
    "unknown-key-in-a-window": (EPISODE.replace("    main: true\n", "    main: true\n    colour: red\n"),
                                ["window 'crash': unknown key 'colour'"]),
    "unknown-key-in-a-claim": (EPISODE.replace("    unit: pct\n", "    unit: pct\n    weight: 2\n"),
                               ["claim 'X01': unknown key 'weight'"]),
    "duplicate-key": (EPISODE.replace("title: A minimal episode\n",
                                      "title: A minimal episode\ntitle: Another\n"),
                      ["duplicate key 'title'", "line 3", "first on line 2"]),
    "impossible-date": (EPISODE.replace("end: 2025-04-04", "end: 2025-02-30"),
                        ["'2025-02-30' is not a real date", "line 8"]),
    "impossible-quoted-date": (EPISODE.replace("end: 2025-04-04", 'end: "2025-02-30"'),
                               ["window 'crash'.end", "'2025-02-30' is not a real date"]),
    "nan-stated-value": (EPISODE.replace("stated_value: -6", "stated_value: .nan"),
                         ["'.nan' refused: numbers must be finite"]),
    "infinite-tolerance": (EPISODE.replace("stated_value: -6", "stated_value: -.inf"),
                           ["'-.inf' refused: numbers must be finite"]),
    "markup-in-a-window-id": (EPISODE.replace("id: crash", 'id: "[draft]$a$"'),
                              ["window '[draft]$a$': id '[draft]$a$' refused"]),
    "trailing-newline-in-a-window-id": (EPISODE.replace("id: crash", 'id: "crash\\n"'),
                                        ["id 'crash\\n' refused"]),
    "trailing-newline-in-the-episode-id": (EPISODE.replace("id: mini", 'id: "mini\\n"'),
                                           ["id 'mini\\n': must be lower case"]),
    "trailing-newline-in-a-claim-id": (EPISODE.replace("id: X01", 'id: "X01\\n"'),
                                       ["id 'X01\\n' refused"]),
    "basket-id-with-dollars": (EPISODE + 'baskets: {"A$1$": ["US:NVDA"]}\n',
                               ["basket 'A$1$': id 'A$1$' refused"]),
    "member-with-trailing-newline": (EPISODE + 'baskets: {B: ["US:NVDA\\n"]}\n',
                                     ["member 'US:NVDA\\n' is not a <MARKET>:<code> id"]),
    "alias-bomb": (ALIAS_BOMB, ["anchor &a refused", "line 1"]),
    "deep-nesting": (EPISODE.replace("title: A minimal episode",
                                     "title: " + "[" * 5000 + "]" * 5000),
                     ["nesting deeper than 20 levels refused"]),
    "latin-1": (EPISODE.replace("A minimal episode", "Café crash").encode("latin-1"),
                ["line 2", "byte 0xe9", "is not UTF-8"]),
    "markup-in-the-error": (EPISODE.replace("    main: true\n", '    main: true\n    "[/]": x\n'),
                            ["unknown key '[/]'"]),
}


@pytest.mark.parametrize("case", list(BAD_EPISODES), ids=list(BAD_EPISODES))
def test_a_bad_episode_file_exits_2_naming_file_entry_and_rule(tmp_path: Path, case: str) -> None:
    text, fragments = BAD_EPISODES[case]
    folder = _episode(tmp_path, text)
    result = _cli("episodes", str(folder))
    out = _flat(result.output)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert str(folder / "episode.yaml") in out
    for fragment in fragments:
        assert fragment in out, (fragment, out)


@pytest.mark.parametrize("case", ["alias-bomb", "latin-1", "deep-nesting", "impossible-date"])
def test_selloff_run_stops_on_a_bad_episode_file_before_any_work(tmp_path: Path, case: str) -> None:
    folder = _episode(tmp_path, BAD_EPISODES[case][0])
    result = _cli("run", "--episode", str(folder), "--warehouse", str(tmp_path / "w" / "s.duckdb"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert str(folder / "episode.yaml") in _flat(result.output)
    assert not (tmp_path / "w").exists()


def test_the_loader_raises_only_episode_errors(tmp_path: Path) -> None:
    for case, (text, _) in BAD_EPISODES.items():
        with pytest.raises(EpisodeError):
            load_episode(_episode(tmp_path, text, case))


def test_a_zone_less_midnight_is_a_day_and_other_datetimes_are_not(tmp_path: Path) -> None:
    ok = load_episode(_episode(tmp_path, EPISODE.replace("end: 2025-04-04",
                                                         "end: 2025-04-04 00:00:00"), "ok"))
    assert ok.main.end == dt.date(2025, 4, 4)
    with pytest.raises(EpisodeError, match=r"window 'crash'.end: expected an ISO date"):
        load_episode(_episode(tmp_path, EPISODE.replace("end: 2025-04-04",
                                                        "end: 2025-04-04 15:30:00"), "late"))


# -- one typed configuration path ------------------------------------------------------------
def test_episode_folders_with_a_colon_reach_the_run_as_given(tmp_path: Path) -> None:
    good = _episode(tmp_path, EPISODE, "ep:one")
    bad = _episode(tmp_path, EPISODE.replace("    main: true\n", "    main: true\n    colour: red\n"),
                   "two")
    settings = settings_from_env({}).with_options(episodes=[good, bad])
    assert settings.episodes == (good, bad)
    from selloff.resources import resources_for

    assert resources_for(settings)["episodes"].paths == [str(good), str(bad)]
    # The CLI checks exactly these two folders: the first loads, the second is named.
    result = _cli("run", "--episode", str(good), "--episode", str(bad),
                  "--warehouse", str(tmp_path / "w" / "s.duckdb"))
    out = _flat(result.output)
    assert result.exit_code == 2, result.output
    assert f"{bad}/episode.yaml" in out and "unknown key 'colour'" in out
    assert "file not found" not in out


def test_an_unknown_source_kind_is_refused_with_the_allowed_values() -> None:
    for build in (lambda: SourceSettings(kind="dmeo"),
                  lambda: settings_from_env({"SELLOFF_SOURCE": "dmeo"}),
                  lambda: settings_from_env({}).with_options(source="dmeo")):
        with pytest.raises(SettingsError, match="'dmeo' is not one of demo, snapshot, live"):
            build()
    result = _cli("run", "--source", "dmeo")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "'dmeo' is not one of demo, snapshot, live" in _flat(result.output)


def test_the_launchpad_refuses_an_unknown_kind() -> None:
    from orchestration.definitions import build_definitions

    job = build_definitions(Settings()).resolve_job_def("refresh")
    with pytest.raises(dg.DagsterInvalidConfigError) as err:
        dg.validate_run_config(job, {"resources": {"source": {"config": {"kind": "dmeo"}}}})
    # The UI offers the enum's values in a list; a run config naming another is refused.
    assert "not in enum type SourceKind got dmeo" in str(err.value)
    dg.validate_run_config(job, {"resources": {"source": {"config": {"kind": "snapshot",
                                                                     "snapshot_dir": "/x"}}}})


def test_resources_carry_whole_sections_and_give_them_back(tmp_path: Path) -> None:
    from selloff.resources import resources_for

    live = LiveSettings(start=dt.date(2025, 10, 1), end=dt.date(2025, 10, 31), cn_prices="yahoo",
                        max_attempts=2, connect_timeout=1.5, preflight=False,
                        ecb_base_url="http://127.0.0.1:9")
    settings = settings_from_env({"SELLOFF_WAREHOUSE": str(tmp_path / "w" / "s.duckdb"),
                                  "SELLOFF_LAKE_DIR": "s3://b/lake", "SELLOFF_DBT_TARGET": "spark"})
    settings = Settings(source=SourceSettings(kind=SourceKind.snapshot, snapshot_dir=tmp_path,
                                              demo_years=3, live=live),
                        store=settings.store, episodes=(tmp_path / "a:b",))
    res = resources_for(settings)
    assert res["source"].source_settings() == settings.source
    assert res["warehouse"].settings() == settings.store


def test_make_source_takes_everything_from_its_settings(tmp_path: Path, monkeypatch) -> None:
    snap = write_good_snapshot(tmp_path / "s")
    monkeypatch.setenv("SELLOFF_SOURCE", "demo")  # the environment is not asked again
    src = make_source(settings_from_env({"SELLOFF_SOURCE": "snapshot",
                                         "SELLOFF_SNAPSHOT_DIR": str(snap)}).source)
    assert isinstance(src, SnapshotSource) and src.folder == snap
    # One notion of synthetic: the source's flag (a demo export is synthetic, whatever
    # the source kind says).
    (snap / "manifest.json").write_text(json.dumps({"name": "x", "synthetic": True}))
    assert make_source(SourceSettings(kind="snapshot", snapshot_dir=snap)).synthetic
    assert not hasattr(Settings(), "is_synthetic")


# -- text shown literally --------------------------------------------------------------------
def test_the_episode_listing_shows_brackets_literally(tmp_path: Path) -> None:
    folder = _episode(tmp_path, EPISODE.replace("A minimal episode", '"[draft] a [/] b [bold]c"'))
    result = _cli("episodes", str(folder))
    assert result.exit_code == 0, (result.output, result.exception)
    assert "[draft] a [/] b [bold]c" in result.output


def test_the_run_summary_shows_titles_and_tags_literally() -> None:
    from io import StringIO

    from rich.console import Console

    from selloff.summary import EpisodeSummary, RunSummary, render

    window = {"window_id": "crash", "start": "2025-04-03", "end": "2025-04-04"}
    by_basket = pl.DataFrame({"group_id": ["[red]B[/]"], "n_securities": [2],
                              "mcap_usd_start": [1e9], "change_usd": [-1e8], "price_usd": [-1e8],
                              "shares_usd": [0.0], "fx_usd": [0.0], "share_of_total": [1.0]})
    summary = RunSummary(Path("/w/[x]/s.duckdb"), synthetic=True, table_rows={"marts.[t]": 1},
                         episodes=[EpisodeSummary("mini", "[draft] a [/] b", window,
                                                  by_basket=by_basket)])
    buf = StringIO()
    render(summary, Console(file=buf, width=300, color_system=None))
    text = buf.getvalue()
    for literal in ("[draft] a [/] b", "[synthetic]", "[red]B[/]", "/w/[x]/s.duckdb", "marts.[t]"):
        assert literal in text, literal


def _verdicts_with(tmp_path: Path, quote: str, title: str):
    from selloff.claims import compute_claim_verdicts

    ep = load_episode(_episode(tmp_path, EPISODE.replace("quote: q", f"quote: {json.dumps(quote)}")
                               .replace("A minimal episode", json.dumps(title)), "shown"))
    from selloff.analytics.tables import tag_episode

    return tag_episode(compute_claim_verdicts({}, ep.registry), ep.episode_id), ep


def test_markdown_and_html_show_file_text_literally(tmp_path: Path) -> None:
    from selloff.markdown import markdown_table
    from selloff.report import fact_check

    quote = "[draft](http://example.com) *bold* <script>x</script> $a$ | b"
    verdicts, ep = _verdicts_with(tmp_path, quote, "# [draft] <b>title</b>")
    md = fact_check.render_markdown(verdicts, episodes=[ep])
    assert "> \\[draft\\]\\(http://example.com\\) \\*bold\\* \\<script\\>x\\</script\\> " \
           "\\$a\\$ \\| b" in md
    assert "## \\# \\[draft\\] \\<b\\>title\\</b\\>" in md
    assert "<script>" not in md and "**" in md  # the page's own emphasis stays Markdown
    page = fact_check.render_html(verdicts, episodes=[ep])
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>" not in page
    assert "[draft](http://example.com) *bold*" in page
    table = markdown_table(pl.DataFrame({"id [x]": ["_a_ [b](c)", "- 1"], "v": [-0.5, 2.0]}))
    assert "| id \\[x\\] | v |" in table
    assert "| \\_a\\_ \\[b\\]\\(c\\) | -0.5 |" in table and "| \\- 1 | 2 |" in table


def test_charts_show_dollars_literally() -> None:
    from selloff.report.charts import basket_level_chart, hbar_panels, to_png, to_svg

    days = [dt.date(2025, 4, 1), dt.date(2025, 4, 2)]
    levels = pl.DataFrame({"basket_id": ["AI$1$ $\\frac{x", "AI$1$ $\\frac{x", "B$$", "B$$"],
                           "trade_date": days * 2, "level": [100.0, 95.0, 100.0, 97.0]})
    fig = basket_level_chart(levels, (days[0], days[1]), title="window $a$ and $b$")
    assert to_svg(fig).startswith("<svg") and to_png(fig)[:4] == b"\x89PNG"
    bars = hbar_panels([("w$1$ $x", ["$\\sqrt{", "a$b$"], [1e9, -2e9])], "t$ $", xlabel="$x$")
    assert to_svg(bars).startswith("<svg")


# -- snapshot files: the same rules whatever the format --------------------------------------
def _typed(dataset: str, tmp_path: Path) -> pl.DataFrame:
    """The valid snapshot's dataset as the gate types it (what a Parquet file would hold)."""
    return SnapshotSource(write_good_snapshot(tmp_path / "typed")).load(dataset)


def _parquet_snapshot(tmp_path: Path, dataset: str, df: pl.DataFrame) -> SnapshotSource:
    folder = write_good_snapshot(tmp_path / "pq")
    (folder / f"{dataset}.csv").unlink()
    df.write_parquet(folder / f"{dataset}.parquet")
    return SnapshotSource(folder)


def _named(src: SnapshotSource, dataset: str) -> set[tuple[str, int | None, str]]:
    with pytest.raises(DataContractError) as err:
        src.load(dataset)
    assert src.origin(dataset) in str(err.value)
    return {(v.dataset, v.row, v.rule) for v in err.value.violations}


def test_a_zoned_timestamp_is_not_a_date(tmp_path: Path) -> None:
    prices = _typed("prices_daily", tmp_path)
    # Tokyo midnight is 15:00 UTC the day before: cast, it would land a day early.
    zoned = prices.with_columns(pl.col("trade_date").cast(pl.Datetime("us"))
                                .dt.replace_time_zone("Asia/Tokyo"))
    named = _named(_parquet_snapshot(tmp_path, "prices_daily", zoned), "prices_daily")
    assert {("prices_daily", r, "type Date") for r in range(1, prices.height + 1)} <= named


def test_a_zone_less_midnight_is_a_date_and_other_times_are_not(tmp_path: Path) -> None:
    prices = _typed("prices_daily", tmp_path)
    midnight = prices.with_columns(pl.col("trade_date").cast(pl.Datetime("us")))
    landed = _parquet_snapshot(tmp_path / "a", "prices_daily", midnight).load("prices_daily")
    assert landed.equals(prices)
    noon = midnight.with_columns(pl.when(pl.int_range(pl.len()) == 1)
                                 .then(pl.col("trade_date") + pl.duration(hours=12))
                                 .otherwise(pl.col("trade_date")).alias("trade_date"))
    assert _named(_parquet_snapshot(tmp_path / "b", "prices_daily", noon), "prices_daily") \
        == {("prices_daily", 2, "type Date")}


def test_lossless_parquet_types_land_as_the_csv_does(tmp_path: Path) -> None:
    prices = _typed("prices_daily", tmp_path)
    retyped = prices.with_columns(pl.col("currency").cast(pl.Categorical),
                                  pl.col("source").cast(pl.Enum(["test"])),
                                  pl.col("trade_date").cast(pl.Datetime("ns")))
    landed = _parquet_snapshot(tmp_path / "p", "prices_daily", retyped).load("prices_daily")
    assert landed.equals(prices)
    funda = _typed("fundamentals", tmp_path)
    small = funda.with_columns(pl.col("fiscal_year").cast(pl.Int16), pl.col("value").cast(pl.Float32))
    landed = _parquet_snapshot(tmp_path / "f", "fundamentals", small).load("fundamentals")
    assert landed["fiscal_year"].equals(funda["fiscal_year"])
    assert landed.drop("value").equals(funda.drop("value"))


def test_an_integer_is_not_a_date(tmp_path: Path) -> None:
    prices = _typed("prices_daily", tmp_path)
    days = prices.with_columns(pl.col("trade_date").cast(pl.Int32))  # days since 1970
    named = _named(_parquet_snapshot(tmp_path, "prices_daily", days), "prices_daily")
    assert ("prices_daily", 1, "type Date") in named


def test_integers_are_integral(tmp_path: Path) -> None:
    funda = _typed("fundamentals", tmp_path)
    whole = funda.with_columns(pl.col("fiscal_year").cast(pl.Float64))
    assert _parquet_snapshot(tmp_path / "a", "fundamentals", whole).load("fundamentals").equals(funda)
    half = whole.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.col("fiscal_year") + 0.5)
                              .otherwise(pl.col("fiscal_year")).alias("fiscal_year"))
    assert _named(_parquet_snapshot(tmp_path / "b", "fundamentals", half), "fundamentals") \
        == {("fundamentals", 1, "type Int64")}


def test_a_boolean_is_not_a_number(tmp_path: Path) -> None:
    prices = _typed("prices_daily", tmp_path)
    flags = prices.with_columns(pl.lit(True).alias("volume"))
    named = _named(_parquet_snapshot(tmp_path, "prices_daily", flags), "prices_daily")
    assert ("prices_daily", 1, "type Float64") in named


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_prices_and_amounts_have_plausibility_bounds(tmp_path: Path, fmt: str) -> None:
    prices = _typed("prices_daily", tmp_path)
    huge = prices.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(1e300)
                               .otherwise(pl.col(c)).alias(c) for c in ("high", "close"))
    if fmt == "parquet":
        src = _parquet_snapshot(tmp_path, "prices_daily", huge)
    else:
        src = SnapshotSource(write_good_snapshot(tmp_path / "csv",
                                                 {"prices_daily": huge.write_csv()}))
    named = _named(src, "prices_daily")
    assert {("prices_daily", 3, "plausible: close"), ("prices_daily", 3, "plausible: high")} <= named
    flows = _typed("fund_flows_daily", tmp_path)
    big = flows.with_columns(pl.lit(-1e300).alias("net_buy_value"))
    named = _named(_parquet_snapshot(tmp_path / "f", "fund_flows_daily", big), "fund_flows_daily")
    assert ("fund_flows_daily", 1, "plausible: net_buy_value") in named


def test_a_ragged_csv_names_the_file_the_row_and_the_rule(tmp_path: Path) -> None:
    lines = GOOD["prices_daily"].splitlines()
    lines[2] = lines[2] + ",extra"              # data row 2: one field too many
    lines[3] = ",".join(lines[3].split(",")[:-2])  # data row 3: two too few
    src = SnapshotSource(write_good_snapshot(tmp_path / "s", {"prices_daily": "\n".join(lines)}))
    assert _named(src, "prices_daily") == {("prices_daily", 2, "csv: fields per row"),
                                           ("prices_daily", 3, "csv: fields per row")}
    # With quotes (a comma inside one is not a separator) the csv module counts.
    quoted = GOOD["indexes"].replace("S&P 500", '"S&P, 500"') + 'US:NDX,US,"Nasdaq, 100",USD\n'
    src = SnapshotSource(write_good_snapshot(tmp_path / "q", {"indexes": quoted}))
    assert _named(src, "indexes") == {("indexes", 3, "csv: fields per row")}


@pytest.mark.parametrize(("text", "rule", "row"), [
    ('{"name": "x",\n "synthetic": tru}', "manifest: valid JSON", 2),
    ('["not", "an", "object"]', "manifest: a JSON object", None),
    ('{"name": "x", "name": "y"}', "manifest: each key once", None),
    ('{"name": "x", "synthetic": "yes"}', "manifest: synthetic is a bool", None),
    (b'{"name": "caf\xe9"}', "encoding: utf-8", 1),
])
def test_a_malformed_manifest_names_the_file_and_the_rule(tmp_path: Path, text, rule, row) -> None:
    folder = write_good_snapshot(tmp_path / "s")
    path = folder / "manifest.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(DataContractError) as err:
        SnapshotSource(folder)
    assert [(v.dataset, v.row, v.rule) for v in err.value.violations] == [("manifest.json", row, rule)]
    assert str(path) in str(err.value)


def test_selloff_run_stops_on_a_missing_folder_or_bad_manifest_before_any_work(tmp_path: Path) -> None:
    folder = write_good_snapshot(tmp_path / "s")
    (folder / "manifest.json").write_text('{"name": "x",\n "synthetic": tru}')
    for snap, expect in ((folder, [str(folder / "manifest.json"), "row 2", "manifest: valid JSON"]),
                         (tmp_path / "nowhere", [f"snapshot folder {tmp_path / 'nowhere'} does "
                                                 "not exist"])):
        result = _cli("run", "--source", "snapshot", "--snapshot-dir", str(snap),
                      "--warehouse", str(tmp_path / "w" / "s.duckdb"))
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        for fragment in expect:
            assert fragment in _flat(result.output), (fragment, result.output)
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("broken", ["ragged-csv", "manifest", "parquet"])
def test_bad_snapshot_files_fail_the_extract_step_once(tmp_path: Path, isolated_env: Path,
                                                       broken: str) -> None:
    from assets.extract import extract_assets
    from selloff.resources import RefreshWindow, SourceResource, WarehouseResource

    folder = write_good_snapshot(tmp_path / "s")
    if broken == "ragged-csv":
        (folder / "prices_daily.csv").write_text(GOOD["prices_daily"] + "US:NVDA,2025-11-05\n")
        expect = ["prices_daily.csv", "row 5", "csv: fields per row"]
    elif broken == "manifest":
        (folder / "manifest.json").write_text("{oops")
        expect = ["manifest.json", "row 1", "manifest: valid JSON"]
    else:
        (folder / "prices_daily.csv").unlink()
        (folder / "prices_daily.parquet").write_bytes(b"PAR1 not really")
        expect = ["prices_daily.parquet", "file format: parquet"]
    prices = next(a for a in extract_assets if a.key == dg.AssetKey(["raw", "prices_daily"]))
    began = time.perf_counter()
    result = dg.materialize([prices], raise_on_error=False, resources={
        "source": SourceResource(kind="snapshot", snapshot_dir=str(folder)),
        "warehouse": WarehouseResource(path=str(isolated_env)), "refresh": RefreshWindow()})
    assert not result.success
    kinds = [e.event_type for e in result.all_events]
    assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in kinds
    assert kinds.count(dg.DagsterEventType.STEP_FAILURE) == 1
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    text = failure.step_failure_data.user_failure_data.description
    for fragment in expect:
        assert fragment in text, (fragment, text)
    assert time.perf_counter() - began < 60
