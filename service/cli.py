"""``tanya``: a thin command line over the same library the HTTP service uses.

Commands here: ``index``, ``ask``, ``search``, ``show`` and ``serve``. Further commands are
discovered through the ``tanya.commands`` entry-point group (``tanya eval`` comes from the
``eval`` package that way), so this module imports nothing above ``service``.

Domain errors print one ``error: ...`` line on stderr and exit with :func:`exit_code_for`
(1); usage errors exit 2 (click's default).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer

from indexer.errors import DocumentNotFoundError, TanyaError
from service.config import Settings, load_settings
from service.qa.engine import Engine
from service.qa.types import TOP_K_MAX, TOP_K_MIN, SearchResult
from service.render import print_answer, print_passages, progress_bar

log = logging.getLogger("tanya.cli")

app = typer.Typer(
    name="tanya",
    help="Ask cited questions about Indonesian workers going to Japan (Tokutei Ginou, magang, METI internships).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

IndexDirOption = Annotated[Path | None, typer.Option("--index-dir", help="Index directory (default: TANYA_INDEX_DIR or var/index).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
TopKOption = Annotated[
    int | None,
    typer.Option("--top-k", "-k", min=TOP_K_MIN, max=TOP_K_MAX, help=f"Passages to retrieve ({TOP_K_MIN}-{TOP_K_MAX})."),
]
ModeOption = Annotated[str | None, typer.Option("--mode", "-m", help="hybrid (default), dense or lexical.")]

#: Exit status of ``tanya index`` when the index was written without some files (each warned about).
EXIT_PARTIAL = 3
#: Exit status of a domain error, by class (the most specific entry in the MRO wins). Every
#: error is a failure of the command, not of its usage (2), so all exit 1, as documented.
EXIT_CODES: dict[type[TanyaError], int] = {TanyaError: 1}


def exit_code_for(error: TanyaError) -> int:
    """The exit status for ``error``."""
    return next(EXIT_CODES[cls] for cls in type(error).__mro__ if cls in EXIT_CODES)


class _OneLineHandler(logging.Handler):
    """Warnings (e.g. a skipped file) as one ``warning: ...`` line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"{record.levelname.lower()}: {record.getMessage()}\n")


def configure_logging() -> None:
    """Warnings as one line each on stderr; libraries' chatter silenced."""
    root = logging.getLogger()
    if not any(isinstance(h, _OneLineHandler) for h in root.handlers):
        handler = _OneLineHandler()
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for noisy in ("bm25s", "sentence_transformers", "httpx", "faiss"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def json_logging() -> None:
    """For ``tanya serve``: logs only as JSON lines, so a log collector never meets a plain ``warning:`` line."""
    from service.api.logs import configure_json_logging

    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _OneLineHandler)]:
        root.removeHandler(handler)
    configure_json_logging()


def settings_for(index_dir: Path | None = None) -> Settings:
    """The settings of one command (``--index-dir`` wins over ``TANYA_INDEX_DIR``)."""
    return load_settings(index_dir=index_dir)


@contextmanager
def domain_errors() -> Iterator[None]:
    """Turn Tanya's errors into one stderr line and their exit code."""
    try:
        yield
    except TanyaError as exc:
        sys.stderr.write(f"error: {exc.detail}\n")
        raise typer.Exit(exit_code_for(exc)) from None


def emit_json(payload: Any) -> None:
    """One JSON document on one stdout line."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def stdin_lines() -> Iterator[str]:
    """Standard input line by line; bytes that are not UTF-8 become lone surrogates, not an exception.

    The question check then refuses that one line (with an error line) and the batch goes on.
    """
    binary = getattr(sys.stdin, "buffer", None)
    if binary is None:
        yield from sys.stdin
        return
    for raw in binary:
        yield raw.decode("utf-8", "surrogateescape")


def printable(text: str) -> str:
    """``text`` with undecodable bytes shown as ``\\xNN`` (JSON and terminals refuse lone surrogates)."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no byte decoded to (e.g. typed as one)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


@app.callback()
def _main() -> None:
    configure_logging()


@app.command()
def index(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders to index (default: corpus/).")] = None,
    index_dir: IndexDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Index documents (incremental and atomic: unchanged files reuse their vectors)."""
    from indexer.embedders import load_embedders
    from indexer.pipeline import IndexProgress, build_index

    with domain_errors():
        settings = settings_for(index_dir)
        embedders = load_embedders(settings.embedders)
        bar, stop = progress_bar("embedding texts", enabled=not as_json)

        def progress(state: IndexProgress) -> None:
            if bar is not None:
                bar(state.texts_done, state.texts_total, f"{state.documents_done:,}/{state.documents_total:,} documents")

        try:
            report = build_index(paths or settings.corpus_paths, settings.index, embedders, progress=progress)
        finally:
            stop()
    if as_json:
        emit_json({**dataclasses.asdict(report), "summary": report.summary})
    else:
        typer.echo(report.summary)
    if report.skipped:
        raise typer.Exit(EXIT_PARTIAL)


def _engine(index_dir: Path | None) -> Engine:
    return Engine.load(settings_for(index_dir).engine)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, or - to read one question per line from stdin.")],
    top_k: TopKOption = None,
    mode: ModeOption = None,
    index_dir: IndexDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer a question with cited sentences from the sources (or say they do not cover it)."""
    with domain_errors():
        engine = _engine(index_dir)
        if question != "-":
            answer = engine.ask(question, top_k=top_k, mode=mode)
            if as_json:
                emit_json(answer.to_dict())
            else:
                print_answer(answer)
            return
    # Batch: one question per line in, one JSON line out; the index is loaded once.
    failures = 0
    for line in stdin_lines():
        text = line.strip()
        if not text:
            continue
        try:
            result = engine.ask(text, top_k=top_k, mode=mode)
        except TanyaError as exc:
            failures += 1
            emit_json({"question": printable(text), "error": {"title": exc.title, "detail": exc.detail}})
            continue
        if as_json:
            emit_json(result.to_dict())
        else:
            print_answer(result)
    if failures:
        sys.stderr.write(f"error: {failures} question(s) failed; see the error lines in the output\n")
        raise typer.Exit(1)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Search query.")],
    top_k: TopKOption = None,
    mode: ModeOption = None,
    index_dir: IndexDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Return the best passages only (no answer)."""
    with domain_errors():
        engine = _engine(index_dir)
        passages = engine.search(query, top_k=top_k, mode=mode)
    if as_json:
        emit_json(SearchResult(query=query, mode=mode or engine.config.retrieval.mode, results=passages).to_dict())
        return
    print_passages(passages)


@app.command()
def show(
    doc_id: Annotated[str, typer.Argument(help="Document id (see 'tanya search' or GET /v1/documents).")],
    index_dir: IndexDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a document's text (what citation offsets refer to) and its metadata."""
    from indexer.store import load_index

    with domain_errors():
        settings = settings_for(index_dir)
        # Showing a document needs no encoder: read the index without loading models.
        data = load_index(settings.index_dir)
        doc = data.documents.get(doc_id)
        if doc is None:
            raise DocumentNotFoundError(f"no document {doc_id!r} in the index")
    if as_json:
        emit_json(doc.to_record())
        return
    meta = [f"{k}: {v}" for k, v in doc.to_record().items() if k not in ("text", "extra") and v not in (None, "", [])]
    sys.stderr.write("\n".join(meta) + "\n\n")
    # Exactly the text citation offsets refer to; a newline is added only for a terminal.
    sys.stdout.write(doc.text)
    if sys.stdout.isatty() and not doc.text.endswith("\n"):
        sys.stdout.write("\n")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default 8000).")] = None,
    index_dir: IndexDirOption = None,
) -> None:
    """Serve the HTTP API and the web page (uvicorn)."""
    import uvicorn

    from service.api.app import create_app
    from service.api.server import server_config

    with domain_errors():
        settings = settings_for(index_dir)
    json_logging()
    # uvicorn finishes in-flight requests on SIGTERM, then re-raises the signal; make that
    # final delivery a normal exit (status 0) rather than death by signal.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.Server(server_config(create_app(settings), settings.http, host, port)).run()


def register_commands(cli: typer.Typer) -> None:
    """Add the command groups other packages register under the ``tanya.commands`` entry points.

    Each entry point names a ``typer.Typer``; its name becomes the command (``eval``). A
    plugin that fails to load is reported and skipped: ``tanya ask`` must keep working.
    """
    for entry in entry_points(group="tanya.commands"):
        try:
            command = entry.load()
        except Exception as exc:  # a broken plugin must not take the core commands down
            log.warning("command %r not loaded: %s", entry.name, exc)
            continue
        cli.add_typer(command, name=entry.name)


# At the bottom, so a plugin importing this module's helpers finds them defined.
register_commands(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
