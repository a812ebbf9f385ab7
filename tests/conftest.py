"""What every test shares: an isolated environment and the token counter.

Every path is computed from the files under ``tests/support``, so the suite does not depend
on the current directory; every test runs with the ``TANYA_*`` environment cleared and inside
its own temporary working directory (so a stray ``.env`` cannot change the settings).

The rooms (``tests/indexer``, ``tests/service/qa``, ``tests/service/api``, ...) each have a
``conftest.py`` with the fixtures that room needs; shared definitions live in
``tests/support`` and are imported from there.
"""

from __future__ import annotations

import os

import pytest

from indexer.tokens import TokenCounter, get_counter


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.upper().startswith("TANYA_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def counter() -> TokenCounter:
    """The cl100k_base token counter (loaded once)."""
    return get_counter(None)
