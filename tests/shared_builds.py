"""One build for every pytest-xdist worker of a test session (tests/conftest.py's shared
builds). Light on purpose (no Dagster, DuckDB or polars): test_shared_builds runs it in
child processes."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock


def build_once(shared: Path, name: str, worker: str, build: Callable[[Path], object]) -> Path:
    """The folder shared/name that `build(folder)` filled, built once for every process
    that asks (pytest-xdist workers: tests/conftest.py). The first to ask builds it under
    the file lock shared/name.lock; one that asks meanwhile waits on the lock, then finds it
    done, as do later ones. Marks in the folder tell the outcome: `started` (by `worker`),
    then `done` or `failed` (the traceback). A build that raised fails every later request
    with that traceback; one whose process died before it ended (started, neither done nor
    failed) fails them too, rather than being built again unnoticed."""
    shared.mkdir(parents=True, exist_ok=True)
    folder = shared / name
    with FileLock(shared / f"{name}.lock"):
        if not folder.exists():
            folder.mkdir()
            (folder / "started").write_text(worker, encoding="utf-8")
            try:
                build(folder)
            except BaseException as exc:
                text = "".join(traceback.format_exception(exc))
                (folder / "failed").write_text(f"in {worker}:\n{text}", encoding="utf-8")
                raise
            (folder / "done").write_text(worker, encoding="utf-8")
    if (folder / "done").exists():
        return folder
    if (folder / "failed").exists():
        pytest.fail(f"the shared build {name!r} failed "
                    + (folder / "failed").read_text(encoding="utf-8"), pytrace=False)
    pytest.fail(f"the shared build {name!r} started in "
                f"{(folder / 'started').read_text(encoding='utf-8')} never ended "
                "(its process died during the build)", pytrace=False)
