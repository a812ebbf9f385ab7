"""One definition of each bound: the question length, the top_k range and the retrieval modes.

``service/qa/types.py`` defines ``MAX_QUESTION_CHARS``, ``TOP_K_MIN``/``TOP_K_MAX`` and
``Mode``; everything else must use those names. The first half reads the source with ``ast``
and fails on a second, literal copy of a bound; the second half checks at run time that the
settings, the HTTP schema, the OpenAPI document and the CLI options enforce the same values.

The scan looks at how a number is used, not at every occurrence: ``1000`` is also the
milliseconds in a second and a pool or depth size (``SENTENCE_POOL = 1000``, ``k: int =
1000`` in eval), so a literal 1000 counts as a copy of the question length only as an upper
bound keyword (``max_length=1000``, ``le=1000``), in a comparison with ``len(...)``, assigned
to a name about characters, length, questions or queries, or in prose ("1000 characters").
A literal 20 counts as a copy of ``TOP_K_MAX`` as an upper bound keyword (``le=20``,
``max=20``) or compared with something named ``top_k``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeGuard

import pytest
import typer.main
from pydantic import ValidationError
from typer.testing import CliRunner

import service.cli
from indexer.errors import InvalidQueryError
from service.api.app import create_app
from service.api.schemas import AskRequest
from service.config import Settings
from service.qa.query import check_top_k, clean_question
from service.qa.types import MAX_QUESTION_CHARS, MODES, TOP_K_MAX, TOP_K_MIN
from tests.support.helpers import make_settings
from tests.support.source import source_files

DEFINITIONS = "service/qa/types.py"
SCANNED = ("indexer", "service", "eval")

#: Keyword arguments that state an upper bound (pydantic/FastAPI ``le``/``lt``/``max_length``,
#: click/typer ``max``).
UPPER_BOUND_KEYWORDS = {"le", "lt", "max", "max_length", "maxLength", "max_len", "max_chars", "maximum"}
#: Names that say "a length of text" when a literal 1000 is assigned to them.
LENGTH_NAME = re.compile(r"char|len|question|query", re.IGNORECASE)
#: Prose that states the question limit ("1000 characters", "1,000 chars").
LENGTH_TEXT = re.compile(r"\b1,?000\s*char", re.IGNORECASE)


def _is_number(node: ast.AST, *values: int) -> bool:
    return (
        isinstance(node, ast.Constant)
        and type(node.value) in (int, float)
        and not isinstance(node.value, bool)
        and node.value in values
    )


def _is_len_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"


def _names_top_k(node: ast.AST) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return "top_k" in name.lower()


def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def question_length_copies(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``(line, what)`` for each literal 1000 used as a text-length bound."""
    limit = MAX_QUESTION_CHARS
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in UPPER_BOUND_KEYWORDS and _is_number(node.value, limit, limit + 1):
            yield node.value.lineno, f"{node.arg}={ast.unparse(node.value)}"
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_is_len_call(o) for o in operands) and any(_is_number(o, limit, limit + 1) for o in operands):
                yield node.lineno, ast.unparse(node)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None and _is_number(node.value, limit):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [ast.unparse(t) for t in targets]
            if any(LENGTH_NAME.search(name) for name in names):
                yield node.lineno, ast.unparse(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and LENGTH_TEXT.search(node.value):
            yield node.lineno, repr(node.value)


def top_k_copies(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``(line, what)`` for each literal 20 used as an upper bound (``le=20``, ``max=20``, ``top_k > 20``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in UPPER_BOUND_KEYWORDS and (
            _is_number(node.value, TOP_K_MAX) or (node.arg == "lt" and _is_number(node.value, TOP_K_MAX + 1))
        ):
            yield node.value.lineno, f"{node.arg}={ast.unparse(node.value)}"
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_names_top_k(o) for o in operands) and any(_is_number(o, TOP_K_MAX, TOP_K_MAX + 1) for o in operands):
                yield node.lineno, ast.unparse(node)


def _is_literal(node: ast.AST) -> TypeGuard[ast.Subscript]:
    if not isinstance(node, ast.Subscript):
        return False
    base = node.value
    return (isinstance(base, ast.Name) and base.id == "Literal") or (
        isinstance(base, ast.Attribute) and base.attr == "Literal"
    )


def mode_copies(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``(line, what)`` for ``Literal[...]`` naming "hybrid", and for literal collections of all the modes."""
    literals = [node for node in ast.walk(tree) if _is_literal(node)]
    inside_literal = {id(n) for lit in literals for n in ast.walk(lit.slice)}
    for node in ast.walk(tree):
        if _is_literal(node):
            if "hybrid" in _strings(node.slice):
                yield node.lineno, ast.unparse(node)
        elif isinstance(node, ast.Tuple | ast.List | ast.Set) and id(node) not in inside_literal:
            items = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
            if set(MODES) <= items:
                yield node.lineno, ast.unparse(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and re.search(r"Literal\[.*hybrid", node.value):
            yield node.lineno, repr(node.value)  # a quoted annotation


CHECKS = {"question length": question_length_copies, "top_k bound": top_k_copies, "modes": mode_copies}
SOURCES = [s for s in source_files(*SCANNED) if s.path != DEFINITIONS]


# --- the checkers themselves ----------------------------------------------------------------------------
SYNTHETIC_BAD = '''
from typing import Literal
import typer
from pydantic import Field
from fastapi import Query
MAX_QUESTION_LEN = 1000
Mode = Literal["hybrid", "dense", "lexical"]
ALL_MODES = ("lexical", "dense", "hybrid")
def check(question: str, top_k: int) -> None:
    if len(question) > 1000:
        raise ValueError("at most 1,000 characters")
    if top_k > 20:
        raise ValueError
q: str = Query(max_length=1000)
k: int = Field(ge=1, le=20)
option = typer.Option(min=1, max=20)
'''
SYNTHETIC_GOOD = '''
SENTENCE_POOL = 1000
elapsed_ms = seconds * 1000
threshold: float = Field(default=0.2, ge=0.0, le=1.0)
rrf_k: int = Field(default=60, ge=1)
chunk: int = Field(default=256, ge=16, le=2048)
one_mode = ("hybrid",)
def run(k: int = 1000) -> None: ...
'''


def test_the_checkers_catch_copies_in_a_synthetic_module() -> None:
    """So that the rules below cannot pass vacuously."""
    bad = ast.parse(SYNTHETIC_BAD)
    assert sorted(line for line, _ in question_length_copies(bad)) == [6, 10, 11, 14]
    assert sorted(line for line, _ in top_k_copies(bad)) == [12, 15, 16]
    assert sorted(line for line, _ in mode_copies(bad)) == [7, 8]


def test_the_checkers_let_unrelated_numbers_and_strings_be() -> None:
    good = ast.parse(SYNTHETIC_GOOD)
    assert [list(check(good)) for check in CHECKS.values()] == [[], [], []]


def test_the_definitions_file_is_where_the_checkers_would_look() -> None:
    """The single definitions are found in types.py by the same checkers (it is only left out of the scan)."""
    [types] = [s for s in source_files("service") if s.path == DEFINITIONS]
    text = ast.unparse(types.tree)
    assert f"MAX_QUESTION_CHARS = {MAX_QUESTION_CHARS}" in text and f"TOP_K_MAX = {TOP_K_MAX}" in text
    assert list(mode_copies(types.tree)), "types.py should hold the Literal of the modes"
    assert len(SOURCES) > 40


# --- the rule ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(CHECKS))
def test_each_bound_is_defined_once(kind: str) -> None:
    found = [f"{s.path}:{line}: {what}" for s in SOURCES for line, what in CHECKS[kind](s.tree)]
    assert found == [], f"a second copy of the {kind} outside {DEFINITIONS}:\n" + "\n".join(found)


# --- the bounds agree at run time ------------------------------------------------------------------------
def _json_bounds(schema: dict[str, Any]) -> tuple[Any, Any]:
    """``(minimum, maximum)`` of an integer JSON schema, through ``anyOf`` (``int | None``)."""
    options = schema.get("anyOf", [schema])
    [integer] = [o for o in options if o.get("type") == "integer"]
    return integer.get("minimum"), integer.get("maximum")


def test_settings_top_k_bounds() -> None:
    metadata = Settings.model_fields["top_k"].metadata
    ge = [m.ge for m in metadata if hasattr(m, "ge")]
    le = [m.le for m in metadata if hasattr(m, "le")]
    assert (ge, le) == ([TOP_K_MIN], [TOP_K_MAX])
    make_settings(Path("idx"), top_k=TOP_K_MAX)
    with pytest.raises(ValidationError):
        make_settings(Path("idx"), top_k=TOP_K_MAX + 1)


def test_library_checks_use_the_bounds() -> None:
    assert check_top_k(TOP_K_MIN) == TOP_K_MIN and check_top_k(TOP_K_MAX) == TOP_K_MAX
    for bad in (TOP_K_MIN - 1, TOP_K_MAX + 1):
        with pytest.raises(InvalidQueryError):
            check_top_k(bad)
    assert clean_question("a" * MAX_QUESTION_CHARS) == "a" * MAX_QUESTION_CHARS
    with pytest.raises(InvalidQueryError):
        clean_question("a" * (MAX_QUESTION_CHARS + 1))


def test_ask_request_schema_bounds() -> None:
    schema = AskRequest.model_json_schema()
    assert _json_bounds(schema["properties"]["top_k"]) == (TOP_K_MIN, TOP_K_MAX)
    AskRequest(question="a" * MAX_QUESTION_CHARS, top_k=TOP_K_MAX)
    for body in ({"question": "a" * (MAX_QUESTION_CHARS + 1)}, {"question": "q", "top_k": TOP_K_MAX + 1}):
        with pytest.raises(ValidationError):
            AskRequest(**body)


def test_openapi_bounds(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path / "idx", reload_poll_s=0))  # the lifespan is not started
    spec = app.openapi()
    parameters = {p["name"]: p["schema"] for p in spec["paths"]["/v1/search"]["get"]["parameters"]}
    assert parameters["q"]["maxLength"] == MAX_QUESTION_CHARS
    assert _json_bounds(parameters["top_k"]) == (TOP_K_MIN, TOP_K_MAX)
    ask = spec["components"]["schemas"]["AskRequest"]["properties"]
    assert _json_bounds(ask["top_k"]) == (TOP_K_MIN, TOP_K_MAX)
    modes = [o for o in parameters["mode"]["anyOf"] if "enum" in o]
    assert modes == [{"enum": list(MODES), "type": "string"}]


def _option_range(param: Any) -> tuple[Any, Any]:
    """The ``min``/``max`` of a typer option (on the option with typer's own core, else on its click type)."""
    if getattr(param, "min", None) is not None or getattr(param, "max", None) is not None:
        return param.min, param.max
    return param.type.min, param.type.max


@pytest.mark.parametrize("command", ["ask", "search"])
def test_cli_top_k_option_bounds(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    group = typer.main.get_command(service.cli.app)
    [top_k] = [p for p in group.commands[command].params if p.name == "top_k"]  # type: ignore[attr-defined]
    assert "--top-k" in top_k.opts
    assert _option_range(top_k) == (TOP_K_MIN, TOP_K_MAX)
    # And the parser enforces them: out of range is a usage error (2); in range reaches the
    # command, which then fails for want of an index (1).
    monkeypatch.setenv("TANYA_EMBEDDERS", "fake")
    monkeypatch.setenv("TANYA_RERANKER", "off")
    monkeypatch.setenv("TANYA_INDEX_DIR", str(tmp_path / "no-index"))
    runner = CliRunner()
    codes = {k: runner.invoke(service.cli.app, [command, "visa", "--top-k", str(k)]).exit_code for k in (
        TOP_K_MIN - 1, TOP_K_MIN, TOP_K_MAX, TOP_K_MAX + 1,
    )}
    assert codes == {TOP_K_MIN - 1: 2, TOP_K_MIN: 1, TOP_K_MAX: 1, TOP_K_MAX + 1: 2}
