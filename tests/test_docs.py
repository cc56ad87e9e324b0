"""Every path, module, command and variable the docs name exists (README.md, docs/*.md,
dbt_project/README.md; BENCHMARKS.md: its commands and variables).

Read from the Markdown's code (inline `...` spans and fenced blocks): repository paths
(a name with a `/` or a file extension), dotted modules of the project (`selloff.x.y`),
`selloff <command> --option` lines (checked against the real CLI) and `make <target>`
(checked against the Makefile). Placeholders (`<...>`, `*`, `...`), URLs, absolute and
`../` paths (outside the repository) are not checked.
"""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest
import typer

from orchestration.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "dbt_project" / "README.md"]
# A log of past runs (asset keys, files of past rounds): only its commands and variables
# are checked, since a reader reruns those.
LOGS = [ROOT / "BENCHMARKS.md"]
EXTENSIONS = (".py", ".md", ".yml", ".yaml", ".sql", ".toml", ".json", ".txt", ".csv", ".cfg",
              ".html", ".duckdb", ".sh", ".parquet", ".xlsx")
# Where a doc's relative path may be rooted: the repository, the dbt project (model and
# macro paths are written as dbt names them), the library (its sub-folders).
BASES = (ROOT, ROOT / "dbt_project", ROOT / "selloff", ROOT / "assets")
# Written by runs, not kept in the repository.
GENERATED = ("warehouse/", "reports/", "lake/", "dagster_home/", "spark_warehouse/",
             "dbt_project/target/")


def _code(text: str) -> list[str]:
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S)
    rest = re.sub(r"```[^\n]*\n.*?```", "", text, flags=re.S)
    return blocks + re.findall(r"`([^`\n]+)`", rest)


def _snippets(docs: list[Path] = DOCS) -> list[tuple[str, str]]:
    return [(doc.name, s) for doc in docs for s in _code(doc.read_text(encoding="utf-8"))]


def _is_placeholder(token: str) -> bool:
    return any(c in token for c in "<>*{}$[]|") or "..." in token or token.startswith(
        ("http", "/", "../", "~", "s3:", "-"))


def _path_tokens(snippet: str) -> set[str]:
    out = set()
    for token in re.split(r"[\s,;()=\"']+", snippet):
        token = token.rstrip(".:").strip("`")
        if (not token or _is_placeholder(token) or token.startswith(GENERATED)
                or _ASSET_KEY.fullmatch(token)):
            continue
        if ("/" in token or token.endswith(EXTENSIONS)) and re.fullmatch(
                r"[A-Za-z0-9_./-]+", token) and not re.fullmatch(r"[\d/.-]+", token):
            out.add(token)
    return out


# Dagster asset keys are written `analytics/episode_candidates`: a key, not a path.
_ASSET_KEY = re.compile(r"(raw|staging|marts|analytics)/[a-z0-9_]+")


def _exists(token: str) -> bool:
    return any((base / token).exists() for base in BASES) or token in _CODE_KEYS


def _code_keys() -> set[str]:
    # Metadata and tag keys (`selloff/gated_by`, `dagster/row_count`) look like paths: a
    # doc may name one that the code writes as a string literal.
    keys: set[str] = set()
    for folder in ("selloff", "assets", "orchestration"):
        for py in (ROOT / folder).rglob("*.py"):
            keys.update(re.findall(r"[\"']([a-z]+/[a-z0-9_]+)[\"']", py.read_text(encoding="utf-8")))
    return keys


_CODE_KEYS = _code_keys()


def _names_the_repo(token: str) -> bool:
    """A path whose first folder is one of the project's (so `assets/x.py` is checked and
    prose like `USD/share` or another project's `sbin/start-master.sh` is not); a bare
    Python or Markdown file name."""
    if "/" in token:
        return _exists(token.split("/")[0])
    return token.endswith((".py", ".md"))


PATHS = sorted({(doc, t) for doc, s in _snippets() for t in _path_tokens(s)
                if _names_the_repo(t)})


@pytest.mark.parametrize(("doc", "path"), PATHS)
def test_named_path_exists(doc: str, path: str) -> None:
    if "/" not in path:
        # A bare file name: somewhere in the repository (not in generated folders).
        hits = [p for p in ROOT.rglob(path) if ".venv" not in p.parts and "target" not in p.parts]
        assert hits, f"{doc} names {path}, which is nowhere in the repository"
        return
    assert _exists(path), f"{doc} names {path}, which does not exist"


def _modules() -> list[tuple[str, str]]:
    found = set()
    for doc, s in _snippets():
        # Not after "/": `warehouse/build/selloff.duckdb.lock` is a file, not a module.
        for m in re.findall(r"(?<![/\w])((?:selloff|assets|orchestration)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)",
                            s):
            if not m.endswith(tuple(e.lstrip(".") for e in EXTENSIONS)):  # a file name
                found.add((doc, m.rstrip(".")))
    return sorted(found)


@pytest.mark.parametrize(("doc", "dotted"), _modules())
def test_named_module_exists(doc: str, dotted: str) -> None:
    parts = dotted.split(".")
    # The longest importable prefix, then attributes (a class, a function, a field).
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            assert hasattr(obj, attr) or attr in getattr(obj, "__dataclass_fields__", {}), \
                f"{doc} names {dotted}: {'.'.join(parts[:i])} has no {attr}"
            obj = getattr(obj, attr, None)
        return
    pytest.fail(f"{doc} names {dotted}, which is not a module")


CLI = typer.main.get_command(app)


def _commands(prefix: str) -> list[tuple[str, str]]:
    found = set()
    for doc, s in _snippets(DOCS + LOGS):
        for line in s.splitlines():
            line = line.split("#")[0].strip()
            m = re.search(rf"(?:^|\s|/){prefix}\s+(.*)$", line)
            if m and not line.startswith(("pip", "uv")):
                found.add((doc, f"{prefix} {m.group(1)}".strip()))
    return sorted(found)


@pytest.mark.parametrize(("doc", "line"), _commands("selloff"))
def test_named_selloff_command_exists(doc: str, line: str) -> None:
    try:
        words = shlex.split(line)[1:]
    except ValueError:
        words = line.split()[1:]
    cmd = CLI
    # Typer builds its own click classes: a group is whatever has sub-commands.
    while words and hasattr(cmd, "commands") and not words[0].startswith("-"):
        if words[0] not in cmd.commands:
            if _is_placeholder(words[0]) or not re.fullmatch(r"[a-z][a-z-]*", words[0]):
                return  # prose after the program name ("selloff warehouse: ..."), not a command
            pytest.fail(f"{doc}: `{line}`: no command {words[0]!r} "
                        f"(commands: {', '.join(sorted(cmd.commands))})")
        cmd = cmd.commands[words.pop(0)]
    options = {o for p in cmd.params for o in getattr(p, "opts", [])}
    for word in words:
        if word.startswith("--"):
            flag = word.split("=")[0]
            assert flag in options | {"--help"}, f"{doc}: `{line}`: no option {flag}"


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][A-Za-z0-9_-]*):", text, flags=re.M))


@pytest.mark.parametrize(("doc", "line"), _commands("make"))
def test_named_make_target_exists(doc: str, line: str) -> None:
    targets = _make_targets()
    for word in line.split()[1:]:
        if "=" in word:
            continue
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        assert word in targets, f"{doc}: `{line}`: no make target {word!r}"


def test_the_reader_finds_what_the_docs_name() -> None:
    # Guards the extraction: known names are found, or every check above passes vacuously.
    assert ("README.md", "selloff/markets.py") in PATHS
    assert any(line.startswith("selloff run") for _, line in _commands("selloff"))
    assert any(line == "make run" for _, line in _commands("make"))


def _variables() -> list[tuple[str, str]]:
    return sorted({(doc.name, v) for doc in DOCS + LOGS
                   for v in re.findall(r"\bSELLOFF_[A-Z_]*[A-Z]\b", doc.read_text(encoding="utf-8"))})


def _code_text() -> str:
    files = [p for d in ("selloff", "assets", "orchestration", "scripts", "dbt_project", "deploy")
             for p in (ROOT / d).rglob("*") if p.is_file() and p.suffix in
             (".py", ".sql", ".yml", ".yaml", ".sh", ".toml", ".json") and "target" not in p.parts]
    return "\n".join(p.read_text(encoding="utf-8", errors="replace")
                     for p in [*files, ROOT / "Makefile"])


CODE = _code_text()


@pytest.mark.parametrize(("doc", "name"), _variables())
def test_named_variable_is_read(doc: str, name: str) -> None:
    # A variable the docs tell the reader to set must be one the code reads.
    assert name in CODE, f"{doc} names {name}, which nothing reads"


def test_named_script_options_exist() -> None:
    # `scripts/x.py --flag` in the docs: the script's argparse declares the flag.
    for doc, s in _snippets(DOCS + LOGS):
        for script, flags in re.findall(r"(scripts/[a-z_]+\.py)((?:\s+--[a-z-]+(?:\s+[^\s-][^\s]*)?)*)", s):
            text = (ROOT / script).read_text(encoding="utf-8")
            for flag in re.findall(r"--[a-z-]+", flags):
                assert f'"{flag}"' in text, f"{doc}: {script} has no option {flag}"


def _signatures() -> dict[str, set[str]]:
    """Parameter names of every function the project defines, by function name."""
    import ast

    out: dict[str, set[str]] = {}
    for d in ("selloff", "assets", "orchestration"):
        for path in (ROOT / d).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    a = node.args
                    names = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
                    out.setdefault(node.name, set()).update(names)
    return out


def test_named_calls_take_their_keywords() -> None:
    # `build_definitions(partitioned=False)` in a doc: the function must take `partitioned`.
    sigs = _signatures()
    bad = []
    for doc, s in _snippets():
        # Not a method of another library's object (`Ticker.history(auto_adjust=...)`).
        for fn, kw in re.findall(r"(?<![.\w])([a-z_][a-z0-9_]*)\(([a-z_][a-z0-9_]*)=", s):
            if fn in sigs and kw not in sigs[fn]:
                bad.append(f"{doc}: {fn}({kw}=...)")
    assert bad == []
