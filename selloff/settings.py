"""Run settings: built once per process (from CLI options or the environment), validated,
and handed on as objects.

The environment is read in one place, `settings_from_env`, when a run starts (never at
import time). Everything downstream (the resources, `make_source`, the live source) takes
the typed sections below, so no value travels back through an environment-format string.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from selloff.writer_lock import DEFAULT_TIMEOUT_SECONDS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WAREHOUSE = "warehouse/selloff.duckdb"


class SourceKind(StrEnum):
    """Where the canonical datasets come from."""

    # Lower-case member names: Dagster's launchpad shows and takes an enum field by name.
    demo = "demo"
    snapshot = "snapshot"
    live = "live"


SOURCE_KINDS = tuple(k.value for k in SourceKind)
# dbt targets of dbt_project/profiles.yml: DuckDB, Spark in this process's machine (local
# mode), and Spark on a cluster (docs/CLUSTER.md).
DBT_TARGETS = ("duckdb", "spark", "spark_thrift", "databricks")
CN_PRICE_SOURCES = ("akshare", "yahoo")


class SettingsError(ValueError):
    """A setting that is missing or invalid; the message names the setting and the rule."""


def source_kind(value: str | SourceKind, name: str = "source") -> SourceKind:
    """The kind named by `value`; anything else is refused with the allowed values (a typo
    must not fall back to the demo market)."""
    if isinstance(value, SourceKind):
        return value
    text = str(value).strip().lower()
    try:
        return SourceKind(text)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not one of {', '.join(SOURCE_KINDS)}") from None

# Storage format of the DuckDB files the project writes (the build file and so the
# published copy), fixed when a file is created. DuckDB 2.0's own format ("latest") opens
# in no 1.x client; v1.4.0 opens in DuckDB 1.4, 1.5 (the newest CLI on PyPI) and 2.0, so
# analysts' CLIs, JDBC/ODBC drivers and notebooks read the published file.
DEFAULT_STORAGE_VERSION = "v1.4.0"
_STORAGE_VERSION = re.compile(r"^(v\d+\.\d+\.\d+|latest)$")


@dataclass(frozen=True)
class LiveSettings:
    """The live sources' section: window, universe, secrets (kept out of repr()), base URLs
    (None: the service's own), retry limits and the reachability preflight."""

    start: dt.date = dt.date(2025, 9, 1)
    end: dt.date = dt.date(2025, 12, 31)
    universe_path: Path | None = None
    sec_user_agent: str | None = field(default=None, repr=False)
    krx_id: str | None = field(default=None, repr=False)
    krx_pw: str | None = field(default=None, repr=False)
    cn_prices: str = "akshare"
    sec_base_url: str | None = None
    ecb_base_url: str | None = None
    jpx_base_url: str | None = None
    max_attempts: int = 5
    connect_timeout: float = 5.0
    preflight: bool = True

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise SettingsError(f"live window: start {self.start} is after its end {self.end} "
                                "(SELLOFF_LIVE_START/SELLOFF_LIVE_END)")
        if self.cn_prices not in CN_PRICE_SOURCES:
            raise SettingsError(f"SELLOFF_LIVE_CN_PRICES={self.cn_prices!r} is not one of "
                                f"{', '.join(CN_PRICE_SOURCES)}")
        if self.max_attempts < 1:
            raise SettingsError(f"SELLOFF_LIVE_MAX_ATTEMPTS={self.max_attempts} must be >= 1")
        if not self.connect_timeout > 0:
            raise SettingsError(f"SELLOFF_LIVE_CONNECT_TIMEOUT={self.connect_timeout} must be > 0")


@dataclass(frozen=True)
class SourceSettings:
    """Where the data comes from: the kind and what that kind needs."""

    kind: SourceKind = SourceKind.demo
    snapshot_dir: Path | None = None
    demo_securities: int = 0  # 0: every core name of every demo market
    demo_years: int = 2
    demo_seed: int = 20251104
    live: LiveSettings = field(default_factory=LiveSettings)

    def __post_init__(self) -> None:
        # A plain string (a launchpad field, a test) is checked here, not trusted.
        object.__setattr__(self, "kind", source_kind(self.kind))
        if self.kind is SourceKind.snapshot and self.snapshot_dir is None:
            raise SettingsError("source=snapshot needs a snapshot folder "
                                "(--snapshot-dir or SELLOFF_SNAPSHOT_DIR)")
        if self.demo_securities < 0 or self.demo_years < 1:
            raise SettingsError(f"demo market: securities {self.demo_securities} must be >= 0 "
                                f"and years {self.demo_years} >= 1")


@dataclass(frozen=True)
class StoreSettings:
    """Where the warehouse lives: the published file analysts open read-only, the build
    file the run writes (published by copy + atomic rename once blocking checks pass), the
    dbt target, the Parquet lake and Spark's files."""

    warehouse: Path = PROJECT_ROOT / DEFAULT_WAREHOUSE
    dbt_target: str = "duckdb"
    lake_dir: str | None = None
    spark_dir: str | None = None
    # Spark master URL for the `spark` target: local mode by default, or a cluster's
    # spark://host:port (the parity test starts a standalone one, selloff.spark_cluster).
    spark_master: str = "local[2]"
    # Seconds a run waits for another run's writer lock on the same warehouse (0: refuse at
    # once); selloff.writer_lock.
    writer_timeout: float = DEFAULT_TIMEOUT_SECONDS
    storage_version: str = DEFAULT_STORAGE_VERSION

    def __post_init__(self) -> None:
        if self.dbt_target not in DBT_TARGETS:
            raise SettingsError(f"dbt target {self.dbt_target!r} is not one of "
                                f"{', '.join(DBT_TARGETS)}")

    @property
    def build_warehouse(self) -> Path:
        return self.warehouse.parent / "build" / self.warehouse.name

    @property
    def reports_dir(self) -> Path:
        """Reports sit beside the warehouse folder: <project>/reports by default."""
        return self.warehouse.parent.parent / "reports"

    @property
    def lake(self) -> str:
        """Root of the Parquet lake: a folder, or an object-store URL (s3://...). Beside the
        warehouse folder by default (<project>/lake), so a private warehouse gets a private lake."""
        return self.lake_dir or str(self.warehouse.parent.parent / "lake")

    @property
    def spark_root(self) -> str:
        """Spark's folder: its table warehouse (`<root>/warehouse`) and, in local mode, the
        Derby metastore (<project>/spark_warehouse by default; an s3:// URL on a cluster)."""
        return self.spark_dir or str(self.warehouse.parent.parent / "spark_warehouse")

    @property
    def is_spark(self) -> bool:
        return self.dbt_target != "duckdb"


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go (selloff/alerts.py): a log file under DAGSTER_HOME unless
    `log` is set; Slack and e-mail only when their channel is set (their secrets stay
    Dagster EnvVars: SELLOFF_SLACK_TOKEN, SELLOFF_SMTP_PASSWORD)."""

    log: Path | None = None
    slack_channel: str | None = None
    email_to: str | None = None
    email_from: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None


def alert_settings_from_env(env: Mapping[str, str]) -> AlertSettings:
    """SELLOFF_ALERT_* and SELLOFF_SMTP_* (the password is an EnvVar, not read here)."""
    log = _text(env, "SELLOFF_ALERT_LOG")
    return AlertSettings(
        log=_path(log) if log else None,
        slack_channel=_text(env, "SELLOFF_ALERT_SLACK_CHANNEL"),
        email_to=_text(env, "SELLOFF_ALERT_EMAIL_TO"),
        email_from=_text(env, "SELLOFF_ALERT_EMAIL_FROM"),
        smtp_host=_text(env, "SELLOFF_SMTP_HOST"),
        smtp_port=_port(env.get("SELLOFF_SMTP_PORT") or "25", "SELLOFF_SMTP_PORT"),
        smtp_user=_text(env, "SELLOFF_SMTP_USER"),
    )


@dataclass(frozen=True)
class Settings:
    """One process's settings: the source section, the store section and the episode
    folders the analytics measure (selloff.episode; empty = the bundled ones)."""

    source: SourceSettings = field(default_factory=SourceSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    episodes: tuple[Path, ...] = ()
    alerts: AlertSettings = field(default_factory=AlertSettings)

    # Read-only shortcuts to the store section, for the many call sites that only need
    # to find the warehouse.
    @property
    def warehouse(self) -> Path:
        return self.store.warehouse

    @property
    def build_warehouse(self) -> Path:
        return self.store.build_warehouse

    @property
    def reports_dir(self) -> Path:
        return self.store.reports_dir

    def with_options(self, *, source: str | SourceKind | None = None,
                     snapshot_dir: Path | None = None, warehouse: Path | None = None,
                     episodes: Sequence[Path] | None = None) -> Settings:
        """These settings with a command's options on top (None: keep). Paths are taken
        as given (made absolute), never joined or split: a ':' in a folder name is just a
        character."""
        src = self.source
        if source is not None or snapshot_dir is not None:
            src = replace(src, kind=source_kind(source) if source is not None else src.kind,
                          snapshot_dir=_path(snapshot_dir) if snapshot_dir is not None
                          else src.snapshot_dir)
        store = replace(self.store, warehouse=_path(warehouse)) if warehouse else self.store
        eps = tuple(_path(p) for p in episodes) if episodes else self.episodes
        return Settings(source=src, store=store, episodes=eps, alerts=self.alerts)


def _path(value: str | Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (Path.cwd() / p).resolve()


def _location(value: str) -> str:
    # Object-store URLs (s3://, gs://, abfss://) pass as they are; folders become absolute.
    return value if "://" in value else str(_path(value))


def _port(value: str, name: str) -> int:
    if not value.strip().isdigit() or not 0 < int(value) < 65536:
        raise SettingsError(f"{name}={value!r} is not a port number (1-65535)")
    return int(value)


def _text(env: Mapping[str, str], name: str) -> str | None:
    raw = (env.get(name) or "").strip()
    return raw or None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None


def _date(env: Mapping[str, str], name: str, default: dt.date) -> dt.date:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a YYYY-MM-DD date") from None


def live_settings_from_env(env: Mapping[str, str]) -> LiveSettings:
    """SELLOFF_LIVE_* and the live secrets (SEC_USER_AGENT, KRX_ID, KRX_PW)."""
    universe = _text(env, "SELLOFF_LIVE_UNIVERSE")
    defaults = LiveSettings()
    return LiveSettings(
        start=_date(env, "SELLOFF_LIVE_START", defaults.start),
        end=_date(env, "SELLOFF_LIVE_END", defaults.end),
        universe_path=Path(universe).expanduser() if universe else None,
        sec_user_agent=_text(env, "SEC_USER_AGENT"),
        krx_id=env.get("KRX_ID") or None,
        krx_pw=env.get("KRX_PW") or None,
        cn_prices=(_text(env, "SELLOFF_LIVE_CN_PRICES") or "akshare").lower(),
        sec_base_url=_text(env, "SELLOFF_LIVE_SEC_URL"),
        ecb_base_url=_text(env, "SELLOFF_LIVE_ECB_URL"),
        jpx_base_url=_text(env, "SELLOFF_LIVE_JPX_URL"),
        max_attempts=_int(env, "SELLOFF_LIVE_MAX_ATTEMPTS", defaults.max_attempts),
        connect_timeout=_float(env, "SELLOFF_LIVE_CONNECT_TIMEOUT", defaults.connect_timeout),
        preflight=_text(env, "SELLOFF_LIVE_PREFLIGHT") != "0",
    )


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Read SELLOFF_* variables (the process environment when `env` is None): the one
    place the environment becomes settings. Invalid values raise SettingsError naming the
    variable and the allowed values.

    SELLOFF_EPISODES holds one episode folder; more are given as CLI options (`selloff run
    --episode A --episode B`) or resource fields, never packed into one string."""
    env = os.environ if env is None else env
    kind = source_kind(_text(env, "SELLOFF_SOURCE") or "demo", "SELLOFF_SOURCE")
    snap = _text(env, "SELLOFF_SNAPSHOT_DIR")
    if kind is SourceKind.snapshot and not snap:
        raise SettingsError("SELLOFF_SOURCE=snapshot needs SELLOFF_SNAPSHOT_DIR=<folder>")
    target = (_text(env, "SELLOFF_DBT_TARGET") or "duckdb").lower()
    if target not in DBT_TARGETS:
        raise SettingsError(f"SELLOFF_DBT_TARGET={target!r} is not one of {', '.join(DBT_TARGETS)}")
    timeout_text = _text(env, "SELLOFF_WRITER_TIMEOUT")
    writer_timeout = parse_writer_timeout(timeout_text, "SELLOFF_WRITER_TIMEOUT") \
        if timeout_text else DEFAULT_TIMEOUT_SECONDS
    storage = _text(env, "SELLOFF_STORAGE_VERSION") or DEFAULT_STORAGE_VERSION
    if not _STORAGE_VERSION.match(storage):
        raise SettingsError(f"SELLOFF_STORAGE_VERSION={storage!r} is not a DuckDB storage "
                            f"version such as {DEFAULT_STORAGE_VERSION} (or 'latest')")
    lake = _text(env, "SELLOFF_LAKE_DIR")
    spark = _text(env, "SELLOFF_SPARK_DIR")
    episode = _text(env, "SELLOFF_EPISODES")
    source = SourceSettings(
        kind=kind,
        snapshot_dir=_path(snap) if snap else None,
        demo_securities=_int(env, "SELLOFF_DEMO_SECURITIES", 0),
        demo_years=_int(env, "SELLOFF_DEMO_YEARS", 2),
        demo_seed=_int(env, "SELLOFF_DEMO_SEED", 20251104),
        live=live_settings_from_env(env),
    )
    store = StoreSettings(
        warehouse=_path(_text(env, "SELLOFF_WAREHOUSE") or str(PROJECT_ROOT / DEFAULT_WAREHOUSE)),
        dbt_target=target,
        lake_dir=_location(lake) if lake else None,
        spark_dir=_location(spark) if spark else None,
        spark_master=_text(env, "SELLOFF_SPARK_MASTER") or "local[2]",
        writer_timeout=writer_timeout,
        storage_version=storage,
    )
    return Settings(source=source, store=store, episodes=(_path(episode),) if episode else (),
                    alerts=alert_settings_from_env(env))


def parse_writer_timeout(text: str, name: str) -> float:
    """A writer-lock timeout in seconds (a finite number >= 0), else a SettingsError naming
    where it came from."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= 0 and value != float("inf")):
        raise SettingsError(f"{name}={text!r} is not a number of seconds >= 0 (how long a run "
                            f"waits for another run's writer lock; 0: do not wait)")
    return value
