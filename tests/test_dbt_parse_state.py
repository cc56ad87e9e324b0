"""orchestration.dbt.keep_partial_parse: a run's dbt parse state is kept for the next run."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestration import dbt as dbt_assets


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "target").mkdir()
    monkeypatch.setattr(dbt_assets, "DBT_PROJECT_DIR", tmp_path)
    return tmp_path


def test_the_run_state_replaces_the_kept_one(project: Path, tmp_path: Path) -> None:
    (project / "target" / "partial_parse.msgpack").write_bytes(b"from dbt parse")
    run = tmp_path / "run-target"
    run.mkdir()
    (run / "partial_parse.msgpack").write_bytes(b"from the run")
    log = _Log()
    dbt_assets.keep_partial_parse(run, log)
    assert (project / "target" / "partial_parse.msgpack").read_bytes() == b"from the run"
    assert not list((project / "target").glob(".*.tmp"))
    assert log.lines == []


def test_no_state_or_an_unwritable_target_is_not_an_error(project: Path, tmp_path: Path) -> None:
    log = _Log()
    dbt_assets.keep_partial_parse(tmp_path / "absent", log)  # dbt failed before parsing
    assert not (project / "target" / "partial_parse.msgpack").exists()
    run = tmp_path / "run-target"
    run.mkdir()
    (run / "partial_parse.msgpack").write_bytes(b"state")
    # A folder where the file should go: the replace fails even for root.
    (project / "target" / "partial_parse.msgpack").mkdir()
    dbt_assets.keep_partial_parse(run, log)
    assert len(log.lines) == 1 and "the next run parses in full" in log.lines[0]
    assert not list((project / "target").glob(".*.tmp"))
