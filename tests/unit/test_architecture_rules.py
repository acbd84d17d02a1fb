"""The import rules of docs/architecture.md, checked on the source: each package imports only
the packages below it, the library never imports the CLI, typer and rich stay in ndt_cli."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# package -> the ndt packages it may import, besides itself, ndt.errors, ndt.extras, ndt.lazy and the
# top-level ndt (for __version__). The order is docs/architecture.md's diagram, bottom up.
ALLOWED: dict[str, set[str]] = {
    # ndt/__init__.py: the reference API's names, imported lazily.
    "": {"core", "io", "analysis", "architectures", "visualization", "export"},
    "errors": set(),
    "extras": set(),
    "lazy": set(),
    "core": set(),
    "io": {"core"},
    "architectures": {"core"},
    "models": {"core", "io", "architectures"},
    "jumps": {"core", "io"},
    "analysis": {"core"},
    "replay": {"core", "io", "architectures", "models", "analysis"},
    "visualization": {"core", "io", "analysis", "jumps", "replay"},
    # The reference API's faces by ndtracker's import paths: ndt.export.{csv,json,hdf5},
    # ndt.validity (detector checks on validate-detector's runs), ndt.utils (config, logs).
    "export": {"core", "io"},
    "validity": {"jumps"},
    "utils": {"core", "export"},
}
# The reference API's in-training faces (`HighFrequencyTracker`, `JumpDetector`) sit in
# ndt.core by the reference's import paths, and use the engine above it.
FACES = {"ndt.core.tracker": {"architectures", "io", "models", "replay", "jumps"},
         "ndt.core.jump_detector": {"jumps"}}  # fmt: skip
ALWAYS = {"errors", "extras", "lazy", ""}


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("path", _modules("ndt"), ids=lambda p: _name(p))
def test_library_module_imports_only_what_its_package_may(path: Path) -> None:
    module = _name(path)
    own = _package(module)
    allowed = ALLOWED[own] | FACES.get(module, set()) | ALWAYS | {own}
    for imported, line in _imports(path):
        top = imported.split(".")[0]
        assert top not in ("ndt_cli", "typer", "rich"), f"{module}:{line} imports {imported}"
        if top == "ndt":
            assert _package(imported) in allowed, f"{module}:{line} imports {imported}"


def test_every_package_has_a_rule() -> None:
    packages = {p.name for p in (ROOT / "ndt").iterdir() if p.is_dir() and p.name != "__pycache__"}
    modules = {p.stem for p in (ROOT / "ndt").glob("*.py") if p.stem != "__init__"}
    assert packages | modules | {""} == set(ALLOWED)


def test_no_module_name_is_used_for_two_ideas() -> None:
    """A module's file name appears once in the library (``report`` twice was issue 15)."""
    names = [p.stem for p in _modules("ndt") if p.stem != "__init__"]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_files_named_by_architecture_md_exist() -> None:
    """'Where a new ... goes' sends a newcomer to files: each one it names exists."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:ndt|ndt_cli|tests|fixtures|docs)/[\w/.-]+\.(?:py|md))`", text))
    assert len(named) > 20
    assert sorted(p for p in named if not (ROOT / p).exists()) == []
