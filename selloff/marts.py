"""The marts and their grain, read from the marts' dbt contracts.

The grain of a mart is declared once, in its dbt YAML under dbt_project/models/marts/:
a model-level `unique_combination` test (columns), or else the one column whose tests
include `unique`. dbt enforces it there; the lake export and the engine comparison
(`selloff.mart_comparison`) match rows on the same columns, read from here.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from selloff.settings import PROJECT_ROOT

MARTS_DIR = PROJECT_ROOT / "dbt_project" / "models" / "marts"


def _grain(model: dict, path: Path) -> tuple[str, ...]:
    for test in model.get("data_tests") or ():
        if isinstance(test, dict) and "unique_combination" in test:
            return tuple(test["unique_combination"]["arguments"]["columns"])
    unique = [c["name"] for c in model.get("columns") or ()
              if "unique" in (c.get("data_tests") or ())]
    if len(unique) != 1:
        raise ValueError(f"{path}: model {model['name']} declares no grain (a unique_combination "
                         f"test or exactly one unique column), found {unique}")
    return (unique[0],)


def read_mart_keys(marts_dir: Path = MARTS_DIR) -> dict[str, tuple[str, ...]]:
    """model name -> its grain, for every model declared in the marts' YAML files."""
    keys: dict[str, tuple[str, ...]] = {}
    for path in sorted(marts_dir.rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models") or ():
            keys[model["name"]] = _grain(model, path)
    return dict(sorted(keys.items()))


# The grain of every mart (docs/ARCHITECTURE.md): rows are matched on these columns.
MART_KEYS: dict[str, tuple[str, ...]] = read_mart_keys()
