"""What changed in `raw` since an analytics table was last computed, and which episodes'
rows that table must therefore recompute (issue #19: a refresh costs what changed).

Two small tables in the build file, in their own schema (not `raw` or `analytics`, so the
lake, the catalog and the GX suites never see them):

- `refresh_state.landings`, the ledger: one row per landing that changed `raw` (seq,
  run_id, dataset, changed_from). A windowed landing of a daily dataset changed the daily
  facts from its first day on (changed_from = that day); a full landing, or a non-daily
  table whose content hash differs from before the landing, may have changed anything
  (changed_from NULL). A non-daily table re-landed with the same content adds no row.
- `refresh_state.episodes`: per analytics asset and episode, the episode definition's
  hash and the last ledger seq its rows reflect.

An asset's plan (`plan_episodes`) recomputes an episode when its rows are missing, its
definition changed, or a ledger row newer than its seq reaches its span
(`selloff.episode.EpisodeSpan.touched_by`); it keeps the others' rows as they are. Every
ledger row since the asset's last success counts, so a run that failed before the
analytics leaves its changes for the next run to pick up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import duckdb
import polars as pl

from selloff.episode import Episode, definition_hash, episode_span
from selloff.warehouse import replace_table

SCHEMA = "refresh_state"
LEDGER = f"{SCHEMA}.landings"
STATE = f"{SCHEMA}.episodes"
EPISODE_COLUMN = "episode_id"


def _ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    con.execute(f"CREATE TABLE IF NOT EXISTS {LEDGER} (seq BIGINT, run_id VARCHAR, "
                "dataset VARCHAR, changed_from DATE, changed_to DATE, markets VARCHAR[], "
                "landed_at TIMESTAMP)")
    con.execute(f"CREATE TABLE IF NOT EXISTS {STATE} (asset VARCHAR, episode_id VARCHAR, "
                "definition VARCHAR, seq BIGINT)")
    con.execute(f"COMMENT ON TABLE {LEDGER} IS 'Each landing that changed raw: dataset, the "
                "days and markets it changed (changed_from NULL: anything). What a windowed "
                "refresh recomputes is decided from it (selloff.refresh_state).'")
    con.execute(f"COMMENT ON TABLE {STATE} IS 'Per analytics asset and episode: the episode "
                "definition hash and ledger seq its rows reflect; per lake layer and report, "
                "what it was last written from.'")


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
        "AND table_name = ?", [schema, table]).fetchall()[0][0])


def content_hash(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str | None:
    """Row count and an order-independent sum of row hashes of schema.table (None when
    absent): equal for equal contents, whatever the row order of the landing."""
    if not _exists(con, schema, table):
        return None
    n, total = con.execute(f'SELECT count(*), coalesce(sum(hash(t)), 0)::VARCHAR '
                           f'FROM "{schema}"."{table}" AS t').fetchall()[0]
    return f"{n}:{total}"


def record_landing(con: duckdb.DuckDBPyConnection, run_id: str, dataset: str,
                   changed_from: dt.date | None, changed_to: dt.date | None = None,
                   markets: Sequence[str] = ()) -> int:
    """Append a ledger row: raw.`dataset` changed in [changed_from, changed_to] (None,
    None: everything), in `markets` (empty: every market)."""
    _ensure(con)
    seq = int(con.execute(f"SELECT coalesce(max(seq), 0) + 1 FROM {LEDGER}").fetchall()[0][0])
    con.execute(f"INSERT INTO {LEDGER} VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
                [seq, run_id, dataset, changed_from, changed_to if changed_from else None,
                 list(markets)])
    return seq


@dataclass(frozen=True)
class Changes:
    """What the ledger holds after some seq: `everything` when the consumer never
    recorded a seq; the raw datasets changed whole; the others' changed rows ((first,
    last) days, markets; no markets: every market)."""

    everything: bool
    whole: frozenset[str]
    datasets: dict[str, list[tuple[dt.date, dt.date, tuple[str, ...]]]]
    seq: int

    @property
    def any_whole(self) -> bool:
        return self.everything or bool(self.whole)

    @property
    def first(self) -> dt.date | None:
        """The earliest changed day of the windowed landings (None: none)."""
        days = [f for spans in self.datasets.values() for f, _, _ in spans]
        return min(days) if days else None

    def changed(self, dataset: str) -> bool:
        return self.everything or dataset in self.whole or dataset in self.datasets


def changes_since(con: duckdb.DuckDBPyConnection, consumer: str) -> Changes:
    """The ledger rows after the seq `consumer` last recorded with `mark_seq` (every row
    when it never did: then everything counts as changed)."""
    _ensure(con)
    seq = int(con.execute(f"SELECT coalesce(max(seq), 0) FROM {LEDGER}").fetchall()[0][0])
    done = con.execute(f"SELECT seq FROM {STATE} WHERE asset = ? AND episode_id = ''",
                       [consumer]).fetchall()
    if not done:
        return Changes(True, frozenset(), {}, seq)
    rows = con.execute(f"SELECT dataset, changed_from, changed_to, markets FROM {LEDGER} "
                       "WHERE seq > ? ORDER BY seq", [done[0][0]]).fetchall()
    whole = frozenset(r[0] for r in rows if r[1] is None)
    datasets: dict[str, list[tuple[dt.date, dt.date, tuple[str, ...]]]] = {}
    for dataset, first, last, markets in rows:
        if first is not None:
            datasets.setdefault(dataset, []).append((first, last or first, tuple(markets or ())))
    return Changes(False, whole, datasets, seq)


def consumed_seq(con: duckdb.DuckDBPyConnection, consumer: str) -> int | None:
    """The seq `consumer` last recorded with `mark_seq` (None: never)."""
    _ensure(con)
    rows = con.execute(f"SELECT seq FROM {STATE} WHERE asset = ? AND episode_id = ''",
                       [consumer]).fetchall()
    return int(rows[0][0]) if rows else None


def mark_seq(con: duckdb.DuckDBPyConnection, consumer: str, seq: int) -> None:
    """Record that `consumer` (a lake layer, say) reflects the ledger up to `seq`."""
    _ensure(con)
    con.execute(f"DELETE FROM {STATE} WHERE asset = ? AND episode_id = ''", [consumer])
    con.execute(f"INSERT INTO {STATE} VALUES (?, '', '', ?)", [consumer, seq])


@dataclass(frozen=True)
class EpisodePlan:
    """Which episodes an analytics asset recomputes and which rows it keeps, and why."""

    asset: str
    recompute: tuple[str, ...]
    kept: tuple[str, ...]
    reasons: dict[str, str]
    seq: int

    def of(self, episodes: Sequence[Episode]) -> tuple[Episode, ...]:
        return tuple(e for e in episodes if e.episode_id in self.recompute)

    def metadata(self) -> dict[str, str | int]:
        return {"episodes_recomputed": ", ".join(self.recompute) or "none",
                "episodes_kept": ", ".join(self.kept) or "none",
                "refresh_reasons": "; ".join(f"{e}: {r}" for e, r in self.reasons.items())
                or "none", "ledger_seq": self.seq}


def plan_episodes(con: duckdb.DuckDBPyConnection, asset: str, episodes: Sequence[Episode],
                  tables: Iterable[tuple[str, str]]) -> EpisodePlan:
    """The episodes `asset` must recompute: rows missing from any of its `tables`
    (schema, table) or never computed, a changed definition, or a ledger row since its last success that
    reaches the episode's span."""
    _ensure(con)
    seq = int(con.execute(f"SELECT coalesce(max(seq), 0) FROM {LEDGER}").fetchall()[0][0])
    state = {r[0]: (r[1], r[2]) for r in con.execute(
        f"SELECT episode_id, definition, seq FROM {STATE} WHERE asset = ?", [asset]).fetchall()}
    recompute, kept, reasons = [], [], {}
    for e in episodes:
        seen = state.get(e.episode_id)
        if seen is None:
            why = "never computed by this asset"
        elif seen[0] != definition_hash(e):
            why = "episode definition changed"
        else:
            since = con.execute(
                f"SELECT dataset, changed_from FROM {LEDGER} WHERE seq > ? ORDER BY seq",
                [seen[1]]).fetchall()
            span = episode_span(e)
            hit = [(d, c) for d, c in since if span.touched_by(c)]
            why = (f"{hit[0][0]} changed " + ("whole" if hit[0][1] is None
                                              else f"from {hit[0][1]}")
                   + f" (span ends {span.last})") if hit else ""
        if why:
            recompute.append(e.episode_id)
            reasons[e.episode_id] = why
        else:
            kept.append(e.episode_id)
    if any(not _exists(con, s, t) for s, t in tables):
        # A table that is not there yet: every episode's rows are computed.
        reasons.update({k: "table missing" for k in kept})
        recompute, kept = [e.episode_id for e in episodes], []
    return EpisodePlan(asset, tuple(recompute), tuple(kept), reasons, seq)


def replace_episodes(con: duckdb.DuckDBPyConnection, schema: str, table: str,
                     df: pl.DataFrame, plan: EpisodePlan) -> int:
    """Replace the plan's recomputed episodes' rows of schema.table by `df` (their new
    rows) and drop rows of episodes no longer configured, in one transaction; the kept
    episodes' rows stay as they are. Returns the table's row count after."""
    target = f'"{schema}"."{table}"'
    if not plan.kept or not _exists(con, schema, table):
        replace_table(con, schema, table, df)
        return df.height
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {target} WHERE {EPISODE_COLUMN} NOT IN "
                    "(SELECT unnest(?::VARCHAR[]))", [list(plan.kept)])
        if df.width and df.height:
            con.register("__episodes_incoming", df.to_arrow())
            con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM __episodes_incoming")
            con.unregister("__episodes_incoming")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return int(con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0])


def mark_done(con: duckdb.DuckDBPyConnection, plan: EpisodePlan,
              episodes: Sequence[Episode]) -> None:
    """Record that `plan.asset`'s rows reflect the ledger up to plan.seq for every
    configured episode (recomputed ones now, kept ones were already)."""
    _ensure(con)
    rows = [(plan.asset, e.episode_id, definition_hash(e), plan.seq) for e in episodes]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {STATE} WHERE asset = ?", [plan.asset])
        if rows:
            con.executemany(f"INSERT INTO {STATE} VALUES (?, ?, ?, ?)", rows)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def inputs_fingerprint(con: duckdb.DuckDBPyConnection, tables: Iterable[tuple[str, str]],
                       extra: str = "") -> str:
    """One digest of the contents of `tables` (content_hash each) and `extra` (what else
    an output depends on: its code, its episodes' definitions)."""
    import hashlib

    digest = hashlib.sha256(extra.encode())
    for schema, table in sorted(tables):
        digest.update(f"\0{schema}.{table}={content_hash(con, schema, table)}".encode())
    return digest.hexdigest()


def rendered_from(con: duckdb.DuckDBPyConnection, output: str) -> str | None:
    """The inputs fingerprint `output` was last rendered from (None: never)."""
    _ensure(con)
    rows = con.execute(f"SELECT definition FROM {STATE} WHERE asset = ? AND episode_id = '*'",
                       [output]).fetchall()
    return rows[0][0] if rows else None


def record_render(con: duckdb.DuckDBPyConnection, output: str, fingerprint: str) -> None:
    _ensure(con)
    con.execute(f"DELETE FROM {STATE} WHERE asset = ? AND episode_id = '*'", [output])
    con.execute(f"INSERT INTO {STATE} VALUES (?, '*', ?, 0)", [output, fingerprint])
