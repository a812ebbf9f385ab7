"""Every Tanya error has a deliberate HTTP status and CLI exit code (after httpx's
``test_httpcore_all_exceptions_mapped``).

The error classes are collected from the running code (every subclass of ``TanyaError``,
recursively, once the modules that define them are imported) and cross-checked against the
source, so a new error class cannot slip past the tables unmapped.
"""

from __future__ import annotations

import ast
import inspect

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import indexer.errors
import service.api.problems
import service.cli
from indexer.errors import ConfigError, TanyaError
from service.api.problems import STATUS, ServiceError, install_error_handlers, status_for
from tests.support.source import source_files

DETAIL = "a detail for the test"
RETRY_AFTER = 7
USAGE_ERROR = 2  # click's exit status for a usage error


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    sub: type
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


#: Every error class of the code base (classes a test module might define are left out).
ERRORS: list[type[TanyaError]] = sorted(
    {cls for cls in _subclasses(TanyaError) if cls.__module__.split(".")[0] in ("indexer", "service", "eval")},
    key=lambda cls: (cls.__module__, cls.__qualname__),
)


def make(cls: type[TanyaError]) -> TanyaError:
    """An instance of ``cls`` with a detail string (and ``retry_after`` when the class needs one)."""
    if "retry_after" in inspect.signature(cls).parameters:
        return cls(DETAIL, retry_after=RETRY_AFTER)  # type: ignore[call-arg]
    return cls(DETAIL)


def _may_be_500(cls: type[TanyaError]) -> bool:
    """Only a misconfigured server (the ConfigError family) and the ServiceError base are 500s."""
    return issubclass(cls, ConfigError) or cls is ServiceError


def test_the_modules_defining_errors_are_the_ones_imported() -> None:
    assert {indexer.errors.__name__, service.api.problems.__name__} <= {cls.__module__ for cls in ERRORS}
    assert service.cli.EXIT_CODES  # imported for exit_code_for


def test_every_error_class_in_the_source_is_collected() -> None:
    """A class deriving from a Tanya error anywhere in indexer/, service/, eval/ is in ``ERRORS``.

    Guards against an error defined in a module this test does not import (its subclass
    would then be invisible to ``__subclasses__``).
    """
    known = {cls.__name__ for cls in ERRORS} | {TanyaError.__name__}
    defined: set[str] = set()
    changed = True
    sources = list(source_files("indexer", "service", "eval"))
    while changed:  # follow chains of subclasses across files
        changed = False
        for source in sources:
            for node in ast.walk(source.tree):
                if not isinstance(node, ast.ClassDef) or node.name in defined:
                    continue
                bases = {
                    base.id if isinstance(base, ast.Name) else base.attr
                    for base in node.bases
                    if isinstance(base, ast.Name | ast.Attribute)
                }
                if bases & (known | defined):
                    defined.add(node.name)
                    changed = True
    assert len(defined) >= 10, defined
    assert defined <= known, f"error classes not imported by this test: {sorted(defined - known)}"


def test_the_table_maps_only_tanya_errors() -> None:
    assert all(isinstance(cls, type) and issubclass(cls, TanyaError) for cls in STATUS)
    assert TanyaError not in STATUS  # every error is mapped on purpose, not by a catch-all
    assert all(400 <= status <= 599 for status in STATUS.values())


def test_an_unmapped_error_would_be_caught() -> None:
    """The checks below are not vacuous: a new, unmapped error falls through to 500 and fails them."""

    class UnmappedError(TanyaError):
        title = "Unmapped"

    assert [a for a in UnmappedError.__mro__ if a in STATUS and a is not TanyaError] == []
    assert status_for(UnmappedError(DETAIL)) == 500 and not _may_be_500(UnmappedError)
    assert UnmappedError not in ERRORS  # classes defined by tests are left out


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_error_has_an_explicit_status(cls: type[TanyaError]) -> None:
    entries = [ancestor for ancestor in cls.__mro__ if ancestor in STATUS and ancestor is not TanyaError]
    assert entries, f"{cls.__name__} has no entry (for itself or an ancestor below TanyaError) in STATUS"
    status = status_for(make(cls))
    assert type(status) is int and 400 <= status <= 599, status
    assert status == STATUS[entries[0]]  # the most specific entry wins
    if status == 500:
        assert _may_be_500(cls), f"{cls.__name__} maps to 500; only configuration errors may"


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_error_has_a_failure_exit_code(cls: type[TanyaError]) -> None:
    code = service.cli.exit_code_for(make(cls))
    assert type(code) is int, code
    assert code != 0, f"{cls.__name__} would exit 0 (success)"
    assert code != USAGE_ERROR, f"{cls.__name__} would exit {USAGE_ERROR}, click's usage-error status"
    assert 0 < code < 256


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_error_is_answered_as_problem_json_with_its_status(cls: type[TanyaError]) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise")
    def _raise() -> None:
        raise make(cls)

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/raise")
    status = status_for(make(cls))
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/problem+json"
    body = response.json()
    # The error's own handler answered (not the generic 500 for unexpected exceptions).
    assert {k: body[k] for k in ("status", "title", "detail", "instance")} == {
        "status": status, "title": cls.title, "detail": DETAIL, "instance": "/raise",
    }
    assert body["type"].startswith(service.api.problems.PROBLEM_TYPE_BASE)
    if issubclass(cls, service.api.problems.RateLimitedError):
        assert response.headers["retry-after"] == str(RETRY_AFTER)
    if issubclass(cls, service.api.problems.UnauthorizedError):
        assert response.headers["www-authenticate"].lower().startswith("bearer")
