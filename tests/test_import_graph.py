"""The project's import graph, read from the source (ast, every import including those
inside functions; `if TYPE_CHECKING:` blocks excluded since they never run).

Layers, top to bottom: orchestration -> assets -> selloff (library). Inside the library
the episode model (selloff.episode_model) sits below the engine (selloff.analytics,
selloff.claims), which sits below the loader (selloff.episode) and the report; no import
runs back up. Engine modules carry no episode's dates, baskets or sector names.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from selloff.episode import bundled_episode_paths, load_episode

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("selloff", "assets", "orchestration")
ENGINE = ("selloff.analytics", "selloff.claims")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # `from pkg import sub` imports pkg.sub when sub is a module.
            found.update(f"{target}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            modules[_module_name(path)] = path
    graph = {}
    for name, path in modules.items():
        raw = _imports(ast.parse(path.read_text(encoding="utf-8")), name,
                       path.name == "__init__.py")
        graph[name] = {m for m in raw if m in modules and m != name}
    return graph


GRAPH = _graph()


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _offenders(importer: str, imported: str) -> list[str]:
    return sorted(f"{a} imports {b}" for a, deps in GRAPH.items() if _within(a, importer)
                  for b in deps if _within(b, imported))


def test_the_graph_is_read() -> None:
    # Guards the reader itself: known edges are seen, or every rule below passes vacuously.
    assert "selloff.episode_model" in GRAPH["selloff.analytics.windows"]
    assert "selloff.claims.metrics" in GRAPH["selloff.claims.registry"]
    assert "assets.analytics.table_reads" in GRAPH["assets.analytics.claims"]


@pytest.mark.parametrize(("importer", "imported"), [
    ("selloff", "assets"), ("selloff", "orchestration"), ("assets", "orchestration"),
    # The engine reads the episode model, never the loader or the report above it.
    ("selloff.analytics", "selloff.episode"), ("selloff.claims", "selloff.episode"),
    ("selloff.analytics", "selloff.claims"), ("selloff.analytics", "selloff.report"),
    ("selloff.claims", "selloff.report"),
    # The model is the bottom: it imports neither the engine nor the loader.
    ("selloff.episode_model", "selloff.analytics"), ("selloff.episode_model", "selloff.claims"),
])
def test_no_import_runs_back_up(importer: str, imported: str) -> None:
    if imported == "selloff.episode":
        # selloff.episode_model is a sibling module, not part of the loader.
        bad = [o for o in _offenders(importer, imported) if not o.endswith("episode_model")]
    else:
        bad = _offenders(importer, imported)
    assert bad == []


def test_the_episode_model_imports_only_the_standard_library() -> None:
    assert GRAPH["selloff.episode_model"] == set()


def test_the_model_classes_live_in_the_model() -> None:
    import selloff.analytics.windows as windows
    import selloff.episode as episode
    import selloff.episode_model as model

    for cls in (model.Episode, model.NamedWindow, model.WindowConfig, model.Detection,
                model.Valuation):
        assert cls.__module__ == "selloff.episode_model"
    # The loader and the engine hand on the same classes, not copies.
    assert episode.Episode is model.Episode and windows.NamedWindow is model.NamedWindow


def _episode_facts() -> tuple[set[str], set[dt.date]]:
    """Basket ids, sector groups and detection dates the bundled episode files state."""
    names: set[str] = set()
    dates: set[dt.date] = set()
    for folder in bundled_episode_paths():
        ep = load_episode(folder)
        names.update(ep.baskets)
        names.update(ep.valuation.ai_baskets)
        names.update(n for n in (ep.valuation.dividend_basket, ep.valuation.dividend_index) if n)
        for claim in ep.claims:
            for part in claim.parts:
                for key in ("groups_from", "groups_to"):
                    names.update(str(g) for g in part.params.get(key) or ())
        d = ep.detection
        dates.update((d.search_start, d.search_end, d.drawdown_lookback_start))
    return names, dates


def test_no_engine_default_carries_episode_knowledge() -> None:
    names, dates = _episode_facts()
    assert {"CN_DIVIDEND", "ai_tech"} <= names and dt.date(2025, 10, 27) in dates
    found = []
    for path in (ROOT / "selloff").rglob("*.py"):
        module = _module_name(path)
        if not any(_within(module, e) for e in ENGINE):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value in names:
                found.append(f"{module}:{node.lineno} {node.value!r}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "date" and len(node.args) == 3 \
                    and all(isinstance(a, ast.Constant) for a in node.args):
                day = dt.date(*(a.value for a in node.args))  # type: ignore[misc]
                if day in dates:
                    found.append(f"{module}:{node.lineno} {day}")
    assert found == []


def _engine_sources() -> dict[str, str]:
    out = {}
    for path in (ROOT / "selloff").rglob("*.py"):
        module = _module_name(path)
        if any(_within(module, e) for e in ENGINE):
            out[module] = path.read_text(encoding="utf-8")
    return out


def _string_constants(source: str) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_claims_take_returns_from_the_engine() -> None:
    # A return or a cap change is the engine's (selloff.analytics.moves): no claim module
    # names a price or cap column (`close` only as the column the engine's reader checks).
    price_columns = {"adj_close", "market_cap_usd", "market_cap_local", "chained_close"}
    found = {m: sorted(_string_constants(src) & price_columns)
             for m, src in _engine_sources().items() if _within(m, "selloff.claims")}
    assert {m: c for m, c in found.items() if c} == {}
    for module, src in _engine_sources().items():
        if _within(module, "selloff.claims"):
            assert "chained_close" not in src and "_priced" not in src, module


def test_basket_validity_and_market_of_exist_once() -> None:
    for module, src in _engine_sources().items():
        if module != "selloff.analytics.baskets":
            assert '"valid_from"' not in src and '"valid_to"' not in src, module
        # The market of an id is selloff.markets.market_of / market_of_expr, nowhere else.
        assert 'split(":", 1)[0]' not in src and "split(':', 1)[0]" not in src, module
