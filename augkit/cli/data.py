"""``augkit data``: look before you train: what augkit makes of a recipe's data, in seconds."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from augkit.cli.app import RecipeArg, SetOpt, app, err, fail, load, output_folder


class _Collect(logging.Handler):
    """The warnings augkit logs while the data is read and split: those a run would give."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith("skipped "):  # each skipped file is listed with its reason already
            self.messages.append(message)


def inspect(resolved, out: Path, progress, preview: Path | None) -> dict:
    """Load and preprocess (filling the cache a run reuses), split; the summary ``augkit data`` prints."""
    from augkit.outputs import comparisons
    from augkit.outputs.progress import no_progress
    from augkit.stages import prepare
    from augkit.stages.data import DataError, blank_note

    recipe = resolved.recipe
    source, prep = resolved.build("dataset"), resolved.build("preprocessor")
    collect = _Collect()
    logger = logging.getLogger("augkit")
    logger.addHandler(collect)
    try:
        loaded = prepare.load_data(resolved, source, prep, out, progress or no_progress)
        parts, _ = prepare.split_data(resolved, loaded)
        if preview is not None:
            prepare.write_preview(source, prep, max(recipe.preview, 8), preview)
    except DataError as exc:  # what was said on the way often says why (a label_map folder not under root)
        said = list(dict.fromkeys(collect.messages))
        if not said:
            raise
        raise DataError("\n".join([str(exc), "warnings before it:", *(f"  {m}" for m in said)])) from exc
    finally:
        logger.removeHandler(collect)
    summary = prepare.data_summary(loaded.data, parts, loaded)
    summary.pop("fingerprint", None)
    warnings = list(dict.fromkeys(collect.messages))
    warnings += [f"left out class {c}: no usable image" for c in loaded.dropped_classes]
    warnings += [note] if (note := blank_note(loaded)) else []
    test = parts["test"]
    metrics = {"regimes": {}}
    warnings += comparisons.reviewer_warnings(metrics, test.counts(), test.classes)
    for name, split in parts.items():
        for c, n in zip(split.classes, split.counts()):
            if name == "train" and n < 20:
                warnings.append(f"class {c} has {n} training images: a generator learns little from so few "
                                "(docs/small_data.md)")
    return {**summary, "skipped_files": [{"sample": k, "reason": r} for k, r in loaded.skipped],
            "warnings": warnings, "cache": str(loaded.cache_path.name) if loaded.cache_path else None,
            "preview": None if preview is None else str(preview)}


@app.command()
def data(
    recipe: RecipeArg,
    set_: SetOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False,
                                      help="the folder runs go to: its .cache is filled for them")] = Path("runs"),
    preview: Annotated[Path | None, typer.Option(help="write raw beside preprocessed images here (PNG); default: "
                                                      "<out>/<name>-preview.png; --no-preview: none")] = None,
    no_preview: Annotated[bool, typer.Option("--no-preview", help="write no preview")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Load and preprocess only: images per class and split, patients, skipped files, the warnings a run would give."""
    from augkit.outputs.progress import no_progress, rich_progress
    from augkit.stages.data import DataError

    resolved = load(recipe, set_)
    name = resolved.recipe.name or "run"
    output_folder(out)  # its .cache is filled, preview or not
    if preview is not None and not no_preview:
        if preview.exists():
            fail(f"--preview {preview} exists: augkit writes only new files; name a new .png file")
        if preview.suffix.lower() != ".png":
            fail(f"--preview {preview}: name a .png file (the preview is a PNG image)")
        output_folder(preview.parent, "--preview's folder")
    if not no_preview and preview is None:
        preview = next(p for k in range(1, 1000)
                       if not (p := out / (f"{name}-preview" + (f"-{k}" if k > 1 else "") + ".png")).exists())
    try:
        summary = inspect(resolved, out, no_progress if as_json else rich_progress(err),
                          None if no_preview else preview)
    except DataError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    console = Console()
    classes = summary["classes"]
    table = Table("split", "images", "patients", *classes, title=f"{summary['images']} images, {len(classes)} classes")
    for split, s in summary["splits"].items():
        table.add_row(split, str(s["images"]), str(s["patients"]), *(str(s["per_class"][c]) for c in classes))
    console.print(table)
    skipped = summary["skipped_files"]
    console.print(f"Skipped files: {len(skipped)}" + (" (sample key: reason; `augkit locate KEY --root DIR` finds "
                                                        "the file)" if skipped else ""), highlight=False, soft_wrap=True)
    for row in skipped:
        console.print(f"  {row['sample']}: {row['reason']}", highlight=False, markup=False, soft_wrap=True)
    console.print(f"Warnings: {len(summary['warnings'])}", highlight=False)
    for warning in summary["warnings"]:
        console.print(f"  {warning}", highlight=False, markup=False, soft_wrap=True)
    if summary["preview"]:
        console.print(f"Preview (raw beside preprocessed): {summary['preview']}", highlight=False, markup=False, soft_wrap=True)
