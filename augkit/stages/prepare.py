"""Stage: read and preprocess the data (cached), split it by patient, record what was read.

Under torchrun rank 0 goes first (and fills the cache); the other ranks then read the cache.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from augkit.compute import distributed
from augkit.config.recipe import ResolvedRecipe
from augkit.extension.names import path_free
from augkit.extension.roles import DataSource, LabeledImages, Preprocessor
from augkit.outputs import report
from augkit.outputs.progress import Progress
from augkit.outputs.run_folder import RunFolder
from augkit.stages import data as D
from augkit.stages import splits as S

log = logging.getLogger("augkit")


def load_data(resolved: ResolvedRecipe, source: DataSource, prep: Preprocessor, out: Path, progress: Progress
              ) -> D.Loaded:
    """Preprocess the recipe's data, or read it from the cache (default ``<out>/.cache``)."""
    recipe = resolved.recipe
    here = distributed.world()
    if not here.main:
        distributed.barrier()
    loaded = D.load_and_preprocess(
        source, prep, source_name=recipe.dataset.name, prep_name=recipe.preprocessor.name,
        cache_dir=recipe.cache_dir or out / ".cache", progress=progress, strict=recipe.strict, workers=recipe.workers,
    )
    if here.main:
        distributed.barrier()
    return loaded


def split_data(resolved: ResolvedRecipe, loaded: D.Loaded) -> tuple[dict[str, LabeledImages], S.Split]:
    """Train / val / test, stratified by class and grouped by patient (``split.mode``)."""
    recipe, full = resolved.recipe, loaded.data
    if recipe.split.mode == "source":
        split = S.split_keeping_source_test(
            full.labels.tolist(), full.groups, loaded.sources, val=recipe.split.val, seed=recipe.seed
        )
    else:
        split = S.split_by_patient(
            full.labels.tolist(), full.groups, val=recipe.split.val, test=recipe.split.test, seed=recipe.seed
        )
    return {name: full.subset(getattr(split, name)) for name in ("train", "val", "test")}, split


def fingerprint(data: LabeledImages) -> str:
    """SHA-256 of the preprocessed images and their labels, in order: any file added, removed, changed or
    reordered changes it (and would move images between the splits that ``splits.json`` records)."""
    h = hashlib.sha256()
    h.update(data.labels.numpy().astype("<i8").tobytes())
    h.update(data.images.contiguous().numpy().astype("<f4").tobytes())
    return h.hexdigest()


def check_fingerprint(run: RunFolder, data: LabeledImages, action: str) -> None:
    """Refuse (``DataError``) to reuse ``run``'s split on data that is not the data the run was made with."""
    made = run.read_json(RunFolder.DATA) or {}
    recorded = made.get("fingerprint")
    if recorded is None:
        log.warning("%s has no data fingerprint (made by an older augkit): the data cannot be checked", run.path.name)
        return
    if recorded != fingerprint(data):
        raise D.DataError(
            f"cannot {action}: the data is not what {run.path.name} was made with ({made.get('images')} images then, "
            f"{len(data)} now, "
            "or the same count with other images or labels). Its splits.json would put other images in the test "
            "split, some of them ones the generator trained on. Restore the data as it was, or start a new run")


def prepare(resolved: ResolvedRecipe, folder: RunFolder, out: Path, progress: Progress, *, resume: bool = False
            ) -> dict[str, LabeledImages]:
    """Load, preprocess and split; write the preview, skipped.csv, data.json and splits.json. Returns the splits.

    ``resume``: ``folder`` is an interrupted run's, and the data must be the data it was made with.
    """
    recipe = resolved.recipe
    source, prep = resolved.build("dataset"), resolved.build("preprocessor")
    if recipe.preview and folder.writer and not resume:
        write_preview(source, prep, recipe.preview, folder.file(RunFolder.PREVIEW))
    loaded = load_data(resolved, source, prep, out, progress)
    if resume:
        check_fingerprint(folder, loaded.data, f"resume {folder.path.name}")
    if loaded.skipped:
        folder.write_csv(RunFolder.SKIPPED, [{"sample": k, "reason": r} for k, r in loaded.skipped])
    if loaded.dropped_classes:
        folder.warn(f"left out class{'es' if len(loaded.dropped_classes) > 1 else ''} "
                    f"{', '.join(loaded.dropped_classes)}: no usable image (the models learn {', '.join(loaded.data.classes)})")
    if note := D.blank_note(loaded):
        folder.warn(note)
    parts, split = split_data(resolved, loaded)
    folder.write_json(RunFolder.DATA, data_summary(loaded.data, parts, loaded))
    folder.write_json(RunFolder.SPLITS, {k: getattr(split, k).tolist() for k in ("train", "val", "test")})
    return parts


def data_summary(full: LabeledImages, splits: dict[str, LabeledImages], loaded: D.Loaded) -> dict:
    return {
        "classes": full.classes,
        "images": len(full),
        "fingerprint": fingerprint(full),
        "skipped": len(loaded.skipped),
        "blank": len(loaded.blank),
        "cache_hit": loaded.cache_hit,
        "splits": {
            name: {"images": len(s), "patients": len(set(s.groups or [])), "per_class": dict(zip(s.classes, s.counts()))}
            for name, s in splits.items()
        },
    }


def write_preview(source: DataSource, prep: Preprocessor, n: int, path: Path) -> None:
    """Raw images beside their preprocessed form, spread over the classes, to check the crop."""
    samples = list(source.samples())
    by_class = [[x for x in samples if x.label == c] for c in range(len(source.classes))]
    per_class = -(-n // max(sum(1 for c in by_class if c), 1))
    pairs = []
    for candidates in by_class:
        shown = 0
        for s in candidates[: 4 * per_class]:  # the first readable ones: bad files are reported by the preprocessing
            if shown == per_class or len(pairs) == n:
                break
            try:
                raw = s.load()
                pairs.append((raw, prep(raw), f"{source.classes[s.label]}"))
                shown += 1
            except Exception as exc:
                log.info("preview: %s not shown (%s)", s.key, path_free(str(exc)))
    report.before_after(pairs, path)
