"""``tanya eval``: the gold set (default), SciFact (BEIR), FacQA, SQuAD-format sets and the cross-lingual valid questions.

Registered with the ``tanya`` CLI through the ``tanya.commands`` entry point (see
pyproject.toml), and runnable alone as ``python -m eval``. Imports of the library and of
``service.cli`` happen inside the commands, so loading this module costs ``tanya ask``
nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from eval.squad import QAItem, QASet

app = typer.Typer(help="Measure quality: the gold set (default), SciFact (BEIR) and FacQA.", no_args_is_help=False)


def _log(line: str) -> None:
    sys.stderr.write(line + "\n")


def _check_modes(modes: list[str] | None) -> list[str]:
    from indexer.errors import ConfigError
    from service.qa.types import MODES

    bad = [m for m in modes or [] if m not in MODES]
    if bad:
        raise ConfigError(f"unknown mode(s) {bad}; choose from {list(MODES)}")
    return list(modes or [])


@app.callback(invoke_without_command=True)
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
    from service.cli import domain_errors, settings_for
    from service.qa.types import MODES

    with domain_errors():
        settings = settings_for()
        chosen_modes = _check_modes(modes) or list(MODES)
        report = run(settings, gold, configs or list(DEFAULT_CONFIGS), chosen_modes, work_dir, log=_log)
        written = write_report(report, out)
    typer.echo(markdown_table(report))
    typer.echo("wrote " + ", ".join(str(p) for p in written))


def _run_public(kind: str, path: Path, specs: list[str] | None, modes: list[str] | None, out: Path,
                cache_dir: Path) -> None:
    from eval import beir
    from eval.runner import write_benchmark_report
    from indexer.errors import ConfigError
    from service.cli import domain_errors
    from service.render import progress_bar

    def progress(name: str) -> beir.Progress | None:
        return progress_bar(f"embedding with {name}", transient=True)[0]

    with domain_errors():
        chosen_modes = _check_modes(modes)
        if not path.exists():
            raise ConfigError(f"no data set at {path}")
        corpus = beir.load_beir(path) if kind == "beir" else beir.load_facqa(path)
        default = beir.BEIR_SPECS if kind == "beir" else beir.FACQA_SPECS
        chosen = [s for s in (specs or default) if not chosen_modes or beir.mode_of(s) in chosen_modes]
        tokenize = beir.english_tokenizer() if kind == "beir" else beir.indonesian_tokenizer()
        report = beir.run_benchmark(corpus, chosen, tokenize, cache_dir, log=_log, progress=progress)
    published = beir.SCIFACT_PUBLISHED if corpus.name == "scifact" else None
    table = beir.markdown(report, published)
    written = write_benchmark_report(report, table, out, corpus.name)
    typer.echo(table)
    typer.echo("wrote " + ", ".join(str(p) for p in written))


SpecsOption = Annotated[
    list[str] | None,
    typer.Option("--run", "-r", help="Run spec: bm25, an encoder, a+b fused, or tanya:<spec> (repeatable)."),
]
BenchModesOption = Annotated[list[str] | None, typer.Option("--mode", "-m", help="Only runs of this mode (repeatable).")]
BenchOutOption = Annotated[Path, typer.Option(help="Report directory.")]
CacheOption = Annotated[Path, typer.Option(help="Embedding cache (keyed by corpus hash and encoder).")]


@app.command("beir")
def eval_beir(
    path: Annotated[Path, typer.Argument(help="BEIR data set folder, e.g. ../shared/eval-data/scifact")],
    runs: SpecsOption = None,
    modes: BenchModesOption = None,
    out: BenchOutOption = Path("eval/out"),
    cache_dir: CacheOption = Path("var/bench-cache"),
) -> None:
    """Score a BEIR data set (test split): nDCG@10, R@10, R@100 per run, against published numbers."""
    _run_public("beir", path, runs, modes, out, cache_dir)


@app.command("facqa")
def eval_facqa(
    path: Annotated[Path, typer.Argument(help="FacQA folder, e.g. ../shared/eval-data/facqa")],
    runs: SpecsOption = None,
    modes: BenchModesOption = None,
    out: BenchOutOption = Path("eval/out"),
    cache_dir: CacheOption = Path("var/bench-cache"),
) -> None:
    """IndoNLU FacQA as Indonesian retrieval: lexical, dense and hybrid side by side."""
    _run_public("facqa", path, runs, modes, out, cache_dir)


@app.command("qa")
def eval_qa(
    path: Annotated[Path, typer.Argument(help="SQuAD-format file, e.g. ../shared/eval-data/tydiqa-id/valid.json")],
    name: Annotated[str | None, typer.Option(help="Report name (default: parent folder + file stem).")] = None,
    titles: Annotated[
        list[str] | None, typer.Option("--title", "-t", help="Only this SQuAD article (repeatable).")
    ] = None,
    configs: Annotated[
        list[str] | None, typer.Option("--config", "-c", help="reranker, support or bare-e5 (repeatable; default all).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.", min=1)] = None,
    out: BenchOutOption = Path("eval/out"),
    work_dir: Annotated[Path, typer.Option(help="Where the set's documents and index are kept.")] = Path("var/eval-qa"),
) -> None:
    """Ask every question of a SQuAD-format file through the engine: answer hits, abstention, latency."""
    from eval.squad import load_squad
    from indexer.errors import ConfigError

    with _qa_errors():
        if not path.is_file():
            raise ConfigError(f"no SQuAD-format file at {path}")
        qaset = load_squad(path, titles)
    _run_qa_set(qaset, name or f"{path.parent.name}-{path.stem}", configs, limit, out, work_dir)


@contextmanager
def _qa_errors() -> Iterator[None]:
    """Domain errors, and an unreadable data file, as one line and an exit code."""
    from indexer.errors import ConfigError
    from service.cli import domain_errors

    with domain_errors():
        try:
            yield
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"cannot read the question set: {exc}") from exc


def _run_qa_set(
    qaset: QASet, label: str, configs: list[str] | None, limit: int | None, out: Path, work_dir: Path,
    group: Callable[[QAItem], str] | None = None,
) -> None:
    """:func:`eval.qa.run_qa` over ``qaset`` with the product's settings; prints and writes the table."""
    from eval.qa import CONFIGS, markdown_table, run_qa
    from eval.runner import write_benchmark_report
    from indexer.embedders import load_embedders
    from indexer.errors import ConfigError
    from service.cli import domain_errors, settings_for
    from service.qa.engine import load_reranker
    from service.render import progress_bar

    with domain_errors():
        bad = [c for c in configs or [] if c not in CONFIGS]
        if bad:
            raise ConfigError(f"unknown config(s) {bad}; choose from {list(CONFIGS)}")
        settings = settings_for()
        embedders = load_embedders(settings.embedders)
        chosen = configs or list(CONFIGS)
        reranker = load_reranker(settings.answer.reranker) if "reranker" in chosen else None

        def tick(config: str, total: int) -> Callable[[], None]:
            update, _stop = progress_bar(f"{label} {config}", transient=True)
            done = [0]

            def step() -> None:
                done[0] += 1
                if update is not None:
                    update(done[0], total)

            return step

        report = run_qa(
            qaset, settings, work_dir / label, embedders, reranker, chosen, limit, log=_log, tick=tick, group=group
        )
        report["name"] = label
        table = markdown_table(report)
        written = write_benchmark_report(report, f"# {label}\n\n{table}\n", out / "qa", label)
    typer.echo(table)
    typer.echo("wrote " + ", ".join(str(p) for p in written))


@app.command("crosslingual")
def eval_crosslingual(
    data: Annotated[Path, typer.Option(help="The eval-data folder (TyDi QA-id, IDK-MRC, SQuAD 2.0 valid).")] = Path(
        "../shared/eval-data"
    ),
    configs: Annotated[
        list[str] | None, typer.Option("--config", "-c", help="reranker, support or bare-e5 (repeatable; default all).")
    ] = None,
    out: BenchOutOption = Path("eval/out"),
    work_dir: Annotated[Path, typer.Option(help="Where the set's documents and index are kept.")] = Path("var/eval-qa"),
) -> None:
    """The valid questions asked in English about Indonesian passages, against the same questions as written."""
    from eval.crosslingual import is_translated, load_bilingual

    with _qa_errors():
        qaset = load_bilingual(data)
    _run_qa_set(qaset, "crosslingual", configs, None, out, work_dir,
                lambda item: "translated" if is_translated(item) else "as written")


def main() -> None:
    """``python -m eval``: the same commands as ``tanya eval``."""
    from service.cli import configure_logging

    configure_logging()
    app(prog_name="python -m eval")
