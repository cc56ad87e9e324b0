"""The marts' grain comes from their dbt contracts (selloff/marts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from selloff.marts import MART_KEYS, MARTS_DIR, read_mart_keys


def test_every_mart_model_has_a_grain() -> None:
    models = {p.stem for p in MARTS_DIR.rglob("*.sql")}
    assert set(MART_KEYS) == models
    assert MART_KEYS["dim_security"] == ("security_id",)
    assert MART_KEYS["fct_fund_flows_daily"] == (
        "flow_scope", "entity_id", "trade_date", "investor_type")


def test_a_mart_without_a_grain_is_named(tmp_path: Path) -> None:
    (tmp_path / "m.yml").write_text(
        "version: 2\nmodels:\n  - name: m\n    columns:\n      - name: a\n")
    with pytest.raises(ValueError, match="m.yml: model m declares no grain"):
        read_mart_keys(tmp_path)
