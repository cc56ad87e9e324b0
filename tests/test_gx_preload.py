"""GX is imported once per process, on a background thread started by the extract steps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from selloff.quality.preload import MODULES, preload_gx
assert MODULES[0] not in sys.modules
thread = preload_gx()
assert thread is not None and thread.is_alive() or MODULES[0] in sys.modules
assert preload_gx() is thread          # once per process
thread.join()
assert all(m in sys.modules for m in MODULES)
from selloff.quality import gx_suites  # the check's own imports now find GX loaded
import great_expectations
assert sys.modules["great_expectations"] is great_expectations
sys.stderr.write("preloaded\\n")
"""


def test_preload_imports_gx_once_in_the_background(tmp_path: Path) -> None:
    # A fresh interpreter: in this one GX may already be imported by other tests. A script
    # file, as a run has: under `python -c` pyspark (imported by GX) takes the process
    # for a doctest run and exits it.
    script = tmp_path / "preload.py"
    script.write_text(SCRIPT, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "preloaded" in done.stderr
