"""``augkit audit`` (any folder of synthetic images) and ``augkit locate`` (the file behind a sample key)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.logging import RichHandler

from augkit.cli.app import app, err, fail, key_values, output_folder, plugin_class, validated
from augkit.config.defaults import DEFAULT_PLUGINS


@app.command()
def audit(
    synthetic: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="synthetic images, one folder per class")],
    reference: Annotated[Path, typer.Option("--reference", exists=True, file_okay=False,
                                            help="the generator's training images, one folder per class")],
    holdout: Annotated[Optional[Path], typer.Option("--holdout", exists=True, file_okay=False,
                                                    help="real images the generator never saw, one folder per class")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="parent folder of audit folders")] = Path("audits"),
    image_size: Annotated[int, typer.Option(min=16, help="side every image is resized to")] = 112,
    channels: Annotated[int, typer.Option(help="1 (grayscale) or 3")] = 1,
    features: Annotated[str, typer.Option(help="feature extractor plugin (see `augkit plugins`)")] = DEFAULT_PLUGINS[
        "feature_extractor"],
    feature_option: Annotated[Optional[list[str]], typer.Option(
        "--feature-option", help="feature extractor option KEY=VALUE (repeatable), e.g. weights=inception.pth")] = None,
    preprocessor_option: Annotated[Optional[list[str]], typer.Option(
        "--preprocessor-option", help=f"option of the `{DEFAULT_PLUGINS['preprocessor']}` preprocessor KEY=VALUE (repeatable); "
        "default: resize and normalise only (crop=false, denoise=false)")] = None,
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
    from augkit.outputs.run_folder import RunFolder
    from augkit.outputs.run_report import ratio_text

    if launched():
        fail("augkit audit runs in one process: start it without torchrun")
    if channels not in (1, 3):
        fail(f"--channels {channels}: must be 1 or 3")
    if not 0 < copy_quantile < 0.5 or not 0 < copy_margin <= 1:
        fail(f"--copy-quantile must be in (0, 0.5) and --copy-margin in (0, 1]; got {copy_quantile}, {copy_margin}")
    logging.getLogger("augkit").addHandler(RichHandler(console=err, show_path=False, show_time=False))
    from augkit.extension.registry import get_plugin_manager

    registry = get_plugin_manager()
    prep_name = DEFAULT_PLUGINS["preprocessor"]
    prep_cls = plugin_class(registry, "preprocessor", prep_name)
    prep = prep_cls(validated(prep_cls, "preprocessor", prep_name, "--preprocessor-option", {
        "crop": False, "denoise": False, **key_values("--preprocessor-option", preprocessor_option or []),
        "image_size": image_size, "channels": channels}))
    feature_options = key_values("--feature-option", feature_option or [])
    extractor_cls = plugin_class(registry, "feature_extractor", features)
    if extractor_cls.classifier_fields:  # it trains a classifier: give it the image shape
        name_field, options_field = extractor_cls.classifier_fields
        classifier = feature_options.get(name_field) or DEFAULT_PLUGINS["classifier"]
        classifier_cls = plugin_class(registry, "classifier", classifier)
        shared = {k: v for k, v in (("image_size", image_size), ("channels", channels))
                  if k in classifier_cls.Options.model_fields}
        feature_options[options_field] = {**shared, **(feature_options.get(options_field) or {})}
    extractor = extractor_cls(validated(extractor_cls, "feature_extractor", features, "--feature-option",
                                         feature_options, registry=registry))
    out_dir = RunFolder.new(output_folder(out), "audit").path
    settings = A.AuditSettings(copy_quantile=copy_quantile, copy_margin=copy_margin, seed=seed)
    try:
        summary = A.audit_folders(synthetic, reference, holdout, out_dir, extractor=extractor, prep=prep,
                                  settings=settings, progress=rich_progress(err), registry=registry)
    except BaseException as exc:
        if out_dir.is_dir() and not any(out_dir.iterdir()):  # an audit that wrote nothing leaves no folder
            out_dir.rmdir()
        if isinstance(exc, ValueError):
            fail(str(exc))
        raise
    mem = summary["memorisation"]
    c_t = mem["data_copying"].get("c_t")
    err.print(f"near copies: {mem['near_copies']} of {summary['sizes']['synthetic']}; "
              f"data-copying C_T: {mem['data_copying'].get('note', 'not computed') if c_t is None else f'{c_t:.2f}'}; "
              + (f"label faithfulness: {100 * summary['faithfulness']['overall']:.0f}%" if summary["faithfulness"] else ""),
              highlight=False)
    err.print("intra-class diversity (MS-SSIM), x real (95% interval over the synthetic images): "
              + ", ".join(f"{c} {ratio_text(f)}" for c, f in summary["diversity"]["per_class"].items()),
              highlight=False)
    from augkit.audit.folders import folder_warnings

    for warning in folder_warnings(summary):
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
        fail(str(exc))
    if not found:
        fail(f"no file under {root} has the key {key!r} (keys made on another machine or account differ: see "
              "docs/privacy.md)")
    for path in found:
        print(path)
