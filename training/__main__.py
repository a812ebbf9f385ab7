"""``python -m training reranker``: train, calibrate and write the answer reranker (``make train-reranker``)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from service.qa.reranker.reader import MODEL_DIR, native_bf16
from training.reranker import TrainConfig, recalibrate, train


def bar_console() -> Console:
    """The console progress goes to (stderr)."""
    return Console(stderr=True)


def plain(stage: str, done: int, total: int, detail: str) -> None:
    """Progress as plain lines: in a log (CI, nohup) a live bar prints nothing until the end."""
    if done == total or done % 50 == 0 or stage in {"pools", "resumed"}:
        typer.echo(f"{stage}: {done}/{total} {detail}", err=True)


app = typer.Typer(add_completion=False, help="Train models the product ships.")


@app.callback()
def _main() -> None:
    """Training commands."""


@app.command("reranker")
def reranker(
    data: Path = typer.Option(Path("../shared/eval-data"), help="The eval-data folder (TyDi QA-id, IDK-MRC, SQuAD 2.0)"),
    out: Path = typer.Option(MODEL_DIR, help="Where the adapter, head and spec are written"),
    seed: int = typer.Option(TrainConfig.seed, help="Random seed (sampling, order, initialisation)"),
    threads: int = typer.Option(TrainConfig.threads, help="torch threads"),
    epochs: float = typer.Option(TrainConfig.epochs, help="Passes over the training questions"),
    work_dir: Path = typer.Option(Path("var/train-reranker"), help="Where the valid sets' calibration indexes are kept"),
    checkpoints: bool = typer.Option(False, help="Also save the adapter after each whole epoch (out/epoch-N)"),
    init_adapter: Path | None = typer.Option(
        None, help="Continue from the adapter and head in this folder (a new warm-up and decay) instead of fresh ones"
    ),
    learning_rate: float = typer.Option(TrainConfig.learning_rate, help="Peak learning rate of the LoRA matrices"),
    head_learning_rate: float = typer.Option(TrainConfig.head_learning_rate, help="Peak learning rate of the head"),
    questions: str | None = typer.Option(
        None,
        help='Training questions per set as JSON, e.g. \'{"abstracts": null, "tydiqa-id": 300}\' (null: all; a set '
        "left out: none). Default: every public set's train split, all questions",
    ),
    bf16: bool | None = typer.Option(
        None,
        "--bf16/--fp32",
        help="Matrix products in bfloat16 or float32 (default: bf16 where the CPU has it natively, AVX512-BF16 or "
        "AMX; emulated bf16 on an AVX2-only CPU was about 10x slower than float32)",
    ),
) -> None:
    """Train the LoRA adapter and head, calibrate on the valid splits, write ``out``.

    The valid sets are indexed and retrieved with the product's settings (``TANYA_*``: encoders,
    chunker, candidate passages), so the calibration matches what the answerer reads. The training
    state is saved every few steps in ``work_dir/resume``: run the same command again after an
    interruption and it continues from there.
    """
    from service.config import load_settings

    config = TrainConfig(
        seed=seed, threads=threads, epochs=epochs, checkpoints=checkpoints, learning_rate=learning_rate,
        head_learning_rate=head_learning_rate, init_adapter=None if init_adapter is None else str(init_adapter),
        bf16=native_bf16() if bf16 is None else bf16,
    )
    if questions is not None:
        config = replace(config, questions=_question_caps(questions))
    settings = load_settings()
    columns = (
        TextColumn("{task.description:<22}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TimeRemainingColumn(),
    )
    if not bar_console().is_terminal:
        result = train(config, data, out, settings, work_dir, plain)
        _report(result, out)
        return
    with Progress(*columns, console=bar_console()) as bar:
        tasks: dict[str, object] = {}

        def progress(stage: str, done: int, total: int, detail: str) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, detail="")
            bar.update(tasks[stage], completed=done, detail=detail)  # type: ignore[arg-type]

        result = train(config, data, out, settings, work_dir, progress)
    _report(result, out)


@app.command("calibrate")
def calibrate_command(
    data: Path = typer.Option(Path("../shared/eval-data"), help="The eval-data folder (its valid splits)"),
    model_dir: Path = typer.Option(MODEL_DIR, help="The trained reader to calibrate again (its spec and card are rewritten)"),
    work_dir: Path = typer.Option(Path("var/train-reranker"), help="Where the valid sets' calibration indexes are kept"),
) -> None:
    """Calibrate a trained reader again on the valid splits (the adapter is not touched)."""
    from service.config import load_settings

    result = recalibrate(model_dir, data, load_settings(), work_dir, plain)
    typer.echo(json.dumps(result["valid_pool_metrics"], indent=2))
    typer.echo(f"calibrated in {result['recalibrated_seconds']} s; files in {model_dir}")


def _question_caps(raw: str) -> dict[str, int | None]:
    """``--questions``: a JSON object of set name → count (``null``: all)."""
    try:
        caps = json.loads(raw)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}") from exc
    if not isinstance(caps, dict) or not all(v is None or (isinstance(v, int) and v >= 0) for v in caps.values()):
        raise typer.BadParameter('expected an object of set name to a count or null, e.g. {"abstracts": null}')
    return {str(k): v for k, v in caps.items()}


def _report(result: dict[str, object], out: Path) -> None:
    typer.echo(json.dumps(result["valid_pool_metrics"], indent=2))
    typer.echo(f"trained in {result['train_seconds']} s, {result['total_seconds']} s in all; files in {out}")


if __name__ == "__main__":
    app()
