"""``tanya``: a thin command line over the same library the HTTP service uses.

Domain errors print one line on stderr and exit 1; usage errors exit 2 (click's default).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from indexer.errors import ConfigError, DocumentNotFoundError, TanyaError
from indexer.settings import Settings
from service.answers import Answer
from service.engine import Engine, chunker_config, load_embedders

app = typer.Typer(
    name="tanya",
    help="Ask cited questions about Indonesian workers going to Japan (Tokutei Ginou, magang, METI internships).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

IndexDirOption = Annotated[Path | None, typer.Option("--index-dir", help="Index directory (default: TANYA_INDEX_DIR or var/index).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
TopKOption = Annotated[int | None, typer.Option("--top-k", "-k", min=1, max=20, help="Passages to retrieve (1-20).")]
ModeOption = Annotated[str | None, typer.Option("--mode", "-m", help="hybrid (default), dense or lexical.")]


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


class _OneLineHandler(logging.Handler):
    """Warnings (e.g. a skipped file) as one ``warning: ...`` line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"{record.levelname.lower()}: {record.getMessage()}\n")


def _configure_logging() -> None:
    root = logging.getLogger()
    if not any(isinstance(h, _OneLineHandler) for h in root.handlers):
        handler = _OneLineHandler()
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for noisy in ("bm25s", "sentence_transformers", "httpx", "faiss"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _settings(index_dir: Path | None = None) -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting TANYA_{where.upper()}: {first['msg']}") from exc
    return settings.model_copy(update={"index_dir": index_dir}) if index_dir else settings


@contextmanager
def _domain_errors() -> Iterator[None]:
    """Turn Tanya's errors into one stderr line and exit code 1."""
    try:
        yield
    except TanyaError as exc:
        sys.stderr.write(f"error: {exc.detail}\n")
        raise typer.Exit(1) from None


def _emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@app.callback()
def _main() -> None:
    _configure_logging()


# --- index --------------------------------------------------------------------------------
def _progress_bar(enabled: bool) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A rich progress bar with counts and ETA on stderr, only when stderr is a terminal."""
    console = _stderr()
    if not enabled or not console.is_terminal:
        return None, lambda: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    )
    task = bar.add_task("embed", total=None)
    bar.start()

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return update, bar.stop


@app.command()
def index(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders to index (default: corpus/).")] = None,
    index_dir: IndexDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Index documents (incremental and atomic: unchanged files reuse their vectors)."""
    from indexer.pipeline import build_index
    from indexer.tokens import get_counter

    with _domain_errors():
        settings = _settings(index_dir)
        embedders = load_embedders(settings.embedders)
        progress, stop = _progress_bar(not as_json)
        try:
            report = build_index(
                paths or settings.corpus_paths,
                settings.index_dir,
                embedders,
                get_counter(settings.tiktoken_cache_dir),
                chunker_config(settings),
                settings.max_file_bytes,
                settings.embed_batch_size,
                progress,
            )
        finally:
            stop()
    if as_json:
        payload = {**report.__dict__, "skipped": [s.__dict__ for s in report.skipped], "summary": report.summary}
        _emit_json(payload)
    else:
        typer.echo(report.summary)


# --- ask / search ------------------------------------------------------------------------------
def _highlighted(passage_text: str, start: int, end: int, offset: int) -> Text:
    text = Text(passage_text)
    text.stylize("bold yellow", start - offset, end - offset)
    return text


def _print_answer(answer: Answer) -> None:
    console = Console(highlight=False, soft_wrap=False)
    console.print(Text(answer.answer, style="bold"))
    if not answer.citations:
        return
    console.print()
    console.print("Closest passages:" if answer.abstained else "Sources:")
    for c in answer.citations:
        console.print(Text(f"[{c.marker}] {c.title} ({c.source}, chars {c.start}-{c.end})", style="cyan"))
        if console.is_terminal:
            console.print(_highlighted(c.text, c.highlight.start, c.highlight.end, c.start))
        else:
            # No colour: mark the supporting sentence with » «.
            rel_s, rel_e = c.highlight.start - c.start, c.highlight.end - c.start
            console.print(Text(c.text[:rel_s] + "»" + c.text[rel_s:rel_e] + "«" + c.text[rel_e:]))
        console.print()


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, or - to read one question per line from stdin.")],
    top_k: TopKOption = None,
    mode: ModeOption = None,
    index_dir: IndexDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer a question with cited sentences from the sources (or say they do not cover it)."""
    with _domain_errors():
        engine = Engine.load(_settings(index_dir))
        if question != "-":
            answer = engine.ask(question, top_k=top_k, mode=mode)
            if as_json:
                _emit_json(answer.to_dict())
            else:
                _print_answer(answer)
            return
    # Batch: one question per line in, one JSON line out; the index is loaded once.
    failures = 0
    for line in sys.stdin:
        text = line.strip()
        if not text:
            continue
        try:
            result = engine.ask(text, top_k=top_k, mode=mode)
        except TanyaError as exc:
            failures += 1
            _emit_json({"question": text, "error": {"title": exc.title, "detail": exc.detail}})
            continue
        if as_json:
            _emit_json(result.to_dict())
        else:
            _print_answer(result)
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
    with _domain_errors():
        engine = Engine.load(_settings(index_dir))
        passages = engine.search(query, top_k=top_k, mode=mode)
    if as_json:
        _emit_json({"query": query, "results": [p.to_dict() for p in passages]})
        return
    console = Console(highlight=False)
    if not passages:
        console.print("No passage matches.")
    for rank, p in enumerate(passages, start=1):
        ranks = ", ".join(f"{k} #{v}" if v else f"{k} -" for k, v in p.ranks.items())
        console.print(Text(f"{rank}. {p.title} [{p.chunk_id}] score {p.score:.4f} ({ranks})", style="cyan"))
        console.print(Text(p.text))
        console.print()


@app.command()
def show(
    doc_id: Annotated[str, typer.Argument(help="Document id (see 'tanya search' or GET /v1/documents).")],
    index_dir: IndexDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a document's text (what citation offsets refer to) and its metadata."""
    from indexer.store import load_index

    with _domain_errors():
        settings = _settings(index_dir)
        # Showing a document needs no encoder: read the index without loading models.
        data = load_index(settings.index_dir)
        doc = data.documents.get(doc_id)
        if doc is None:
            raise DocumentNotFoundError(f"no document {doc_id!r} in the index")
    if as_json:
        _emit_json(doc.to_record())
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

    from service.app import create_app
    from service.logs import configure_json_logging

    with _domain_errors():
        settings = _settings(index_dir)
    configure_json_logging()
    # uvicorn finishes in-flight requests on SIGTERM, then re-raises the signal; make that
    # final delivery a normal exit (status 0) rather than death by signal.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,  # the app logs every request itself, as JSON with its request id
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        proxy_headers=False,
    )


eval_app = typer.Typer(help="Measure quality: the gold set (default), SciFact (BEIR) and FacQA.", no_args_is_help=False)
app.add_typer(eval_app, name="eval")


@eval_app.callback(invoke_without_command=True)
def eval_gold(
    ctx: typer.Context,
    gold: Annotated[Path, typer.Option(help="Gold JSONL file.")] = Path("eval/gold.jsonl"),
    configs: Annotated[
        list[str] | None, typer.Option("--config", "-c", help="Encoder set, e.g. e5-small+use-m3 (repeatable).")
    ] = None,
    modes: Annotated[
        list[str] | None, typer.Option("--modes", "--mode", "-m", help="Mode (repeatable; default all three).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Report directory.")] = Path("eval/out"),
    work_dir: Annotated[Path, typer.Option(help="Where per-config indexes are cached.")] = Path("var/eval-indexes"),
) -> None:
    """Run the gold set for every encoder set and mode; write report.md/.json and a recall chart."""
    if ctx.invoked_subcommand is not None:
        return
    from eval.runner import DEFAULT_CONFIGS, markdown_table, run, write_report
    from indexer.settings import MODES

    with _domain_errors():
        settings = _settings()
        chosen_modes = _check_modes(modes) or list(MODES)

        def log(line: str) -> None:
            sys.stderr.write(line + "\n")

        report = run(settings, gold, configs or list(DEFAULT_CONFIGS), chosen_modes, work_dir, log=log)
        written = write_report(report, out)
    typer.echo(markdown_table(report))
    typer.echo("wrote " + ", ".join(str(p) for p in written))


def _check_modes(modes: list[str] | None) -> list[str]:
    from indexer.settings import MODES

    bad = [m for m in modes or [] if m not in MODES]
    if bad:
        raise ConfigError(f"unknown mode(s) {bad}; choose from {list(MODES)}")
    return list(modes or [])


def _benchmark_progress(name: str) -> Callable[[int, int], None] | None:
    console = _stderr()
    if not console.is_terminal:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(f"embedding with {name}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console, transient=True)
    task = bar.add_task(name, total=None)
    bar.start()

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)
        if done >= total:
            bar.stop()

    return update


def _run_public(kind: str, path: Path, specs: list[str] | None, modes: list[str] | None, out: Path,
                cache_dir: Path) -> None:
    from eval import beir

    with _domain_errors():
        chosen_modes = _check_modes(modes)
        if not path.exists():
            raise ConfigError(f"no data set at {path}")
        corpus = beir.load_beir(path) if kind == "beir" else beir.load_facqa(path)
        default = beir.BEIR_SPECS if kind == "beir" else beir.FACQA_SPECS
        chosen = [s for s in (specs or default) if not chosen_modes or beir.mode_of(s) in chosen_modes]
        tokenize = beir.english_tokenizer() if kind == "beir" else beir.indonesian_tokenizer()

        def log(line: str) -> None:
            sys.stderr.write(line + "\n")

        report = beir.run_benchmark(corpus, chosen, tokenize, cache_dir, log=log, progress=_benchmark_progress)
    published = beir.SCIFACT_PUBLISHED if corpus.name == "scifact" else None
    table = beir.markdown(report, published)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{corpus.name}.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (out / f"{corpus.name}.md").write_text(table + "\n", encoding="utf-8")
    typer.echo(table)
    typer.echo(f"wrote {out / (corpus.name + '.json')}, {out / (corpus.name + '.md')}")


SpecsOption = Annotated[
    list[str] | None, typer.Option("--run", "-r", help="Run spec: bm25, an encoder, or a+b fused (repeatable).")
]
BenchModesOption = Annotated[list[str] | None, typer.Option("--mode", "-m", help="Only runs of this mode (repeatable).")]
BenchOutOption = Annotated[Path, typer.Option(help="Report directory.")]
CacheOption = Annotated[Path, typer.Option(help="Embedding cache (keyed by corpus hash and encoder).")]


@eval_app.command("beir")
def eval_beir(
    path: Annotated[Path, typer.Argument(help="BEIR data set folder, e.g. ../shared/eval-data/scifact")],
    runs: SpecsOption = None,
    modes: BenchModesOption = None,
    out: BenchOutOption = Path("eval/out"),
    cache_dir: CacheOption = Path("var/bench-cache"),
) -> None:
    """Score a BEIR data set (test split): nDCG@10, R@10, R@100 per run, against published numbers."""
    _run_public("beir", path, runs, modes, out, cache_dir)


@eval_app.command("facqa")
def eval_facqa(
    path: Annotated[Path, typer.Argument(help="FacQA folder, e.g. ../shared/eval-data/facqa")],
    runs: SpecsOption = None,
    modes: BenchModesOption = None,
    out: BenchOutOption = Path("eval/out"),
    cache_dir: CacheOption = Path("var/bench-cache"),
) -> None:
    """IndoNLU FacQA as Indonesian retrieval: lexical, dense and hybrid side by side."""
    _run_public("facqa", path, runs, modes, out, cache_dir)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
