"""GX and dbt are imported once per process, on a background thread the extract steps start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import sys
from selloff.preload import DBT_MODULES, GX_MODULES, preload
WITH_DBT = {with_dbt}
wanted = GX_MODULES + (DBT_MODULES if WITH_DBT else ())
assert not any(m in sys.modules for m in wanted)
thread = preload(dbt=WITH_DBT)
assert thread is not None
assert preload(dbt=WITH_DBT) is thread          # once per process
thread.join()
assert all(m in sys.modules for m in wanted), [m for m in wanted if m not in sys.modules]
assert WITH_DBT or "dbt.cli.main" not in sys.modules
from selloff.quality import gx_suites  # the check's own imports now find GX loaded
import great_expectations
assert sys.modules["great_expectations"] is great_expectations
sys.stderr.write("preloaded\\\\n")
"""


@pytest.mark.parametrize("with_dbt", [True, False])
def test_preload_imports_once_in_the_background(tmp_path: Path, with_dbt: bool) -> None:
    # A fresh interpreter: in this one GX may already be imported by other tests. A script
    # file, as a run has: under `python -c` pyspark (imported by GX) takes the process
    # for a doctest run and exits it.
    script = tmp_path / "preload.py"
    script.write_text(SCRIPT.format(with_dbt=with_dbt), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "preloaded" in done.stderr
