"""Snapshot folders (DESIGN §3): one `<dataset>.csv` or `.parquet` each, plus manifest.json."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl

from selloff.contracts import DATASETS
from selloff.sources.base import Source
from selloff.validation import DataContractError, Violation

_COVERAGE_DATE = {
    "prices_daily": "trade_date",
    "index_levels_daily": "trade_date",
    "fund_flows_daily": "trade_date",
    "fx_rates_daily": "trade_date",
    "index_valuation_daily": "trade_date",
    "shares_outstanding": "as_of_date",
    "fundamentals": "period_end",
}


class SnapshotSource(Source):
    """Reads any folder in the snapshot format; absent datasets give None."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"snapshot folder {self.folder} does not exist")
        self.manifest = self._read_manifest()
        self.name = f"snapshot:{self.manifest.get('name') or self.folder.name}"
        self.synthetic = bool(self.manifest.get("synthetic", False))

    def _read_manifest(self) -> dict:
        path = self.folder / "manifest.json"
        if not path.exists():
            return {}
        return json.loads(path.read_text(encoding="utf-8"))

    def path_of(self, dataset: str) -> Path | None:
        """The dataset's one file; two files (a CSV beside a Parquet) are an error, since
        which one is meant cannot be guessed and reading one would hide the other."""
        found = [p for ext in ("parquet", "csv") if (p := self.folder / f"{dataset}.{ext}").exists()]
        if len(found) > 1:
            raise DataContractError(
                [Violation(dataset, None, "one file per dataset",
                           f"both {found[0]} and {found[1]} exist; keep one")], str(self.folder))
        return found[0] if found else None

    def origin(self, dataset: str) -> str:
        p = self.path_of(dataset)
        return str(p) if p else f"{self.folder}/{dataset}.*"

    def fetch(self, dataset: str) -> pl.DataFrame | None:
        path = self.path_of(dataset)
        if path is None:
            return None
        if path.stat().st_size == 0:
            raise DataContractError([Violation(dataset, None, "not empty", "the file is empty")], str(path))
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        _check_utf8(dataset, path)
        try:
            # Everything as text: the contract types it and names any cell that does not parse.
            return pl.read_csv(path, infer_schema=False, encoding="utf8")
        except pl.exceptions.NoDataError as exc:
            raise DataContractError(
                [Violation(dataset, None, "not empty", "the file has no header or rows")], str(path)
            ) from exc

    def describe(self) -> dict:
        return {"name": self.name, "synthetic": self.synthetic, "folder": str(self.folder),
                "manifest": self.manifest}


def _check_utf8(dataset: str, path: Path) -> None:
    """Refuse a CSV that is not UTF-8 (a GB18030 or Shift-JIS export), naming the first bad
    row: read lossily, its names would land garbled without a word."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Data rows are numbered after the header, as everywhere in the gate.
        row = data.count(b"\n", 0, exc.start)
        raise DataContractError(
            [Violation(dataset, row if row > 0 else None, "encoding: utf-8",
                       f"byte {data[exc.start]:#04x} at offset {exc.start} is not UTF-8 "
                       "(re-export the file as UTF-8)")], str(path)) from exc


def write_snapshot(frames: dict[str, pl.DataFrame], folder: str | Path, *, name: str,
                   description: str, provenance: str, licence: str,
                   caveats: list[str] | None = None, synthetic: bool = False,
                   fmt: str = "parquet") -> Path:
    """Write canonical frames as a snapshot folder that SnapshotSource reads back."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    coverage: dict[str, dict] = {}
    for dataset, df in frames.items():
        if dataset not in DATASETS or df is None:
            continue
        df = df.select(DATASETS[dataset].column_names)
        target = out / f"{dataset}.{fmt}"
        if fmt == "parquet":
            df.write_parquet(target)
        else:
            df.write_csv(target)
        entry: dict = {"rows": df.height}
        date_col = _COVERAGE_DATE.get(dataset)
        if date_col and df.height:
            entry["first"] = str(df[date_col].min())
            entry["last"] = str(df[date_col].max())
        coverage[dataset] = entry
    manifest = {
        "name": name,
        "description": description,
        "provenance": provenance,
        "licence": licence,
        "caveats": caveats or [],
        "synthetic": synthetic,
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "coverage": coverage,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    return out
