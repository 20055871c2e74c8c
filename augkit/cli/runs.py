"""``augkit run``, ``resume`` and ``evaluate``: a recipe end to end, an interrupted run, a finished run's study again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from augkit.cli.app import RecipeArg, SetOpt, app, device_of, err, fail, load, rank0_output, ranks
from augkit.outputs.run_folder import RunFolder


@app.command()
def run(
    recipe: RecipeArg,
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="parent folder of run folders")] = Path("runs"),
    set_: SetOpt = None,
) -> None:
    """Run a recipe end to end into a new run folder; print the folder's path last."""
    from augkit.extension.sampling import GeneratorOutputError
    from augkit.outputs.run_folder import FolderInUse, OutputFolderError
    from augkit.stages.data import DataError
    from augkit.outputs.progress import no_progress, rich_progress
    from augkit.runner import run as run_recipe

    resolved = load(recipe, set_)
    with ranks(device_of(resolved)) as here:
        rank0_output(here)
        try:
            run_dir = run_recipe(resolved, out, progress=rich_progress(err) if here.main else no_progress)
        except (DataError, FolderInUse, OutputFolderError, GeneratorOutputError) as exc:
            fail(str(exc))
    if not here.main:
        return
    show_results(run_dir, spaced=True)


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="an interrupted run's folder")],
) -> None:
    """Continue an interrupted run in its own folder, from its last generator checkpoint."""
    from augkit.outputs.progress import no_progress, rich_progress
    from augkit.runner import run as run_recipe

    folder = RunFolder(run_dir)
    recipe = folder.file(RunFolder.RECIPE)
    if not recipe.is_file():
        fail(f"{run_dir} has no recipe.yaml: is it an augkit run folder?")
    if folder.exists(RunFolder.METRICS):
        fail(f"{run_dir} already finished (metrics.json exists); start a new run with `augkit run {recipe}`")
    from augkit.outputs.run_folder import FolderInUse
    from augkit.stages.data import DataError
    from augkit.extension.sampling import GeneratorOutputError
    from augkit.stages.generator import CheckpointError

    resolved = load(recipe, [])
    with ranks(device_of(resolved)) as here:
        rank0_output(here)
        try:
            run_recipe(resolved, run_dir.parent, progress=rich_progress(err) if here.main else no_progress,
                       resume=run_dir)
        except (DataError, FolderInUse, CheckpointError, GeneratorOutputError) as exc:
            fail(str(exc))
    if not here.main:
        return
    show_results(run_dir)


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="a finished run's folder")],
    seeds: Annotated[Optional[int], typer.Option(min=1, help="classifier seeds per regime")] = None,
    regimes: Annotated[Optional[str], typer.Option(help="comma-separated, e.g. real,fake+real,real+classic")] = None,
    ratios: Annotated[Optional[str], typer.Option(help="comma-separated synthetic:real ratios, e.g. 0.5,1,2,4")] = None,
    set_: SetOpt = None,
) -> None:
    """Re-run the classifier study on a run's split and generator, without retraining the generator."""
    from augkit.stages.data import DataError
    from augkit.outputs.progress import no_progress, rich_progress
    from augkit.config.recipe import RecipeError
    from augkit.extension.sampling import GeneratorOutputError
    from augkit.runner import evaluate_run
    from augkit.stages.generator import CheckpointError

    folder = RunFolder(run_dir)
    if not folder.file(RunFolder.SPLITS).is_file() or not folder.file(RunFolder.CHECKPOINTS).is_dir():
        fail(f"{run_dir} has no splits.json or checkpoints/: give the folder of a run that trained its generator")
    overrides = list(set_ or [])
    if seeds is not None:
        overrides.append(f"evaluation.seeds={seeds}")
    if regimes is not None:
        overrides.append(f"evaluation.regimes=[{regimes}]")
    if ratios is not None:
        overrides.append(f"evaluation.ratios=[{ratios}]")
    with ranks(device_of(load(folder.file(RunFolder.RECIPE), overrides))) as here:
        rank0_output(here)
        try:
            out = evaluate_run(run_dir, overrides, progress=rich_progress(err) if here.main else no_progress)
        except (RecipeError, DataError, CheckpointError, GeneratorOutputError) as exc:
            fail(str(exc))
    if not here.main:
        return
    show_results(out)


def show_results(run_dir: Path, *, spaced: bool = False) -> None:
    """The results table and the verdict on stderr, then the folder's path on stdout (last, for scripts)."""
    from augkit.outputs.report import results_table, verdict_lines

    metrics = RunFolder(run_dir).read_json(RunFolder.METRICS)
    if spaced:
        err.print()
    err.print(results_table(metrics), highlight=False, soft_wrap=True)
    err.print()
    for line in verdict_lines(metrics):  # the headline answer, last before the path
        err.print(line, highlight=False, markup=False, soft_wrap=True)
    if spaced:
        err.print()
    typer.echo(str(run_dir))
