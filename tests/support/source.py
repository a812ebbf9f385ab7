"""The project's own source files, parsed (for the rule tests in ``tests/architecture``)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.helpers import REPO_ROOT


@dataclass(frozen=True)
class SourceFile:
    """One ``.py`` file: its path relative to the repository, its dotted module name, its syntax tree."""

    path: str
    module: str
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        """Whether the file is a package's ``__init__.py`` (relative imports resolve from the package itself)."""
        return self.path.endswith("__init__.py")


def module_name(relative: Path) -> str:
    """``service/qa/engine.py`` → ``service.qa.engine``; ``service/qa/__init__.py`` → ``service.qa``."""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(*roots: str) -> Iterator[SourceFile]:
    """Every ``.py`` file under the given top-level folders of the repository, parsed, in path order."""
    for root in roots:
        for path in sorted((REPO_ROOT / root).rglob("*.py")):
            relative = path.relative_to(REPO_ROOT)
            if any(part == "__pycache__" or part.startswith(".") for part in relative.parts):
                continue
            text = path.read_text(encoding="utf-8")
            yield SourceFile(str(relative), module_name(relative), ast.parse(text, filename=str(relative)))
