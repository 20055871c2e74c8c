"""``augkit validate``, ``plugins`` and ``reference``: what a recipe resolves to and what is installed."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from augkit.cli.app import RecipeArg, SetOpt, app, err, fail, load


@app.command()
def validate(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Validate a recipe, plugin options included, without running anything."""
    resolved = load(recipe, set_)
    names = ", ".join(f"{s}={getattr(resolved.recipe, s).name}" for s in resolved.plugins)
    typer.echo(f"{recipe}: valid ({names})")


@app.command()
def plugins(as_json: Annotated[bool, typer.Option(
        "--json", help="print a JSON list (a plugin that failed to load: role null, with its error)")] = False) -> None:
    """List every installed plugin: role, name, distribution, version."""
    from augkit.extension.registry import PluginError, get_plugin_manager

    try:
        registry = get_plugin_manager()
    except PluginError as exc:  # two plugins claiming one name: what this command is run to find out
        fail(str(exc))
    rows = [info.as_dict() for info in registry.all()]
    if as_json:
        failed = [{"role": None, "name": name, "distribution": None, "version": None, "error": error}
                  for name, error in sorted(registry.failures.items())]
        typer.echo(json.dumps([{**row, "error": None} for row in rows] + failed, indent=2))
    else:
        table = Table("role", "name", "distribution", "version")
        for row in rows:
            table.add_row(*row.values())
        Console().print(table)
    for name, error in sorted(registry.failures.items()):
        err.print(f"[yellow]warning:[/] plugin {name!r} failed to load: {error}", highlight=False)


@app.command(name="reference")
def reference_(
    all_plugins: Annotated[bool, typer.Option("--all", help="include third-party plugins")] = False,
) -> None:
    """Print the recipe reference (Markdown), generated from the recipe's and plugins' schemas."""
    from augkit.config.reference import reference

    typer.echo(reference(distribution=None if all_plugins else "augkit"), nl=False)
