"""The ``tanya`` command line (typer app) with the fake embedder, through click's CliRunner.

With the installed click (8.2+), ``result.stdout`` and ``result.stderr`` are captured
separately and ``result.output`` interleaves both.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from tests.support.contract import ANSWER_KEYS as CONTRACT_KEYS
from tests.support.contract import CITATION_KEYS
from tests.support.helpers import KEMNAKER, METI, TOKUTEI


def _error_line(result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# --- index -----------------------------------------------------------------------------------------
def test_index_twice_second_run_embeds_nothing(runner: CliRunner, cli_env: Path, corpus_copy: Path) -> None:
    first = runner.invoke(app, ["index", str(corpus_copy)])
    assert first.exit_code == 0, first.output
    assert "indexed 3 documents" in first.stdout
    assert cli_env.is_symlink()
    second = runner.invoke(app, ["index", str(corpus_copy)])
    assert second.exit_code == 0, second.output
    assert "up to date" in second.stdout and "nothing embedded" in second.stdout


def test_index_json_reports_reuse(runner: CliRunner, cli_env: Path, corpus_copy: Path) -> None:
    first = json.loads(runner.invoke(app, ["index", str(corpus_copy), "--json"]).stdout)
    assert first["changed"] is True and sorted(first["embedded_documents"]) == sorted([KEMNAKER, METI, TOKUTEI])
    assert first["texts_embedded"] > 0
    result = runner.invoke(app, ["index", str(corpus_copy), "--json"])
    assert result.exit_code == 0, result.output
    second = json.loads(result.stdout)
    assert second["changed"] is False
    assert second["texts_embedded"] == 0 and second["embedded_documents"] == []
    assert second["build_id"] == first["build_id"]
    assert "up to date" in second["summary"]


def test_index_dir_option_overrides_the_environment(runner: CliRunner, cli_env: Path, corpus_copy: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    result = runner.invoke(app, ["index", str(corpus_copy), "--index-dir", str(other)])
    assert result.exit_code == 0, result.output
    assert (other / "manifest.json").is_file()
    assert not cli_env.exists()


def test_index_warns_about_skipped_files_on_stderr(runner: CliRunner, cli_env: Path, corpus_copy: Path) -> None:
    (corpus_copy / "broken.txt").write_bytes(b"\x00\x01binary")
    result = runner.invoke(app, ["index", str(corpus_copy), "--json"])
    assert result.exit_code == 3, result.output  # written, but not every file: a script must notice
    report = json.loads(result.stdout)
    assert [Path(s["path"]).name for s in report["skipped"]] == ["broken.txt"]
    assert any(line.startswith("warning:") and "broken.txt" in line for line in result.stderr.splitlines())


def test_index_without_documents_fails(runner: CliRunner, cli_env: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["index", str(empty)])
    assert result.exit_code == 1
    assert "no readable" in _error_line(result)
    assert result.stdout == ""


def test_unknown_embedder_setting_is_a_domain_error(runner: CliRunner, cli_env: Path, corpus_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("TANYA_EMBEDDERS", "no-such-model")
    result = runner.invoke(app, ["index", str(corpus_copy)])
    assert result.exit_code == 1
    assert "no-such-model" in _error_line(result)


def test_invalid_setting_is_a_domain_error(runner: CliRunner, cli_env: Path, corpus_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("TANYA_CHUNK_MAX_TOKENS", "3")
    result = runner.invoke(app, ["index", str(corpus_copy)])
    assert result.exit_code == 1
    assert "TANYA_CHUNK_MAX_TOKENS" in _error_line(result)


# --- ask ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ask_with_the_shipped_reranker(runner: CliRunner, indexed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The reranked path: the answer reader loads from the package (no download) and is timed as a stage.
    monkeypatch.setenv("TANYA_RERANKER", "on")
    result = runner.invoke(app, ["ask", "Which Indonesian institutions take part in the Tokutei Ginou cooperation?", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert "rerank" in payload["timings_ms"] and 0.0 <= payload["confidence"] <= 1.0
    for citation in payload["citations"]:
        source = (indexed / citation["source"]).read_text(encoding="utf-8")
        assert source[citation["start"] : citation["end"]] == citation["text"]


def test_ask_json_follows_the_contract(runner: CliRunner, indexed: Path) -> None:
    result = runner.invoke(app, ["ask", "Who selects Tokutei Ginou workers?", "--json"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert set(payload) >= CONTRACT_KEYS
    assert payload["question"] == "Who selects Tokutei Ginou workers?"
    assert payload["mode"] == "hybrid"
    assert payload["citations"], "answers and abstentions both list passages"
    for citation in payload["citations"]:
        assert set(citation) >= CITATION_KEYS
        source = (indexed / citation["source"]).read_text(encoding="utf-8")
        assert source[citation["start"] : citation["end"]] == citation["text"]
    if not payload["abstained"]:
        assert "[1]" in payload["answer"]


def test_ask_options(runner: CliRunner, indexed: Path) -> None:
    result = runner.invoke(app, ["ask", "Berapa target peserta magang?", "--json", "--mode", "lexical", "-k", "2"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["mode"] == "lexical"
    assert all(set(c["ranks"]) == {"bm25"} for c in payload["citations"])


def test_ask_human_output(runner: CliRunner, indexed: Path) -> None:
    result = runner.invoke(app, ["ask", "Berapa target peserta magang ke Jepang?", "--mode", "lexical"])
    assert result.exit_code == 0, result.output
    assert "Sources:" in result.stdout or "Closest passages:" in result.stdout
    assert "»" in result.stdout and "«" in result.stdout


def test_ask_batch_reads_stdin_and_skips_blank_lines(runner: CliRunner, indexed: Path) -> None:
    questions = "Who selects Tokutei Ginou workers?\n   \nBerapa target peserta magang ke Jepang?\n"
    result = runner.invoke(app, ["ask", "--json", "-"], input=questions)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    payloads = [json.loads(line) for line in lines]
    assert [p["question"] for p in payloads] == [
        "Who selects Tokutei Ginou workers?",
        "Berapa target peserta magang ke Jepang?",
    ]
    assert all(set(p) >= CONTRACT_KEYS for p in payloads)


def test_ask_batch_reports_failed_questions(runner: CliRunner, indexed: Path) -> None:
    questions = "Who selects Tokutei Ginou workers?\n" + "x" * 1200 + "\n"
    result = runner.invoke(app, ["ask", "--json", "-"], input=questions)
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2
    assert "answer" in lines[0]
    assert lines[1]["error"]["title"] == "Invalid question"
    assert "1 question(s) failed" in _error_line(result)


def test_ask_batch_reports_an_undecodable_line_and_goes_on(runner: CliRunner, indexed: Path) -> None:
    # Issue 10, defect 1: invalid UTF-8 on stdin killed the batch with a traceback.
    result = runner.invoke(app, ["ask", "--json", "-"], input=b"x\xff\nBerapa target peserta magang ke Jepang?\n")
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2
    assert lines[0]["error"]["title"] == "Invalid question" and "Unicode" in lines[0]["error"]["detail"]
    assert lines[0]["question"] == "x\\xff"
    assert "answer" in lines[1]


def test_ask_empty_question_is_a_domain_error(runner: CliRunner, indexed: Path) -> None:
    result = runner.invoke(app, ["ask", "   "])
    assert result.exit_code == 1
    assert "empty" in _error_line(result)


def test_ask_unknown_mode_exits_1(runner: CliRunner, indexed: Path) -> None:
    result = runner.invoke(app, ["ask", "Who selects workers?", "--mode", "semantic"])
    assert result.exit_code == 1
    assert "semantic" in _error_line(result)
    assert result.stdout == ""


@pytest.mark.parametrize("top_k", ["99", "0", "abc"])
def test_ask_top_k_out_of_range_is_a_usage_error(runner: CliRunner, indexed: Path, top_k: str) -> None:
    result = runner.invoke(app, ["ask", "Who selects workers?", "--top-k", top_k])
    assert result.exit_code == 2
    assert result.stdout == ""


def test_unknown_option_is_a_usage_error(runner: CliRunner, indexed: Path) -> None:
    result = runner.invoke(app, ["ask", "Who?", "--no-such-option"])
    assert result.exit_code == 2


def test_missing_argument_is_a_usage_error(runner: CliRunner, cli_env: Path) -> None:
    assert runner.invoke(app, ["ask"]).exit_code == 2
    assert runner.invoke(app, ["show"]).exit_code == 2


@pytest.mark.parametrize(
    "args",
    [["ask", "Who selects workers?"], ["search", "workers"], ["show", "anything"], ["ask", "-"]],
)
def test_no_index_exits_1_with_one_error_line(runner: CliRunner, cli_env: Path, args: list[str]) -> None:
    result = runner.invoke(app, args, input="a question\n")
    assert result.exit_code == 1
    line = _error_line(result)
    assert "no index" in line and "tanya index" in line
    assert result.stdout == ""


def test_mismatched_index_exits_1(runner: CliRunner, indexed: Path, monkeypatch) -> None:
    monkeypatch.setenv("TANYA_CHUNK_MAX_TOKENS", "64")
    result = runner.invoke(app, ["ask", "Who selects workers?"])
    assert result.exit_code == 1
    assert "chunk" in _error_line(result)


# --- search ---------------------------------------------------------------------------------------
def test_search_json(runner: CliRunner, indexed: Path) -> None:
    result = runner.invoke(app, ["search", "BP2MI LPK", "--json", "--top-k", "3"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["query"] == "BP2MI LPK"
    assert 1 <= len(payload["results"]) <= 3
    for hit in payload["results"]:
        assert {"doc_id", "chunk_id", "text", "start", "end", "score", "ranks", "lang", "section"} <= set(hit)
        assert set(hit["ranks"]) == {"bm25", "fake"}
        source = (indexed / hit["source"]).read_text(encoding="utf-8")
        assert source[hit["start"] : hit["end"]] == hit["text"]
    assert payload["results"][0]["doc_id"] == TOKUTEI


def test_search_human_output(runner: CliRunner, indexed: Path) -> None:
    result = runner.invoke(app, ["search", "zzzqx", "--mode", "lexical"])
    assert result.exit_code == 0, result.output
    assert "No passage matches." in result.stdout
    result = runner.invoke(app, ["search", "BP2MI", "--mode", "lexical"])
    assert "1. " in result.stdout and "bm25 #1" in result.stdout


# --- show -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("doc_id", [KEMNAKER, METI, TOKUTEI])
def test_show_prints_the_exact_document_text(runner: CliRunner, indexed: Path, doc_id: str) -> None:
    source = next(p for p in indexed.iterdir() if p.name.split(".")[0] == doc_id)
    text = source.read_text(encoding="utf-8")
    result = runner.invoke(app, ["show", doc_id])
    assert result.exit_code == 0, result.output
    # The text, plus one newline when the file does not end with one (metadata goes to stderr).
    assert result.stdout == text
    assert f"doc_id: {doc_id}" in result.stderr


def test_show_json(runner: CliRunner, indexed: Path) -> None:
    result = runner.invoke(app, ["show", TOKUTEI, "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["doc_id"] == TOKUTEI
    assert record["text"] == (indexed / "tokutei-ginou-bilateral-cooperation.md").read_text(encoding="utf-8")
    assert record["title"].startswith("Tokutei Ginou")
    assert record["languages"] == ["id", "en"]


def test_show_unknown_document(runner: CliRunner, indexed: Path) -> None:
    result = runner.invoke(app, ["show", "no-such-doc"])
    assert result.exit_code == 1
    assert "no-such-doc" in _error_line(result)
    assert result.stdout == ""


def test_no_arguments_shows_help(runner: CliRunner) -> None:
    result = runner.invoke(app, [])
    assert result.exit_code in (0, 2)
    assert "index" in result.output and "ask" in result.output


# --- serve's log stream (issue 10, small item) ------------------------------------------------------------
@pytest.fixture
def root_handlers() -> Iterator[None]:
    """The root logger's handlers and level as they were, restored after the test."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    yield
    root.handlers[:], root.level = saved, level


def test_serve_logs_warnings_only_as_json(root_handlers: None, capsys: pytest.CaptureFixture[str]) -> None:
    """``tanya serve`` wrote plain ``warning:`` lines (the CLI's handler) into its JSON log stream."""
    from service.cli import configure_logging, json_logging

    configure_logging()  # what every command does first
    json_logging()  # what serve does next
    logging.getLogger("tanya.service").warning("index not (re)loaded: %s", "Index unreadable")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert json.loads(lines[0])["msg"] == "index not (re)loaded: Index unreadable"
