"""Great Expectations imported in the background, while the extract steps land.

Importing GX costs about 5 s of one core (quiet 2-core machine), paid by the first GX
check of a run. A run executes in one process (orchestration/definitions.py: the
in-process executor), and every extract asset has a blocking GX check in the same run, so
the first extract step starts the import on a second thread: the landing runs mostly in
DuckDB and polars, which release the GIL, and the import overlaps it. The work is the
same import the check would do (no extra CPU); the check then finds GX imported, or
waits on Python's import lock for the rest of it.
"""

from __future__ import annotations

import importlib
import sys
import threading

# What selloff.quality.gx_suites imports, in that order.
MODULES = ("great_expectations", "great_expectations.expectations")

_lock = threading.Lock()
_started: threading.Thread | None = None


def _import_all() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the check's own import raises it, where it matters
            return


def preload_gx() -> threading.Thread | None:
    """Start importing GX on a background thread, once per process; the thread, or None
    when GX is already imported. Not a daemon thread: a process that ends before the
    import does waits for it rather than being torn down inside an import."""
    global _started
    with _lock:
        if _started is not None or MODULES[0] in sys.modules:
            return _started
        _started = threading.Thread(target=_import_all, name="selloff-gx-preload")
        _started.start()
        return _started
