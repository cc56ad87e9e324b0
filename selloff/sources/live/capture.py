"""Capture: run the live source for every dataset and keep the answers as a snapshot.

Sources forget (Eastmoney keeps ~100 trading days of flows, Yahoo revises, filings get
amended): a snapshot folder freezes what was fetched, when and from where, and replays
with SELLOFF_SOURCE=snapshot SELLOFF_SNAPSHOT_DIR=<folder>.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import polars as pl

from selloff.contracts import DATASET_ORDER
from selloff.sources.live.errors import SourceError
from selloff.sources.live.source import LiveConfig, LiveSource
from selloff.sources.live.universe import Universe, load_universe
from selloff.sources.snapshot import write_snapshot
from selloff.validation import DataContractError

log = logging.getLogger("selloff.sources.live")

LICENCE = ("No open licence: each source's terms apply (Yahoo Finance: personal use only; "
           "SEC EDGAR: public information; Eastmoney/CSIndex via AKShare, KRX, JPX: their "
           "terms of use; ECB: reuse with attribution). Keep captures out of public repositories.")
CAVEATS = [
    "Prices from Yahoo are converted back to the price as traded using Yahoo's split events; "
    "adj_close is Yahoo's split- and dividend-adjusted close. China prices from AKShare are "
    "unadjusted and have no adj_close.",
    "Concept-board members are the board's members on the capture day (no history).",
    "China stock and board flows: Eastmoney keeps about 100 trading days; older days are "
    "missing unless captured in time (see fetch_log errors).",
    "Japan flows are weekly (period = week, trade_date = the week's last trading day).",
    "US share counts are the cover-page counts of 10-K/10-Q filings, summed over share classes.",
]


class CaptureError(RuntimeError):
    """Some datasets failed; the others were written to `path` (see manifest fetch_log)."""

    def __init__(self, path: Path, failures: dict[str, str]):
        self.path = path
        self.failures = failures
        lines = "\n  ".join(f"{d}: {msg}" for d, msg in failures.items())
        super().__init__(f"capture into {path}: {len(failures)} dataset(s) failed:\n  {lines}")


def capture_snapshot(folder: str | Path, start: dt.date, end: dt.date,
                     universe: str | Path | Universe | None = None, *,
                     config: LiveConfig | None = None, source: LiveSource | None = None,
                     datasets: Iterable[str] = DATASET_ORDER, name: str | None = None,
                     strict: bool = True, fmt: str = "parquet") -> Path:
    """Fetch every dataset for [start, end] and write a snapshot folder; returns its path.

    Secrets, base URLs and retry settings come from `config` (the CLI builds it from the
    settings' live section; default: none, the services' own URLs). Each dataset is validated against the contract before it is written. A
    dataset that fails is left out and its error recorded in the manifest's fetch_log;
    with strict=True (the default) a CaptureError is raised after writing the rest.
    """
    if source is None:
        cfg = replace(config or LiveConfig(), start=start, end=end)
        uni = universe if isinstance(universe, Universe) else load_universe(
            universe if universe is not None else cfg.universe_path)
        source = LiveSource(cfg, universe=uni)
    frames: dict[str, pl.DataFrame] = {}
    failures: dict[str, str] = {}
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for dataset in datasets:
        try:
            df = source.load(dataset)
        except (SourceError, DataContractError) as exc:
            failures[dataset] = str(exc)
            source.fetch_log.add("live", dataset, source.origin(dataset), 0, error=str(exc))
            log.error("capture: %s failed: %s", dataset, exc)
            continue
        if df is None:
            log.info("capture: %s: nothing configured or nothing to fetch", dataset)
            continue
        frames[dataset] = df
    out = write_snapshot(
        frames, folder,
        name=name or Path(folder).name,
        description=f"Live capture of {source.start}..{source.end} "
                    f"(universe {Path(source.universe.path).name})",
        provenance="Fetched by selloff.sources.live (Yahoo Finance via yfinance, SEC EDGAR "
                   "XBRL company facts, Eastmoney/CSIndex via AKShare, KRX via pykrx, JPX "
                   "weekly investor-type statistics, ECB reference rates); see fetch_log.",
        licence=LICENCE, caveats=CAVEATS, synthetic=False, fmt=fmt)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["window"] = {"start": str(source.start), "end": str(source.end)}
    manifest["universe"] = source.universe.path
    manifest["capture_started_at"] = started
    manifest["failures"] = failures
    manifest["fetch_log"] = source.fetch_log.as_list()
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                             encoding="utf-8")
    if failures and strict:
        raise CaptureError(out, failures)
    return out
