"""The ``augkit`` command line: run, validate, plugins."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Class-conditional GAN augmentation, measured.")
err = Console(stderr=True)

RecipeArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="recipe YAML file")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="override a recipe value: KEY.PATH=VALUE (repeatable), e.g. generator.options.iterations=200"),
]


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


def _load(recipe: Path, overrides: list[str] | None):
    from augkit.plugins import PluginError
    from augkit.recipe import RecipeError, load_recipe

    try:
        return load_recipe(recipe, overrides or [])
    except (RecipeError, PluginError) as exc:
        _fail(str(exc))


@app.command()
def run(
    recipe: RecipeArg,
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="parent folder of run folders")] = Path("runs"),
    set_: SetOpt = None,
) -> None:
    """Run a recipe end to end into a new run folder; print the folder's path last."""
    from augkit.data import DataError
    from augkit.progress import rich_progress
    from augkit.report import results_table
    from augkit.runner import run as run_recipe

    resolved = _load(recipe, set_)
    logging.getLogger("augkit").addHandler(RichHandler(console=err, show_path=False, show_time=False))
    try:
        run_dir = run_recipe(resolved, out, progress=rich_progress(err))
    except DataError as exc:
        _fail(str(exc))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    err.print()
    err.print(results_table(metrics), highlight=False)
    err.print()
    typer.echo(str(run_dir))


@app.command()
def validate(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Validate a recipe, plugin options included, without running anything."""
    resolved = _load(recipe, set_)
    names = ", ".join(f"{s}={getattr(resolved.recipe, s).name}" for s in resolved.plugins)
    typer.echo(f"{recipe}: valid ({names})")


@app.command()
def plugins(as_json: Annotated[bool, typer.Option("--json", help="print a JSON list")] = False) -> None:
    """List every installed plugin: role, name, distribution, version."""
    from augkit.plugins import get_plugin_manager

    registry = get_plugin_manager()
    rows = [info.as_dict() for info in registry.all()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        table = Table("role", "name", "distribution", "version")
        for row in rows:
            table.add_row(*row.values())
        Console().print(table)
    for name, error in sorted(registry.failures.items()):
        err.print(f"[yellow]warning:[/] plugin {name!r} failed to load: {error}", highlight=False)


def main() -> None:
    app()
