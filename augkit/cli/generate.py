"""``augkit generate``: images of one class from a checkpoint, with a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from augkit.cli.app import app, err, fail, key_values, output_folder, plugin_class, ranks, validated
from augkit.config.defaults import DEFAULT_PLUGINS


@app.command()
def generate(
    checkpoint: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a generator checkpoint (.pt)")],
    class_name: Annotated[str, typer.Option("--class", "-c", help="class to generate")],
    n: Annotated[int, typer.Option("-n", min=1, help="number of images")],
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="new or empty folder for the images")],
    seed: Annotated[int, typer.Option(min=0, help="same seed, same images")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="images per batch")] = 64,
    generator: Annotated[
        Optional[str], typer.Option(help="generator plugin; default: the one in the run's recipe.yaml, else "
                                    f"{DEFAULT_PLUGINS['generator']}")
    ] = None,
    exporter: Annotated[str, typer.Option(help="exporter plugin")] = DEFAULT_PLUGINS["exporter"],
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
    from augkit.extension.registry import PluginError, get_plugin_manager
    from augkit.extension.sampling import GeneratorOutputError
    from augkit.outputs.progress import no_progress, rich_progress
    from augkit.stages.synthetic import check_new_folder, export_generated, load_checkpoint

    try:
        check_new_folder(out)
    except ValueError as exc:
        fail(str(exc))
    registry = get_plugin_manager()
    exporter_cls = plugin_class(registry, "exporter", exporter)
    sink = exporter_cls(validated(exporter_cls, "exporter", exporter, "--exporter-option",
                                  key_values("--exporter-option", exporter_option or []), registry=registry))
    try:
        name, gen = load_checkpoint(checkpoint, generator, registry)
    except (PluginError, ValueError) as exc:
        fail(str(exc))
    if class_name not in gen.classes:
        fail(f"--class {class_name!r} is not a class of this checkpoint; classes: {', '.join(gen.classes)}")
    output_folder(out)
    with ranks(gen.device) as here:
        try:
            manifest = export_generated(name, gen, checkpoint, class_name, n, out, sink, seed=seed,
                                        batch_size=batch_size, progress=rich_progress(err) if here.main else no_progress)
        except GeneratorOutputError as exc:
            fail(str(exc))
    if here.main:
        typer.echo(str(manifest))
