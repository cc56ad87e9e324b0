"""The one interface every source (demo, snapshot, live) implements."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence

import polars as pl

from selloff.contracts import empty_frame
from selloff.validation import REFERENCES, conform


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
        parts = self.fetch_parts(dataset)
        if parts is None:
            return None
        refs = {ref: self._reference(ref) for ref in REFERENCES.get(dataset, ())}

        def gate(part: pl.DataFrame) -> pl.DataFrame:
            if keep is not None and part.height:
                part = keep(part)
                if not part.height:
                    # Nothing of the window in this part (no flows that day): an empty
                    # part, not the gate's "no rows" error, which is for an empty source.
                    return empty_frame(dataset).with_columns(pl.lit(self.name).alias("source"))
            return conform(part, dataset, origin=self.origin(dataset),
                           default_source=self.name, refs=refs)

        return (gate(part) for part in parts)

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


def window_rows(date_column: str, id_column: str | None, first: dt.date, last: dt.date,
                markets: Sequence[str] = ()) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """A part's rows in [first, last] (of `markets`, by the `<MARKET>:` prefix of
    `id_column`, when given), before the landing gate coerces it.

    The part is as the source gave it: a date may still be text. A row whose date or id
    cannot be read is kept, so the gate rejects it with its row and rule rather than the
    window dropping it unseen; a part lacking the columns is kept whole for the same
    reason.
    """
    def keep(part: pl.DataFrame) -> pl.DataFrame:
        if date_column not in part.columns:
            return part
        raw = pl.col(date_column)
        day = (raw.cast(pl.Date, strict=False) if part.schema[date_column] != pl.Utf8
               else raw.str.strip_chars().str.to_date("%Y-%m-%d", strict=False))
        unreadable = raw.is_not_null() & day.is_null()
        inside = day.is_between(first, last)
        if markets and id_column and id_column in part.columns \
                and part.schema[id_column] == pl.Utf8:
            ident = pl.col(id_column)
            market = ident.str.split_exact(":", 1).struct.field("field_0")
            inside = inside & (market.is_in(list(markets)) | ~ident.str.contains(":")
                               | ident.is_null())
        return part.filter(inside.fill_null(False) | unreadable | raw.is_null())
    return keep
