"""The dbt models are sqlfluff-clean under the repository's .sqlfluff (as `make lint` runs
it), and that configuration renders every model: a model the templater cannot render
fails here rather than being skipped."""

from __future__ import annotations

import os
from pathlib import Path

from sqlfluff.core import FluffConfig, Linter

ROOT = Path(__file__).resolve().parents[1]


def test_dbt_models_are_sqlfluff_clean() -> None:
    cwd = os.getcwd()
    os.chdir(ROOT)  # .sqlfluff names its paths from the repository root
    try:
        result = Linter(config=FluffConfig.from_root()).lint_paths(("dbt_project/models",))
    finally:
        os.chdir(cwd)
    models = {p.stem for p in (ROOT / "dbt_project" / "models").rglob("*.sql")}
    linted = {Path(f.path).stem for f in result.paths[0].files}
    assert linted == models
    problems = [f"{Path(f.path).relative_to(ROOT)}:{v.line_no}: {v.rule_code()} {v.desc()}"
                for f in result.paths[0].files for v in f.violations]
    assert problems == []


def test_the_fx_join_and_the_quarter_branches_are_written_once() -> None:
    # The marts convert to USD through the to_usd macro (macros/to_usd.sql), the one place
    # that reads int_fx_rates_asof_daily for them; the quarter branches are one loop.
    marts = ROOT / "dbt_project" / "models" / "marts"
    direct = sorted(p.name for p in marts.rglob("*.sql")
                    if "int_fx_rates_asof_daily" in p.read_text(encoding="utf-8"))
    assert direct == []
    users = sorted(p.name for p in marts.rglob("*.sql") if "to_usd(" in p.read_text(encoding="utf-8"))
    assert users == ["fct_fund_flows_daily.sql", "fct_market_cap_daily.sql",
                     "fct_valuation_multiples_daily.sql"]
    versions = (ROOT / "dbt_project" / "models" / "intermediate"
                / "int_fundamentals_discrete_versions.sql").read_text(encoding="utf-8")
    assert "'Q2' as fiscal_period" not in versions and "for n in range(1, 5)" in versions
