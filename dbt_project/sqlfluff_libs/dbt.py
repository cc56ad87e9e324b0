"""The `dbt.*` cross-database macros the project's macros call, for sqlfluff's jinja
templater (`make lint`, see .sqlfluff), rendered as dbt-duckdb renders them."""

from __future__ import annotations


def dateadd(datepart: str, interval: object, from_date_or_timestamp: str) -> str:
    return f"({from_date_or_timestamp} + cast({interval} as bigint) * interval 1 {datepart})"
