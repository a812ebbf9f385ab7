"""Terminal rendering for the CLI: answers, passages and progress bars (rich, on a terminal only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.console import Console
from rich.text import Text

from service.qa.types import Answer, Passage

#: ``update(done, total)``, as the indexer and the benchmark runners call it.
#: ``update(done, total)`` or ``update(done, total, detail)``: the detail is shown after the rate.
ProgressUpdate = Callable[..., None]


def stderr_console() -> Console:
    """A console on stderr (progress and messages; stdout stays for results)."""
    return Console(stderr=True, highlight=False)


def progress_bar(label: str, enabled: bool = True, transient: bool = False) -> tuple[ProgressUpdate | None, Callable[[], None]]:
    """A progress bar with counts and ETA on stderr: ``(update, stop)``.

    Only on a terminal (``update`` is ``None`` otherwise, so pipes and logs stay clean). A
    ``transient`` bar clears itself when it reaches its total.
    """
    console = stderr_console()
    if not enabled or not console.is_terminal:
        return None, lambda: None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )

    class Rate(ProgressColumn):
        """Items per second (embedding throughput is what a long indexing run is judged by)."""

        def render(self, task: Task) -> Text:
            return Text(f"{task.speed:,.1f}/s" if task.speed else "", style="progress.data.speed")

    bar = Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), Rate(), TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(), console=console, transient=transient,
    )
    task = bar.add_task(label, total=None, detail="")
    bar.start()

    def update(done: int, total: int, detail: str = "") -> None:
        bar.update(task, completed=done, total=total, detail=detail)
        if transient and done >= total:
            bar.stop()

    return update, bar.stop


def _highlighted(passage_text: str, start: int, end: int, offset: int) -> Text:
    text = Text(passage_text)
    text.stylize("bold yellow", start - offset, end - offset)
    return text


def print_answer(answer: Answer) -> None:
    """The answer, then its numbered sources with the supporting sentence highlighted."""
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


def print_passages(passages: Sequence[Passage]) -> None:
    """Ranked passages with their score and rank under each signal."""
    console = Console(highlight=False)
    if not passages:
        console.print("No passage matches.")
    for rank, p in enumerate(passages, start=1):
        ranks = ", ".join(f"{k} #{v}" if v else f"{k} -" for k, v in p.ranks.items())
        console.print(Text(f"{rank}. {p.title} [{p.chunk_id}] score {p.score:.4f} ({ranks})", style="cyan"))
        console.print(Text(p.text))
        console.print()
