"""The ``augkit`` command line: run, resume, evaluate, generate, audit, validate, plugins."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
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
    from augkit.extension.registry import PluginError
    from augkit.config.recipe import RecipeError, load_recipe

    try:
        return load_recipe(recipe, overrides or [])
    except (RecipeError, PluginError) as exc:
        _fail(str(exc))


@contextmanager
def _ranks(device=None):
    """Under torchrun (WORLD_SIZE > 1): this command's process group; a failing rank names itself.

    ``device``: where the command trains (nccl for CUDA, gloo for CPUs). A single process passes
    through untouched.
    """
    import torch

    from augkit.compute import distributed

    try:
        here = distributed.init(device or torch.device("cpu"))
    except distributed.DistributedError as exc:
        _fail(str(exc))
    try:
        yield here
    except typer.Exit:
        raise
    except distributed.DistributedError as exc:
        _fail(f"rank {here.rank} of {here.size}: {exc}" if here.size > 1 else str(exc))
    except Exception as exc:
        if here.size > 1:  # then stop without leaving the group: a peer may be stuck in a collective
            err.print(f"[bold red]error:[/] augkit: {distributed.failure(exc, here)}", highlight=False, soft_wrap=True)
        raise
    if here.size > 1:
        distributed.close()


def _device(resolved):
    """The device the recipe's generator trains on (it picks the process group's backend)."""
    import torch

    try:
        return getattr(resolved.build("generator"), "device", torch.device("cpu"))
    except RuntimeError as exc:  # e.g. device: cuda without a GPU
        _fail(str(exc))


def _rank0_output(here) -> None:
    """Log lines and progress bars come from rank 0 only."""
    if here.main:
        logging.getLogger("augkit").addHandler(RichHandler(console=err, show_path=False, show_time=False))


@app.command()
def run(
    recipe: RecipeArg,
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="parent folder of run folders")] = Path("runs"),
    set_: SetOpt = None,
) -> None:
    """Run a recipe end to end into a new run folder; print the folder's path last."""
    from augkit.stages.data import DataError
    from augkit.outputs.progress import no_progress, rich_progress
    from augkit.outputs.report import results_table
    from augkit.runner import run as run_recipe

    resolved = _load(recipe, set_)
    with _ranks(_device(resolved)) as here:
        _rank0_output(here)
        try:
            run_dir = run_recipe(resolved, out, progress=rich_progress(err) if here.main else no_progress)
        except DataError as exc:
            _fail(str(exc))
    if not here.main:
        return
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
    from augkit.outputs.progress import no_progress, rich_progress
    from augkit.outputs.report import results_table
    from augkit.runner import run as run_recipe

    recipe = run_dir / "recipe.yaml"
    if not recipe.is_file():
        _fail(f"{run_dir} has no recipe.yaml: is it an augkit run folder?")
    if (run_dir / "metrics.json").exists():
        _fail(f"{run_dir} already finished (metrics.json exists); start a new run with `augkit run {recipe}`")
    resolved = _load(recipe, [])
    with _ranks(_device(resolved)) as here:
        _rank0_output(here)
        run_recipe(resolved, run_dir.parent, progress=rich_progress(err) if here.main else no_progress, resume=run_dir)
    if not here.main:
        return
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
    from augkit.stages.data import DataError
    from augkit.outputs.progress import no_progress, rich_progress
    from augkit.config.recipe import RecipeError
    from augkit.outputs.report import results_table
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
    with _ranks(_device(_load(run_dir / "recipe.yaml", overrides))) as here:
        _rank0_output(here)
        try:
            out = evaluate_run(run_dir, overrides, progress=rich_progress(err) if here.main else no_progress)
        except (RecipeError, DataError) as exc:
            _fail(str(exc))
    if not here.main:
        return
    err.print(results_table(json.loads((out / "metrics.json").read_text())), highlight=False, soft_wrap=True)
    typer.echo(str(out))


def _exporter_options(cls, name: str, assignments: list[str]):
    """``--exporter-option KEY=VALUE`` pairs, validated by the exporter's own Options (as a recipe's would be)."""
    return _validated(cls, "exporter", name, "--exporter-option", _key_values("--exporter-option", assignments))


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
    exporter_option: Annotated[
        Optional[list[str]],
        typer.Option(
            "--exporter-option",
            help="an exporter option KEY=VALUE (repeatable; VALUE read as YAML, as with --set), e.g. body_part=CHEST",
        ),
    ] = None,
) -> None:
    """Generate images of one class from a checkpoint, streamed to disk with a manifest.

    Under torchrun the processes share the batches and rank 0 writes them: the same files and
    manifest as one process.
    """
    import torch

    from augkit.extension.registry import PluginError, get_plugin_manager
    from augkit.outputs.progress import no_progress, rich_progress
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
        exporter_cls = registry.get("exporter", exporter)
    except PluginError as exc:
        _fail(str(exc))
    exp = exporter_cls(_exporter_options(exporter_cls, exporter, exporter_option or []))
    try:
        gen = registry.get("generator", generator).load(checkpoint)
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
        "classes": classes,
    }
    run_recipe = checkpoint.resolve().parent.parent / "recipe.yaml"  # <run>/checkpoints/<name>.pt
    if run_recipe.is_file():  # the same recipe hash as the run's own export
        import hashlib

        import yaml

        resolved = yaml.safe_load(run_recipe.read_text(encoding="utf-8"))
        provenance["recipe_sha256"] = hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()
    with _ranks(getattr(gen, "device", None)) as here:
        batches = generate_batches(gen, labels, seed=seed, batch_size=batch_size, shard=True,
                                   progress=rich_progress(err) if here.main else no_progress)
        if not here.main:
            for _ in batches:  # this rank's share of the generation; rank 0 writes every batch
                pass
            return
        manifest = exp.export(batches, classes, out, provenance)
    typer.echo(str(manifest))


def _key_values(flag: str, assignments: list[str]) -> dict:
    """``KEY=VALUE`` pairs (values parsed as YAML) into a mapping; a malformed pair fails naming the flag."""
    import yaml

    raw = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            _fail(f"{flag} {assignment!r}: expected KEY=VALUE")
        try:
            raw[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            _fail(f"{flag} {assignment!r}: the value is not valid YAML: {exc}")
    return raw


def _validated(cls, role: str, name: str, flag: str, options: dict):
    """``cls.Options`` from ``options``; errors name the flag, the key and the plugin's allowed options."""
    from pydantic import ValidationError

    try:
        return cls.Options.model_validate(options)
    except ValidationError as exc:
        allowed = ", ".join(cls.Options.model_fields) or "none"
        _fail("; ".join(
            f"{flag} {'.'.join(map(str, e['loc'])) or '(all)'}: "
            + (f"the {name!r} {role} has no such option (its options: {allowed})" if e["type"] == "extra_forbidden"
               else f"{e['msg']} (got {e.get('input')!r})")
            for e in exc.errors()))


def _plugin_class(registry, role: str, name: str):
    """A registered plugin class; an unknown name fails with the installed ones and close matches."""
    from augkit.extension.registry import PluginError

    try:
        return registry.get(role, name)
    except PluginError as exc:
        _fail(str(exc))


@app.command()
def audit(
    synthetic: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="synthetic images, one folder per class")],
    reference: Annotated[Path, typer.Option("--reference", exists=True, file_okay=False,
                                            help="the generator's training images, one folder per class")],
    holdout: Annotated[Optional[Path], typer.Option("--holdout", exists=True, file_okay=False,
                                                    help="real images the generator never saw, one folder per class")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="parent folder of audit folders")] = Path("audits"),
    image_size: Annotated[int, typer.Option(help="side every image is resized to")] = 112,
    channels: Annotated[int, typer.Option(help="1 (grayscale) or 3")] = 1,
    features: Annotated[str, typer.Option(help="feature extractor plugin (see `augkit plugins`)")] = "real-classifier",
    feature_option: Annotated[Optional[list[str]], typer.Option(
        "--feature-option", help="feature extractor option KEY=VALUE (repeatable), e.g. weights=inception.pth")] = None,
    preprocessor_option: Annotated[Optional[list[str]], typer.Option(
        "--preprocessor-option", help="option of the `paper` preprocessor KEY=VALUE (repeatable); default: resize and "
        "normalise only (crop=false, denoise=false)")] = None,
    copy_quantile: Annotated[float, typer.Option(help="near-copy threshold: quantile of held-out distances")] = 0.01,
    copy_margin: Annotated[float, typer.Option(help="... times this margin")] = 0.5,
    seed: Annotated[int, typer.Option(help="seeds subsets and the feature extractor's training")] = 0,
) -> None:
    """Audit any folder of synthetic images: fidelity vs real-vs-real floors, label faithfulness, near copies.

    Works on images from any tool. Writes a new folder under --out with audit.json, audit/flags.csv
    (one row per synthetic file), the closest pairs, report.md and report.html; prints its path last.
    """
    from augkit import audit as A
    from augkit.compute.distributed import launched
    from augkit.outputs.progress import rich_progress
    from augkit.runner import new_run_dir

    if launched():
        _fail("augkit audit runs in one process: start it without torchrun")
    if channels not in (1, 3):
        _fail(f"--channels {channels}: must be 1 or 3")
    if not 0 < copy_quantile < 0.5 or not 0 < copy_margin <= 1:
        _fail(f"--copy-quantile must be in (0, 0.5) and --copy-margin in (0, 1]; got {copy_quantile}, {copy_margin}")
    logging.getLogger("augkit").addHandler(RichHandler(console=err, show_path=False, show_time=False))
    from augkit.extension.registry import get_plugin_manager

    registry = get_plugin_manager()
    paper = _plugin_class(registry, "preprocessor", "paper")
    prep = paper(_validated(paper, "preprocessor", "paper", "--preprocessor-option", {
        "crop": False, "denoise": False, **_key_values("--preprocessor-option", preprocessor_option or []),
        "image_size": image_size, "channels": channels}))
    feature_options = _key_values("--feature-option", feature_option or [])
    extractor_cls = _plugin_class(registry, "feature_extractor", features)
    if "classifier_options" in extractor_cls.Options.model_fields:  # it trains a classifier: give it the image shape
        classifier_cls = _plugin_class(registry, "classifier", feature_options.get("classifier") or "efficientnetv2")
        shared = {k: v for k, v in (("image_size", image_size), ("channels", channels))
                  if k in classifier_cls.Options.model_fields}
        feature_options["classifier_options"] = {**shared, **(feature_options.get("classifier_options") or {})}
    extractor = extractor_cls(_validated(extractor_cls, "feature_extractor", features, "--feature-option",
                                         feature_options))
    out_dir = new_run_dir(out, "audit")
    settings = A.AuditSettings(copy_quantile=copy_quantile, copy_margin=copy_margin, seed=seed)
    try:
        summary = A.audit_folders(synthetic, reference, holdout, out_dir, extractor=extractor, prep=prep,
                                  settings=settings, progress=rich_progress(err))
    except ValueError as exc:
        _fail(str(exc))
    mem = summary["memorisation"]
    err.print(f"near copies: {mem['near_copies']} of {summary['sizes']['synthetic']}; "
              f"data-copying C_T: {mem['data_copying'].get('c_t')}; "
              + (f"label faithfulness: {100 * summary['faithfulness']['overall']:.0f}%" if summary["faithfulness"] else ""),
              highlight=False)
    for warning in A.warnings_for(summary):
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    print(out_dir)


@app.command()
def locate(
    key: Annotated[str, typer.Argument(help="a sample key from skipped.csv or a log, e.g. virus/3f2a9c01b7de")],
    root: Annotated[Path, typer.Option("--root", exists=True, file_okay=False, help="the data source's root folder")],
) -> None:
    """Find the file behind a sample key. Keys are keyed hashes of file paths: only this machine's user can do this."""
    from augkit.extension.keys import locate as find

    try:
        found = find(key, root)
    except ValueError as exc:
        _fail(str(exc))
    if not found:
        _fail(f"no file under {root} has the key {key!r} (keys made on another machine or account differ: see "
              "docs/privacy.md)")
    for path in found:
        print(path)


@app.command()
def validate(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Validate a recipe, plugin options included, without running anything."""
    resolved = _load(recipe, set_)
    names = ", ".join(f"{s}={getattr(resolved.recipe, s).name}" for s in resolved.plugins)
    typer.echo(f"{recipe}: valid ({names})")


@app.command()
def plugins(as_json: Annotated[bool, typer.Option("--json", help="print a JSON list")] = False) -> None:
    """List every installed plugin: role, name, distribution, version."""
    from augkit.extension.registry import get_plugin_manager

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
    from augkit.config.reference import reference

    typer.echo(reference(distribution=None if all_plugins else "augkit"), nl=False)


def main() -> None:
    try:
        app()
    except SystemExit as exc:  # typer ends every command this way
        from augkit.compute import distributed

        if distributed.launched():  # one of several processes: skip the C++ teardown that can abort
            distributed.exit_now(exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1))
        raise
