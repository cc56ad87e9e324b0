"""The one interface every source (demo, snapshot, live) implements."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import polars as pl

from selloff.contracts import empty_frame
from selloff.validation import REFERENCES, conform


@dataclass(frozen=True)
class KeptPart:
    """A part the source has already cut down to a window's rows (`window_rows`) while
    reading it; with no rows it means nothing of the window, not an empty source."""

    frame: pl.DataFrame


class Source(ABC):
    """Produces the canonical datasets of DESIGN §3.

    `fetch` returns the dataset in any column order and with extra columns (they are
    dropped), or None when the source does not have it: the assets that need it then
    report insufficient_data instead of failing.
    """

    name: str = "source"
    synthetic: bool = False

    @abstractmethod
    def fetch(self, dataset: str) -> pl.DataFrame | None: ...

    def origin(self, dataset: str) -> str:
        """Where a dataset came from, for error messages (a file path, a URL, 'demo')."""
        return f"{self.name}:{dataset}"

    def describe(self) -> dict:
        return {"name": self.name, "synthetic": self.synthetic}

    def fetch_parts(self, dataset: str) -> Iterator[pl.DataFrame] | None:
        """The dataset in parts whose keys never overlap (a source that can stream, like the
        demo market, yields one market at a time); by default the whole of `fetch`."""
        df = self.fetch(dataset)
        return None if df is None else iter([df])

    def load_parts(self, dataset: str,
                   keep: Callable[[pl.DataFrame], pl.DataFrame] | None = None
                   ) -> Iterator[pl.DataFrame] | None:
        """fetch_parts + the landing gate on each part (row numbers in an error count
        from the part's first row). `keep` selects each part's rows before the gate (a
        refresh window's, `window_rows`): a source that can only give everything then
        lands, and checks, only those."""
        parts = (self.fetch_kept_parts(dataset, keep) if keep is not None
                 else self.fetch_parts(dataset))
        if parts is None:
            return None
        refs = {ref: self._reference(ref) for ref in REFERENCES.get(dataset, ())}

        def gate(part: pl.DataFrame | KeptPart) -> pl.DataFrame:
            kept = isinstance(part, KeptPart)
            if kept:
                part = part.frame
            elif keep is not None and part.height:
                part, kept = keep(part), True
            if kept and not part.height:
                # Nothing of the window in this part (no flows that day): an empty
                # part, not the gate's "no rows" error, which is for an empty source.
                return empty_frame(dataset).with_columns(pl.lit(self.name).alias("source"))
            return conform(part, dataset, origin=self.origin(dataset),
                           default_source=self.name, refs=refs)

        return (gate(part) for part in parts)

    def fetch_kept_parts(self, dataset: str, keep: Callable[[pl.DataFrame], pl.DataFrame]
                         ) -> Iterator[pl.DataFrame | KeptPart] | None:
        """fetch_parts for a refresh window: a source that can select `keep`'s rows
        while reading (a Parquet file's scan) yields them as `KeptPart`s; the other
        parts are cut down by the gate. By default every part is as fetch_parts gives it."""
        return self.fetch_parts(dataset)

    def load(self, dataset: str) -> pl.DataFrame | None:
        """fetch + coerce + validate; raises DataContractError naming dataset, row and rule."""
        raw = self.fetch(dataset)
        if raw is None:
            return None
        refs = {ref: self._reference(ref) for ref in REFERENCES.get(dataset, ())}
        return conform(raw, dataset, origin=self.origin(dataset), default_source=self.name,
                       refs=refs)

    def _reference(self, dataset: str) -> pl.DataFrame | None:
        """Another dataset, through the gate, for the rules across datasets (cached: the
        live source would otherwise ask its services twice)."""
        cache: dict[str, pl.DataFrame | None] = self.__dict__.setdefault("_gate_references", {})
        if dataset not in cache:
            cache[dataset] = self.load(dataset)
        return cache[dataset]


F = TypeVar("F", pl.DataFrame, pl.LazyFrame)


def window_rows(date_column: str, id_column: str | None, first: dt.date, last: dt.date,
                markets: Sequence[str] = ()) -> Callable[[F], F]:
    """A part's rows in [first, last] (of `markets`, by the `<MARKET>:` prefix of
    `id_column`, when given), before the landing gate coerces it.

    The part (a frame, or a lazy scan of one) is as the source gave it: a date may still be text. A row whose date or id
    cannot be read is kept, so the gate rejects it with its row and rule rather than the
    window dropping it unseen; a part lacking the columns is kept whole for the same
    reason.
    """
    def keep(part: F) -> F:
        # A LazyFrame (a Parquet scan) gets the filter pushed into its reader.
        schema = part.collect_schema()
        if date_column not in schema:
            return part
        raw = pl.col(date_column)
        day = (raw.cast(pl.Date, strict=False) if schema[date_column] != pl.Utf8
               else raw.str.strip_chars().str.to_date("%Y-%m-%d", strict=False))
        unreadable = raw.is_not_null() & day.is_null()
        inside = day.is_between(first, last)
        if markets and id_column and id_column in schema and schema[id_column] == pl.Utf8:
            ident = pl.col(id_column)
            # The `<MARKET>:` prefix compared in place (no split of every id into a
            # new string): an id with a colon is of a market of the window exactly when
            # it starts with one of their prefixes.
            of_market = pl.any_horizontal([ident.str.starts_with(f"{m}:") for m in markets])
            inside = inside & (of_market | ~ident.str.contains(":", literal=True)
                               | ident.is_null())
        return part.filter(inside.fill_null(False) | unreadable | raw.is_null())
    return keep
