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


# the numbers that matter most, first: a narrow terminal shows the first one or two that fit
_FIRST = ("d_loss", "g_loss", "train_loss", "val_loss", "val_acc", "loss")


def _postfix(row: object, budget: int = 80) -> str:
    """The row's numbers as ``key value``, the most telling first, as many as fit in ``budget`` characters."""
    if not isinstance(row, dict):
        return ""
    numbers = {k: v for k, v in row.items() if k not in ("step", "epoch") and isinstance(v, float)}
    order = [k for k in _FIRST if k in numbers] + [k for k in numbers if k not in _FIRST]
    shown: list[str] = []
    for k in order[:4]:
        part = f"{k} {numbers[k]:.3g}"
        if len("  ".join([*shown, part])) > budget:
            break
        shown.append(part)
    return "  ".join(shown)


def layout(width: int, description: str, total: int | None) -> tuple[bool, int, int]:
    """(show the elapsed time, bar width, characters left for the numbers) at a terminal ``width``.

    Everything but the numbers has a fixed width, so nothing is ever cut to an ellipsis: the
    description whole, step / total, time left; the bar and the elapsed time give way first.
    """
    steps = len(str(total)) * 2 + 1 if total else 8
    fixed = len(description) + 1 + steps + 1 + len("eta") + 1 + 7 + 1  # ... eta 0:00:00
    elapsed = width >= fixed + 8 + 40
    fixed += 8 if elapsed else 0
    bar = max(6, min(24, width - fixed - 34))
    return elapsed, bar, max(0, width - fixed - bar - 2)


def rich_progress(console=None) -> Progress:
    """A renderer drawing one rich progress bar (with ETA) per wrapped loop.

    When the loop yields log rows (dicts), their latest values are shown beside the bar, the most
    telling first and as many as the terminal's width leaves room for (:func:`layout`).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn
    from rich.progress import TimeElapsedColumn, TimeRemainingColumn

    from rich.console import Console

    out = console or Console(stderr=True)

    def render(iterable: Iterable[T], description: str = "", total: int | None = None) -> Iterator[T]:
        elapsed, width, budget = layout(out.width, description, total)
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=width),
            MofNCompleteColumn(),
            *((TimeElapsedColumn(),) if elapsed else ()),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[postfix]}"),
        )
        with RichProgress(*columns, console=out, transient=False) as bar:
            task = bar.add_task(description, total=total, postfix="")
            for item in iterable:
                yield item
                numbers = _postfix(item, budget)  # a row without numbers (an end) keeps the last ones shown
                if isinstance(item, dict) and "step" in item:  # training rows say where they are
                    bar.update(task, completed=item["step"], **({"postfix": numbers} if numbers else {}))
                else:
                    bar.update(task, advance=1, **({"postfix": numbers} if numbers else {}))
            done = int(next(t for t in bar.tasks if t.id == task).completed)
            if total and 0 < done < total:  # ended before its total (early stopping): a finished bar, not a cut one
                bar.update(task, total=done, postfix=f"stopped at {done} of {total}")

    return render
