"""The ``augkit`` command line: run, resume, evaluate, generate, validate, plugins."""

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
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
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
    err.print(results_table(metrics), highlight=False, soft_wrap=True)
    err.print()
    typer.echo(str(run_dir))


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="an interrupted run's folder")],
) -> None:
    """Continue an interrupted run in its own folder, from its last generator checkpoint."""
    from augkit.progress import rich_progress
    from augkit.report import results_table
    from augkit.runner import run as run_recipe

    recipe = run_dir / "recipe.yaml"
    if not recipe.is_file():
        _fail(f"{run_dir} has no recipe.yaml: is it an augkit run folder?")
    if (run_dir / "metrics.json").exists():
        _fail(f"{run_dir} already finished (metrics.json exists); start a new run with `augkit run {recipe}`")
    resolved = _load(recipe, [])
    logging.getLogger("augkit").addHandler(RichHandler(console=err, show_path=False, show_time=False))
    run_recipe(resolved, run_dir.parent, progress=rich_progress(err), resume=run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    err.print(results_table(metrics), highlight=False, soft_wrap=True)
    typer.echo(str(run_dir))


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="a finished run's folder")],
    seeds: Annotated[Optional[int], typer.Option(min=1, help="classifier seeds per regime")] = None,
    regimes: Annotated[Optional[str], typer.Option(help="comma-separated, e.g. real,fake+real,real+classic")] = None,
    ratios: Annotated[Optional[str], typer.Option(help="comma-separated synthetic:real ratios, e.g. 0.5,1,2,4")] = None,
    set_: SetOpt = None,
) -> None:
    """Re-run the classifier study on a run's split and generator, without retraining the generator."""
    from augkit.data import DataError
    from augkit.progress import rich_progress
    from augkit.recipe import RecipeError
    from augkit.report import results_table
    from augkit.runner import evaluate_run

    if not (run_dir / "splits.json").is_file() or not (run_dir / "checkpoints").is_dir():
        _fail(f"{run_dir} has no splits.json or checkpoints/: give the folder of a run that trained its generator")
    overrides = list(set_ or [])
    if seeds is not None:
        overrides.append(f"evaluation.seeds={seeds}")
    if regimes is not None:
        overrides.append(f"evaluation.regimes=[{regimes}]")
    if ratios is not None:
        overrides.append(f"evaluation.ratios=[{ratios}]")
    logging.getLogger("augkit").addHandler(RichHandler(console=err, show_path=False, show_time=False))
    try:
        out = evaluate_run(run_dir, overrides, progress=rich_progress(err))
    except (RecipeError, DataError) as exc:
        _fail(str(exc))
    err.print(results_table(json.loads((out / "metrics.json").read_text())), highlight=False, soft_wrap=True)
    typer.echo(str(out))


@app.command()
def generate(
    checkpoint: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a generator checkpoint (.pt)")],
    class_name: Annotated[str, typer.Option("--class", "-c", help="class to generate")],
    n: Annotated[int, typer.Option("-n", min=1, help="number of images")],
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="new or empty folder for the images")],
    seed: Annotated[int, typer.Option(min=0, help="same seed, same images")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="images per batch")] = 64,
    generator: Annotated[
        Optional[str], typer.Option(help="generator plugin; default: the one in the run's recipe.yaml, else acgan")
    ] = None,
    exporter: Annotated[str, typer.Option(help="exporter plugin")] = "png",
) -> None:
    """Generate images of one class from a checkpoint, streamed to disk with a manifest."""
    import torch

    from augkit.plugins import PluginError, get_plugin_manager
    from augkit.progress import rich_progress
    from augkit.runner import generate_batches, sha256_file

    if out.exists() and any(out.iterdir()):
        _fail(f"{out} is not empty; give a new folder (augkit never overwrites earlier output)")
    run_recipe = checkpoint.parent.parent / "recipe.yaml"
    if generator is None:
        generator = "acgan"
        if run_recipe.is_file():
            import yaml

            generator = (yaml.safe_load(run_recipe.read_text()) or {}).get("generator", {}).get("name", "acgan")
    registry = get_plugin_manager()
    try:
        gen = registry.get("generator", generator).load(checkpoint)
        exp = registry.get("exporter", exporter)()
    except PluginError as exc:
        _fail(str(exc))
    except Exception as exc:
        _fail(f"{checkpoint}: cannot be loaded by the {generator!r} generator: {exc}")
    classes = list(getattr(gen, "classes", None) or [])
    if class_name not in classes:
        _fail(f"--class {class_name!r} is not a class of this checkpoint; classes: {', '.join(classes)}")
    labels = torch.full((n,), classes.index(class_name), dtype=torch.long)
    provenance = {
        "generator": generator,
        "generator_version": getattr(gen, "version", "0"),
        "checkpoint_sha256": sha256_file(checkpoint),
    }
    batches = generate_batches(gen, labels, seed=seed, batch_size=batch_size, progress=rich_progress(err))
    manifest = exp.export(batches, classes, out, provenance)
    typer.echo(str(manifest))


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


@app.command(name="reference")
def reference_(
    all_plugins: Annotated[bool, typer.Option("--all", help="include third-party plugins")] = False,
) -> None:
    """Print the recipe reference (Markdown), generated from the recipe's and plugins' schemas."""
    from augkit.reference import reference

    typer.echo(reference(distribution=None if all_plugins else "augkit"), nl=False)


def main() -> None:
    app()
