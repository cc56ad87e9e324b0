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
