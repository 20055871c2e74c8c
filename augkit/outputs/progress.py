"""Progress renderers: library code wraps long loops with one, and never touches rich itself.

A renderer is ``progress(iterable, description, total) -> iterable``. ``no_progress`` is the
no-op used by tests and library callers; the CLI passes :func:`rich_progress`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

Progress = Callable[[Iterable[T], str, "int | None"], Iterable[T]]


def no_progress(iterable: Iterable[T], description: str = "", total: int | None = None) -> Iterable[T]:
    return iterable


def _postfix(row: object) -> str:
    if not isinstance(row, dict):
        return ""
    shown = [f"{k} {v:.3g}" for k, v in row.items() if k not in ("step", "epoch") and isinstance(v, float)]
    return "  ".join(shown[:4])


def rich_progress(console=None) -> Progress:
    """A renderer drawing one rich progress bar (with ETA) per wrapped loop.

    When the loop yields log rows (dicts), their latest values are shown beside the bar.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn
    from rich.progress import TimeElapsedColumn, TimeRemainingColumn

    def render(iterable: Iterable[T], description: str = "", total: int | None = None) -> Iterator[T]:
        columns = (
            TextColumn("[bold]{task.description:<16}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[postfix]}"),
        )
        with RichProgress(*columns, console=console, transient=False) as bar:
            task = bar.add_task(description, total=total, postfix="")
            for item in iterable:
                yield item
                if isinstance(item, dict) and "step" in item:  # training rows say where they are
                    bar.update(task, completed=item["step"], postfix=_postfix(item))
                else:
                    bar.update(task, advance=1, postfix=_postfix(item))

    return render
