"""Imports go one way: ``indexer`` ← ``service.qa`` ← ``service.api`` / ``service.cli`` / ``service.render`` ← ``eval`` ← ``training``, ``bench``.

Every ``import`` and ``from ... import`` in indexer/, service/, eval/, training/ and bench/ is read with
``ast``: at module level, inside functions, under ``if TYPE_CHECKING``, and relative ones
resolved against the importing module's package. Each module belongs to the most specific
layer in ``FORBIDDEN`` that contains it; an import of a module equal to or under one of that
layer's forbidden prefixes is a violation, reported as ``file:line``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.source import SourceFile, module_name, source_files

SCANNED = ("indexer", "service", "eval", "training", "bench")
#: The web and command-line frameworks the question-answering library must not depend on.
FRAMEWORKS = ("fastapi", "starlette", "typer", "click", "uvicorn", "rich")

#: Layer (a module prefix) → the module prefixes it must not import. The most specific layer
#: containing a module applies, so every entry lists its whole set, general rules included.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # The build side and the index format: nothing above it.
    "indexer": ("service", "eval", "training", "bench"),
    # The question-answering library: no settings object, no web or CLI layer, no framework.
    "service.qa": (
        "service.config", "service.api", "service.cli", "service.render", "eval", "training", "bench", *FRAMEWORKS,
    ),
    # Settings sit beside api/cli: they may use service.qa and indexer, nothing beside or above.
    "service.config": ("service.api", "service.cli", "service.render", "eval", "training", "bench"),
    # The web layer never imports the command line. The command line may start the web layer:
    # ``tanya serve`` is where the app is built and handed to uvicorn (the composition root).
    "service.api": ("service.cli", "service.render", "eval", "training", "bench"),
    "service.cli": ("eval", "training", "bench"),
    # Terminal rendering, used by the CLI: below it, and no web layer.
    "service.render": ("service.api", "service.cli", "eval", "training", "bench"),
    # Anything else under service/ (service/__init__.py).
    "service": ("eval", "training", "bench"),
    # The evaluation package is a library; the bench script sits beside it, not under it.
    "eval": ("training", "bench"),
    # Training reads data through eval's loaders and writes what service.qa ships.
    "training": ("bench",),
    "bench": (),
}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    imported: str
    layer: str
    prefix: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.imported} (layer {self.layer} must not import {self.prefix})"


def layer_of(module: str) -> str | None:
    """The most specific layer in ``FORBIDDEN`` that contains ``module``."""
    matches = [layer for layer in FORBIDDEN if module == layer or module.startswith(layer + ".")]
    return max(matches, key=len) if matches else None


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """``(line, dotted name)`` for every import in ``tree``, relative ones resolved.

    ``from X import a`` yields ``X`` and ``X.a`` (``a`` may be a submodule: ``from service
    import api`` imports ``service.api``); ``from . import a`` in ``service/qa/engine.py``
    yields ``service.qa`` and ``service.qa.a``.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                keep = len(parts) - (node.level - 1)
                if keep < 1:
                    yield node.lineno, "." * node.level + (node.module or "")  # beyond the top: reported as is
                    continue
                base = ".".join(parts[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield node.lineno, base
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{base}.{alias.name}"


def violations(source: SourceFile) -> list[Violation]:
    """The imports of ``source`` that its layer forbids (one per import statement and prefix)."""
    layer = layer_of(source.module)
    if layer is None:
        return []
    found: dict[tuple[int, str], Violation] = {}
    for line, imported in imported_modules(source.tree, source.module, source.is_package):
        for prefix in FORBIDDEN[layer]:
            if _under(imported, prefix) and (line, prefix) not in found:
                found[(line, prefix)] = Violation(source.path, line, imported, layer, prefix)
    return sorted(found.values(), key=lambda v: (v.path, v.line, v.prefix))


def _synthetic(path: str, text: str) -> SourceFile:
    """A module that exists only as ``text``, as if it were the file at ``path``."""
    return SourceFile(path, module_name(Path(path)), ast.parse(text))


SOURCES = list(source_files(*SCANNED))


# --- the checker itself ------------------------------------------------------------------------------
def test_the_checker_catches_violations_in_a_synthetic_module() -> None:
    """So that the rule below cannot pass vacuously."""
    bad = _synthetic(
        "service/qa/example.py",
        "import os\n"
        "from service.qa.types import Answer\n"  # allowed
        "from service.api.app import create_app\n"  # line 3: web layer
        "def handler():\n"
        "    from ..cli import app\n"  # line 5: relative, inside a function → service.cli
        "    import rich.console\n"  # line 6: a framework
        "from service import config\n"  # line 7: a submodule named in the import list
        "from . import fusion\n",  # allowed: service.qa.fusion
    )
    found = violations(bad)
    assert [(v.line, v.imported, v.prefix) for v in found] == [
        (3, "service.api.app", "service.api"),
        (5, "service.cli", "service.cli"),
        (6, "rich.console", "rich"),
        (7, "service.config", "service.config"),
    ], [str(v) for v in found]
    assert str(found[0]) == (
        "service/qa/example.py:3: imports service.api.app (layer service.qa must not import service.api)"
    )


def test_the_checker_resolves_relative_imports_in_packages_and_knows_the_layers() -> None:
    init = _synthetic("indexer/store/__init__.py", "from .format import IndexData\nfrom .. import errors\n")
    assert list(imported_modules(init.tree, init.module, init.is_package)) == [
        (1, "indexer.store.format"),
        (1, "indexer.store.format.IndexData"),
        (2, "indexer"),
        (2, "indexer.errors"),
    ]
    nested = _synthetic("service/api/routes.py", "from ..qa.types import Answer\nfrom .. import cli\n")
    assert list(imported_modules(nested.tree, nested.module, nested.is_package)) == [
        (1, "service.qa.types"),
        (1, "service.qa.types.Answer"),
        (2, "service"),
        (2, "service.cli"),
    ]
    assert [str(v) for v in violations(nested)] == [
        "service/api/routes.py:2: imports service.cli (layer service.api must not import service.cli)"
    ]
    beyond = _synthetic("indexer/pipeline.py", "from ... import anything\n")
    assert list(imported_modules(beyond.tree, beyond.module, beyond.is_package)) == [(1, "...")]
    indexer = _synthetic("indexer/pipeline.py", "from service.qa import types\n")
    assert [v.prefix for v in violations(indexer)] == ["service"]
    assert violations(_synthetic("eval/example.py", "from service.cli import app\nimport indexer\n")) == []
    assert layer_of("service.qa.engine") == "service.qa"
    assert layer_of("service.api.routes") == "service.api"
    assert layer_of("service.cli") == "service.cli"
    assert layer_of("service") == "service"
    assert layer_of("servicex.thing") is None


def test_every_scanned_module_has_a_layer_and_every_layer_has_modules() -> None:
    assert len(SOURCES) > 40, [s.path for s in SOURCES]  # the scan found the code base
    assert [s.path for s in SOURCES if layer_of(s.module) is None] == []
    assert {layer for layer in FORBIDDEN if not any(layer_of(s.module) == layer for s in SOURCES)} == set()


# --- the rule ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", list(FORBIDDEN))
def test_imports_follow_the_direction_rule(layer: str) -> None:
    found = [str(v) for s in SOURCES if layer_of(s.module) == layer for v in violations(s)]
    assert found == [], "imports against the direction rule:\n" + "\n".join(found)


def test_the_qa_library_imports_no_web_or_cli_framework() -> None:
    qa = [s for s in SOURCES if layer_of(s.module) == "service.qa"]
    assert len(qa) >= 8, [s.path for s in qa]
    top_level = {
        (s.path, line, name.split(".")[0])
        for s in qa
        for line, name in imported_modules(s.tree, s.module, s.is_package)
    }
    used = sorted(f"{path}:{line}: {name}" for path, line, name in top_level if name in FRAMEWORKS)
    assert used == [], "service/qa imports a framework:\n" + "\n".join(used)
