"""`adapter.dispatch` for sqlfluff's jinja templater (`make lint`, see .sqlfluff): the
macro dbt picks on the duckdb target, `duckdb__<name>` else `default__<name>`, looked up
among the project's macros where the call is made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context


@pass_context
def dispatch(context: Context, macro_name: str, macro_namespace: str | None = None) -> Callable[..., Any]:
    for prefix in ("duckdb__", "default__"):
        macro = context.get(prefix + macro_name)
        if macro is not None:
            return macro
    raise NameError(f"no duckdb__ or default__ implementation of macro {macro_name!r}")
