"""The layers the README's *Layout* section states, held against every import of the package.

A module imports only from its own layer or lower ones; every ``import`` and ``from ...
import`` counts, those inside functions too (oocml imports lazily to start fast, and a lazy
import that runs upward is still a dependency that runs upward). Every module must belong to
exactly one layer, so that a new module is placed in the README before it lands.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "oocml"


def stated_layers(readme: str) -> list[tuple[str, list[str]]]:
    """(layer, entries) from the README's Layout block, top to bottom: an entry is a file or a
    folder (ending in ``/``) below ``oocml/``."""
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    rows: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        row = re.fullmatch(r"  ([a-z]+) {2,}(.+)", line)
        if row:
            rows.append((row.group(1), row.group(2).split()))
        elif rows and line.startswith(" " * 18) and line.strip():  # a layer's next line
            rows[-1][1].extend(line.split())
        elif rows:
            break
    assert rows, "the README's Layout section states no layers"
    return rows


def layer_of(path: Path, layers: list[tuple[str, list[str]]]) -> int:
    """The index (0 = top) of the layer whose entry holds ``path`` (a file of the package)."""
    relative = path.relative_to(PACKAGE).as_posix()
    found = [i for i, (_, entries) in enumerate(layers) for entry in entries
             if relative == entry or (entry.endswith("/") and relative.startswith(entry))]
    assert len(found) == 1, f"oocml/{relative} belongs to {len(found)} layers of the README's Layout"
    return found[0]


def module_path(dotted: str) -> Path | None:
    """The file of an ``oocml`` module (a package's ``__init__.py``), or None if there is none."""
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported(path: Path, source: str) -> list[tuple[int, Path]]:
    """(line, file) of every package module that ``path`` (whose text is ``source``) imports,
    anywhere in it."""
    dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = dotted if path.name == "__init__.py" else dotted.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # each name may be a module of its own (from . import ast), else it is in base
            targets = [f"{base}.{a.name}" if module_path(f"{base}.{a.name}") else base for a in node.names]
        else:
            continue
        for target in targets:
            file = module_path(target) if target.split(".")[0] == "oocml" else None
            if file is not None:
                found.append((node.lineno, file))
    return found


def violations(layers: list[tuple[str, list[str]]], sources: dict[Path, str]) -> list[str]:
    """Every import of the modules ``sources`` holds (file: text) that runs up the layers, as
    'file:line (layer) imports file (layer)'."""
    names = [name for name, _ in layers]
    wrong = []
    for path, source in sources.items():
        mine = layer_of(path, layers)
        for line, target in imported(path, source):
            theirs = layer_of(target, layers)
            if theirs < mine:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({names[mine]}) imports "
                             f"{target.relative_to(ROOT)} ({names[theirs]})")
    return wrong


def test_every_import_stays_in_its_layer_or_goes_down():
    layers = stated_layers((ROOT / "README.md").read_text())
    assert [name for name, _ in layers] == ["faces", "language", "engine", "product", "parts", "base"]
    sources = {path: path.read_text() for path in sorted(PACKAGE.rglob("*.py"))}
    assert violations(layers, sources) == []


def test_every_entry_of_the_layout_exists():
    for _, entries in stated_layers((ROOT / "README.md").read_text()):
        for entry in entries:
            assert (PACKAGE / entry).exists(), f"the README's Layout names oocml/{entry}, which is not there"


def test_an_import_that_runs_upward_is_caught():
    """The checker itself: a base module importing the engine, even inside a function, and a
    module that belongs to no layer, are both reported."""
    layers = stated_layers((ROOT / "README.md").read_text())
    wrong = PACKAGE / "errors.py"
    source = wrong.read_text() + "\n\ndef _upward():\n    from .engine import fit  # noqa\n"
    (found,) = violations(layers, {wrong: source})
    assert found.startswith("oocml/errors.py:") and "(base) imports oocml/engine/fit.py (engine)" in found
    with pytest.raises(AssertionError, match="belongs to 0 layers"):
        layer_of(PACKAGE / "nowhere.py", layers)
