"""orchestration.dbt: a run's dbt parse state is kept for the next run; old run folders go."""

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


def test_old_run_folders_are_pruned_beyond_the_newest(tmp_path: Path) -> None:
    import os

    target = tmp_path / "target"
    target.mkdir()
    (target / "manifest.json").write_text("{}")
    (target / "compiled").mkdir()  # not a run folder: never touched
    now = 1_000_000.0
    folders = []
    for i in range(6):  # i = 0 newest ... 5 oldest, an hour apart, the newest 30 min old
        f = target / f"{dbt_assets.RUN_TARGET_PREFIX}{i:07x}-abcdef0"
        f.mkdir()
        (f / "run_results.json").write_text("{}")
        os.utime(f, (now - 1800 - 3600 * i,) * 2)
        folders.append(f)
    gone = dbt_assets.prune_run_targets(target, keep=2, min_age_s=3600, now=now)
    assert sorted(gone) == sorted(folders[2:])
    assert [f.exists() for f in folders] == [True, True, False, False, False, False]
    assert (target / "compiled").is_dir() and (target / "manifest.json").exists()
    # Younger than min_age_s: kept even beyond `keep` (a run may still be writing there).
    assert dbt_assets.prune_run_targets(target, keep=0, min_age_s=3600, now=now) == [folders[1]]
    assert folders[0].exists()


def test_pruning_a_missing_target_folder_is_a_no_op(tmp_path: Path) -> None:
    assert dbt_assets.prune_run_targets(tmp_path / "absent") == []
