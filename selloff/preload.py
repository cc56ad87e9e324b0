"""Great Expectations and dbt imported in the background, while the extract steps land.

A run executes in one process (orchestration/definitions.py: the in-process executor).
Every extract asset has a blocking GX check later in the same run, and on DuckDB the dbt
step runs dbt in that process (orchestration/dbt_in_process.py). Importing GX costs about
1.5 s of one core and dbt about 2 s (quiet 2-core machine, bytecode compiled; 5 s and 4 s
without), paid by the first check and by the dbt step. So the first extract step starts
the imports on a second thread, GX first (its check comes first): the landing runs
mostly in DuckDB and polars, which release the GIL, and the imports overlap it. The work
is the same import the check or dbt would do (no extra CPU); they then find the modules
imported, or wait on Python's import lock for the rest.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Sequence

# What selloff.quality.gx_suites imports, in that order.
GX_MODULES = ("great_expectations", "great_expectations.expectations")
# What an in-process `dbt build` on the DuckDB target imports: the runner, then (lazily,
# inside dbtRunner.invoke) the build task, the parser and the adapter.
DBT_MODULES = ("dbt.cli.main", "dbt.task.build", "dbt.parser.manifest", "dbt.adapters.duckdb")

_lock = threading.Lock()
_started: threading.Thread | None = None


def _import_all(modules: Sequence[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the user's own import raises it, where it matters
            return


def preload(dbt: bool = True) -> threading.Thread | None:
    """Start importing GX (and dbt, unless `dbt` is False: a run without the in-process
    dbt step) on a background thread, once per process; the thread, or None when all is
    imported already. Not a daemon thread: a process that ends before the imports do
    waits for them rather than being torn down inside an import."""
    global _started
    modules = [m for m in (*GX_MODULES, *(DBT_MODULES if dbt else ())) if m not in sys.modules]
    with _lock:
        if _started is not None or not modules:
            return _started
        _started = threading.Thread(target=_import_all, args=(modules,),
                                    name="selloff-preload")
        _started.start()
        return _started
