"""The one interface every source (demo, snapshot, live) implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import polars as pl

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

    def load_parts(self, dataset: str) -> Iterator[pl.DataFrame] | None:
        """fetch_parts + the landing gate on each part (row numbers in an error count
        from the part's first row)."""
        parts = self.fetch_parts(dataset)
        if parts is None:
            return None
        refs = {ref: self._reference(ref) for ref in REFERENCES.get(dataset, ())}
        return (conform(part, dataset, origin=self.origin(dataset), default_source=self.name,
                        refs=refs) for part in parts)

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
