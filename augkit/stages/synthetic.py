"""Stage: sample the synthetic pool every regime draws from, audit it, export it with its manifest.

Generation is batch after batch (constant memory) and seeded per batch: batch b is generated
with seed ``seed * 1_000_003 + b``, recorded in the manifest, so (checkpoint, seed, index)
reproduces every image. Under torchrun the ranks share the generation (every rank gets every
batch); rank 0 alone audits, exports and draws the grids.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml

from augkit.compute import distributed
from augkit.config.defaults import DEFAULT_PLUGINS
from augkit.config.recipe import Recipe, ResolvedRecipe, load_recipe
from augkit.extension.names import check_class_name
from augkit.extension.registry import Registry, get_plugin_manager
from augkit.extension.roles import Exporter, Generator, LabeledImages
from augkit.outputs import report, run_report
from augkit.outputs.files import sha256_file
from augkit.outputs.progress import Progress, no_progress
from augkit.outputs.run_folder import RunFolder
from augkit.stages import screening, study
from augkit.stages.batches import generate_batches, pool_of
from augkit.stages.generator import CheckpointError, load_generator

log = logging.getLogger("augkit")


def pool_plan(recipe: Recipe, train: LabeledImages) -> tuple[dict[str, list[int]], torch.Tensor]:
    """What each regime needs per class, and the labels of the synthetic pool that covers them all."""
    needs = study.recipe_needs(recipe, train)
    counts = study.pool_counts(needs, len(train.classes))
    return needs, torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in enumerate(counts)])


def provenance(generator_name: str, generator: Generator, checkpoint: Path, recipe: dict[str, Any] | None
               ) -> dict[str, Any]:
    """What the manifest records of where the images came from; ``recipe``: the run's resolved recipe, if known."""
    out = {
        "generator": generator_name,
        "generator_version": generator.version,
        "checkpoint_sha256": sha256_file(checkpoint),
    }
    if recipe is not None:
        out["recipe_sha256"] = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    out["classes"] = list(generator.classes)  # label order: classes.json beside the manifest
    return out


def sample_synthetic(resolved: ResolvedRecipe, generator: Generator, checkpoint: Path, train: LabeledImages,
                     val: LabeledImages, folder: RunFolder, progress: Progress):
    """Sample, audit (augkit.stages.screening) and export the pool. Returns (pool, needs, the audit's classifier or None).

    The audit's classifier is (a Classifier trained on the real training split, its training rows):
    the study reuses it as its real, first-seed run.
    """
    recipe = resolved.recipe
    here = distributed.world()
    needs, labels = pool_plan(recipe, train)
    counts = torch.bincount(labels, minlength=len(train.classes)).tolist()
    batches = list(generate_batches(generator, labels, seed=recipe.seed, batch_size=recipe.synthetic.batch_size,
                                    progress=progress, shard=True, shape=train.image_shape))
    classifier = None
    if recipe.audit.enabled:
        batches, classifier = screening.audit_pool(resolved, generator, batches, train, val, folder, progress)
    pool = pool_of(batches, train)
    if not here.main:
        return pool, needs, classifier

    shutil.rmtree(folder.file(RunFolder.SYNTHETIC), ignore_errors=True)  # a resumed run's partial export
    resolved.build("exporter").export(iter(batches), train.classes, folder.file(RunFolder.SYNTHETIC),
                                      provenance(recipe.generator.name, generator, checkpoint, resolved.to_dict()))
    samples = folder.file(RunFolder.SAMPLES)
    report.class_grids(pool.images, pool.labels, pool.classes, samples)
    report.class_grids(train.images, train.labels, train.classes, samples, prefix="real_")
    log.info("sampled %d synthetic images (%s per class)", len(pool), ", ".join(map(str, pool.counts())))
    if pool.counts() != counts:
        folder.warn(f"the synthetic pool holds {pool.counts()} images per class instead of {counts}: the audit "
                    "dropped more than replacements could make up; regimes take what there is")
    return pool, needs, classifier


def regenerate_pool(resolved: ResolvedRecipe, generator: Generator, run: RunFolder, train: LabeledImages,
                    val: LabeledImages, folder: RunFolder, progress: Progress, *, original: Recipe | None = None,
                    changed: dict | None = None) -> tuple[LabeledImages, dict[str, list[int]]]:
    """A finished run's pool generated again, plus what a larger evaluation needs.

    The run's own pool first, exactly as the run made it (its audited set when it has one: same
    batches, same images kept); then, when ``resolved`` (the run's recipe with an evaluation's
    overrides) needs more images of a class than that, new batches whose seeds follow the run's
    last one, audited like the run's when the recipe audits (``audit.json`` and ``audit/`` of the
    evaluation folder then describe these extra images). ``synthetic_seeds.json`` in ``folder``
    records which batch seeds the pool holds. ``original``: the recipe ``run``'s generator was trained and
    sampled with (default: ``run``'s recipe.yaml, without the evaluation's overrides). ``changed``: generator
    options the evaluation changed (``generator`` was loaded with them): the run's images are then not
    the generator's any more, so the pool the evaluation needs is sampled anew (batch seeds from the run's
    first, in the evaluation's counts) and audited.
    """
    recipe = resolved.recipe
    needs, _ = pool_plan(recipe, train)
    if original is None:
        original = load_recipe(run.file(RunFolder.RECIPE), registry=resolved.registry).recipe
    if changed:
        log.info("generator options changed from the run's (%s): the synthetic images are sampled again",
                 run_report.options_text(changed))
        batches = []
    elif run.exists(RunFolder.FLAGS):
        from augkit import audit  # the audit's maths only when there is an audited set to read

        batches = audit.regenerate(generator, run.file(RunFolder.FLAGS), train.classes, progress=progress)
    else:
        _, labels = pool_plan(original, train)
        batches = list(generate_batches(generator, labels, seed=original.seed, batch_size=original.synthetic.batch_size,
                                        progress=progress, shard=True, shape=train.image_shape))
    have = pool_of(batches, train).counts()
    short = [max(w - h, 0) for w, h in zip(study.pool_counts(needs, len(train.classes)), have)]
    record = {"run": {"images": sum(have), "batch_seeds": sorted({b.seed for b in batches})},
              **({"generator_options_changed": changed} if changed else {})}
    if sum(short):
        base = original.seed * 1_000_003
        first = max((b.seed - base for b in batches), default=-1) + 1
        labels = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in enumerate(short)])
        extra = list(generate_batches(generator, labels, seed=original.seed, batch_size=recipe.synthetic.batch_size,
                                      progress=progress, first=first, shard=True, shape=train.image_shape))
        if batches:
            log.info("the evaluation needs %s more synthetic images per class than the run exported: generated with "
                     "batch seeds from %d", short, base + first)
        if recipe.audit.enabled:
            extra, _ = screening.audit_pool(resolved, generator, extra, train, val, folder, progress, first=first)
        record["extra"] = {"images": sum(len(b.labels) for b in extra), "per_class": short,
                           "batch_seeds": sorted({b.seed for b in extra}), "audited": recipe.audit.enabled}
        batches += extra
    folder.write_json(RunFolder.SYNTHETIC_SEEDS, record)
    return pool_of(batches, train), needs


def load_checkpoint(checkpoint: Path, generator: str | None = None, registry: Registry | None = None
                    ) -> tuple[str, Generator]:
    """(generator name, generator) from a checkpoint; the name defaults to the one in its run's recipe.yaml.

    Raises ``PluginError`` for an unknown name, ``ValueError`` naming the checkpoint when it does not load.
    """
    recipe = _run_recipe(checkpoint)
    guessed = generator is None and not ((recipe or {}).get("generator") or {}).get("name")
    if generator is None:
        generator = ((recipe or {}).get("generator") or {}).get("name") or DEFAULT_PLUGINS["generator"]
    cls = (registry or get_plugin_manager()).get("generator", generator)
    try:
        loaded = load_generator(cls, checkpoint, generator)
    except CheckpointError as exc:
        if not guessed:
            raise
        raise CheckpointError(f"{exc}. It is not in a run folder whose recipe.yaml names its generator, so the default "
                              f"{generator!r} was tried: give the generator that made it with --generator NAME "
                              "(`augkit plugins` lists them)") from exc
    for name in loaded.classes:  # they name the folders augkit generate writes
        check_class_name(name, f"{checkpoint.name}: class")
    return generator, loaded


def export_generated(name: str, generator: Generator, checkpoint: Path, class_name: str, n: int, out: Path,
                     exporter: Exporter, *, seed: int = 0, batch_size: int = 64, progress: Progress = no_progress
                     ) -> Path | None:
    """``n`` images of one class, streamed to ``out`` (see :func:`check_new_folder`) with a manifest; returns its path.

    Under torchrun every rank calls this: the processes share the batches and rank 0 writes them
    (the same files and manifest as one process); the other ranks return None.
    """
    classes = list(generator.classes)
    if class_name not in classes:
        raise ValueError(f"--class {class_name!r} is not a class of this checkpoint; classes: {', '.join(classes)}")
    labels = torch.full((n,), classes.index(class_name), dtype=torch.long)
    batches = generate_batches(generator, labels, seed=seed, batch_size=batch_size, shard=True, progress=progress)
    if not distributed.world().main:
        for _ in batches:  # this rank's share of the generation; rank 0 writes every batch
            pass
        return None
    manifest = exporter.export(batches, classes, out, provenance(name, generator, checkpoint, _run_recipe(checkpoint)))
    from augkit.outputs import card

    run = Path(checkpoint).resolve().parent.parent
    known = (run / RunFolder.RECIPE).is_file()
    card.for_export(Path(out), run if known else None, note=None if not known else (
        "New samples of a checkpoint of an augkit run: the training data, audit and study below describe that "
        "run's own synthetic set, sampled from the checkpoint the run used; audit these images themselves with "
        "`augkit audit` before sharing them."))
    return manifest


def check_new_folder(out: Path) -> None:
    """Refuse a folder that holds anything: augkit never overwrites earlier output (checked before any rank writes)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty; give a new folder (augkit never overwrites earlier output)")


def generate_from_checkpoint(checkpoint: Path, class_name: str, n: int, out: Path, *, seed: int = 0,
                             batch_size: int = 64, generator: str | None = None, exporter: str | None = None,
                             exporter_options: dict[str, Any] | None = None, registry: Registry | None = None,
                             progress: Progress = no_progress) -> Path:
    """What ``augkit generate`` does, from Python: load, generate, export; returns the manifest's path."""
    check_new_folder(out)
    registry = registry or get_plugin_manager()
    exporter_cls = registry.get("exporter", exporter or DEFAULT_PLUGINS["exporter"])
    sink = exporter_cls(exporter_cls.Options.model_validate(exporter_options or {}))
    name, gen = load_checkpoint(Path(checkpoint), generator, registry)
    return export_generated(name, gen, Path(checkpoint), class_name, n, out, sink, seed=seed, batch_size=batch_size,
                            progress=progress)


def _run_recipe(checkpoint: Path) -> dict[str, Any] | None:
    """The resolved recipe of the run a checkpoint belongs to (``<run>/checkpoints/<name>.pt``), if any."""
    path = Path(checkpoint).resolve().parent.parent / RunFolder.RECIPE
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
