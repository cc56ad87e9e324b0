"""Snapshot folders (DESIGN §3): one `<dataset>.csv` or `.parquet` each, plus manifest.json."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl

from selloff.contracts import DATASETS
from selloff.settings import SettingsError
from selloff.sources.base import KeptPart, Source
from selloff.validation import MAX_REPORTED, DataContractError, Violation

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
            raise SettingsError(f"snapshot folder {self.folder} does not exist")
        self.manifest = self._read_manifest()
        self.name = f"snapshot:{self.manifest.get('name') or self.folder.name}"
        self.synthetic = bool(self.manifest.get("synthetic", False))

    def _read_manifest(self) -> dict:
        path = self.folder / "manifest.json"
        if not path.exists():
            return {}
        return read_manifest(path)

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
            try:
                return pl.read_parquet(path)
            except (pl.exceptions.PolarsError, OSError) as exc:
                raise DataContractError(
                    [Violation(dataset, None, "file format: parquet",
                               f"not a readable Parquet file ({_first_line(exc)})")],
                    str(path)) from None
        _check_utf8(dataset, path)
        _check_fields(dataset, path)
        try:
            # Everything as text: the contract types it and names any cell that does not parse.
            return pl.read_csv(path, infer_schema=False, encoding="utf8")
        except pl.exceptions.NoDataError as exc:
            raise DataContractError(
                [Violation(dataset, None, "not empty", "the file has no header or rows")], str(path)
            ) from exc
        except pl.exceptions.PolarsError as exc:
            raise DataContractError(
                [Violation(dataset, None, "file format: csv",
                           f"not a readable CSV file ({_first_line(exc)})")], str(path)) from None

    def fetch_kept_parts(self, dataset: str, keep: Callable[[pl.DataFrame], pl.DataFrame]
                         ) -> Iterator[pl.DataFrame | KeptPart] | None:
        """A Parquet file's window rows, selected inside the scan (a one-day refresh
        reads the window's rows, not the 10 M of the whole file); a CSV, or a Parquet
        file without rows (which the gate refuses as such), as fetch gives it."""
        path = self.path_of(dataset)
        if path is None or path.suffix != ".parquet" or path.stat().st_size == 0:
            return self.fetch_parts(dataset)
        try:
            scan = pl.scan_parquet(path)
            if scan.select(pl.len()).collect().item() == 0:
                return iter([scan.collect()])
            return iter([KeptPart(keep(scan).collect())])
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise DataContractError(
                [Violation(dataset, None, "file format: parquet",
                           f"not a readable Parquet file ({_first_line(exc)})")],
                str(path)) from None

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


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def read_manifest(path: Path) -> dict[str, Any]:
    """manifest.json as a mapping, or DataContractError naming the file, the line and the
    rule (a bad manifest is bad input: retrying will not mend it)."""

    def violation(line: int | None, rule: str, detail: str) -> DataContractError:
        return DataContractError([Violation("manifest.json", line, rule, detail)], str(path))

    def no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        dup = next((k for k in keys if keys.count(k) > 1), None)
        if dup is not None:
            raise ValueError(f"duplicate key {dup!r}")
        return dict(pairs)

    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise violation(data.count(b"\n", 0, exc.start) + 1, "encoding: utf-8",
                        f"byte {data[exc.start]:#04x} at offset {exc.start} is not UTF-8") from None
    try:
        manifest = json.loads(text, object_pairs_hook=no_repeats)
    except json.JSONDecodeError as exc:
        raise violation(exc.lineno, "manifest: valid JSON", exc.msg) from None
    except ValueError as exc:
        raise violation(None, "manifest: each key once", str(exc)) from None
    except RecursionError:
        raise violation(None, "manifest: valid JSON", "nested too deeply") from None
    if not isinstance(manifest, dict):
        raise violation(None, "manifest: a JSON object",
                        f"the file holds a {type(manifest).__name__}, not an object")
    for key, kind in (("name", str), ("synthetic", bool)):
        if key in manifest and not isinstance(manifest[key], kind):
            raise violation(None, f"manifest: {key} is a {kind.__name__}",
                            f"{key} is {manifest[key]!r}")
    return manifest


def _check_fields(dataset: str, path: Path) -> None:
    """Every CSV row has as many fields as the header: a short row would otherwise read
    as empty cells, a long one fail with a message that names no row."""
    # One pass of polars over the raw lines (a separator that does not occur, no quoting);
    # a file with quotes (a comma or line break may sit inside one) goes through the csv
    # module instead, which knows the quoting rules.
    lines = pl.read_csv(path, has_header=False, separator="\x1f", quote_char=None,
                        infer_schema=False, new_columns=["line"], truncate_ragged_lines=True,
                        encoding="utf8")["line"]
    if lines.len() == 0:
        return
    if lines.str.contains('"', literal=True).any():
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            width = len(next(reader, []))
            bad = [(i, len(r)) for i, r in enumerate(reader, start=1) if r and len(r) != width]
    else:
        counts = lines.fill_null("").str.count_matches(",", literal=True) + 1
        width = int(counts[0])
        rows = pl.DataFrame({"n": counts}).with_row_index("row").slice(1)
        rows = rows.filter((pl.col("n") != width) & lines.slice(1).is_not_null())
        bad = [(int(r), int(n)) for r, n in rows.head(MAX_REPORTED).iter_rows()]
    if bad:
        raise DataContractError(
            [Violation(dataset, row, "csv: fields per row",
                       f"{n} field(s), the header has {width}") for row, n in bad[:MAX_REPORTED]],
            str(path))


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
