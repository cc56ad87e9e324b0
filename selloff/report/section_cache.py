"""Rendered report sections kept between runs, so a refresh draws only the charts whose
data changed (issue #19).

A section is a function of the episode (its definition), the report code and the rows
of the tables its builder read: `build_report` hands the builder a mapping that records
which tables it reads, and stores the section (its HTML parts, inline SVG chart, the
chart's PNG preview) with the exact bytes of those tables' rows (Arrow IPC, so equal
digests mean equal rows in equal order). On the next render the entry is used when the
context and the digest of the same tables' rows are equal, else the section is built
again and replaces it. The builders are deterministic (fixed SVG hash salt, no clock),
so a page assembled from entries is byte for byte the page rendered from scratch.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from selloff.report.html import Section


def frame_digest(frame: pl.DataFrame | None) -> str:
    """SHA-256 of a frame's schema and rows in order (its Arrow IPC stream)."""
    if frame is None:
        return "absent"
    buf = io.BytesIO()
    frame.rechunk().write_ipc_stream(buf, compression="uncompressed")
    return hashlib.sha256(buf.getvalue()).hexdigest()


class RecordingFrames(Mapping[str, pl.DataFrame]):
    """A read-only mapping of frames that records the keys read (`get`, `[]`, `in`)."""

    def __init__(self, frames: Mapping[str, pl.DataFrame]) -> None:
        self._frames = frames
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> pl.DataFrame:
        self.read.add(key)
        return self._frames[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return key in self._frames

    def __iter__(self) -> Iterator[str]:
        # Iterating sees every table: all of them count as read.
        self.read.update(self._frames)
        return iter(self._frames)

    def __len__(self) -> int:
        return len(self._frames)


@dataclass
class Entry:
    context: str
    digests: dict[str, str]  # table -> frame_digest of the rows the builder read
    section: Section
    preview: bytes | None  # the chart as PNG (SectionCache.dpi), None without a chart


class SectionCache:
    """Entries in `folder`, one file per (block, section) key; `context` is what a
    section depends on besides its rows (the report code, the episode's definition, the
    library versions), `dpi` the PNG previews' resolution."""

    def __init__(self, folder: Path, context: str, dpi: int = 70) -> None:
        self.folder = Path(folder)
        self.context = f"{context}\0dpi={dpi}\0polars={pl.__version__}\0{_mpl_version()}"
        self.dpi = dpi
        self.hits: list[str] = []
        self.misses: list[str] = []

    def _path(self, key: str) -> Path:
        return self.folder / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".pkl")

    def lookup(self, key: str, context: str,
               frames: Mapping[str, pl.DataFrame]) -> Entry | None:
        """The stored entry of `key` if its context is this one and every table it read
        has the same rows in `frames` (a table then absent counts as changed)."""
        path = self._path(key)
        if not path.is_file():
            self.misses.append(key)
            return None
        try:
            entry: Entry = pickle.loads(path.read_bytes())
        except Exception:  # a torn or foreign file: built again
            self.misses.append(key)
            return None
        same = entry.context == self._full(key, context) and all(
            frame_digest(frames.get(t)) == d for t, d in entry.digests.items())
        (self.hits if same else self.misses).append(key)
        return entry if same else None

    def store(self, key: str, context: str, frames: Mapping[str, pl.DataFrame],
              read: set[str], section: Section, preview: bytes | None) -> None:
        entry = Entry(self._full(key, context),
                      {t: frame_digest(frames.get(t)) for t in sorted(read)}, section, preview)
        self.folder.mkdir(parents=True, exist_ok=True)
        # Through a temporary file: a run killed mid-write leaves no torn entry.
        path = self._path(key)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(pickle.dumps(entry))
        tmp.replace(path)

    def _full(self, key: str, context: str) -> str:
        return f"{self.context}\0{key}\0{context}"


def _mpl_version() -> str:
    import matplotlib

    return f"matplotlib={matplotlib.__version__}"
