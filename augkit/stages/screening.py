"""Stage: screen every synthetic image before it is exported or used (augkit.audit).

Near copies of training images and images the real-trained classifier assigns to another class
are flagged; the recipe may drop them, and replacements are generated. The held-out real images
are the validation split: the test split stays out of every choice. Writes ``audit.json`` and
``audit/`` (flags.csv, closest_pairs.png, distances.png).
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from augkit import audit as A
from augkit.compute import distributed
from augkit.config.recipe import ResolvedRecipe
from augkit.extension.roles import FeatureExtractor, Generator, LabeledImages, SyntheticBatch
from augkit.outputs.progress import Progress
from augkit.outputs.run_folder import RunFolder
from augkit.stages import reuse, side_by_side, study
from augkit.stages.batches import generate_batches

log = logging.getLogger("augkit")


def audit_pool(resolved: ResolvedRecipe, generator: Generator, batches: list[SyntheticBatch], train: LabeledImages,
               val: LabeledImages, folder: RunFolder, progress: Progress, *, first: int = 0):
    """Audit the pool (rank 0; the others receive what it kept). Returns (kept batches, (classifier, rows) or None).

    The feature extractor trains over every rank when the study trains its classifiers so
    (``ddp``), else on rank 0 alone. ``first``: the batch index of ``batches[0]`` (replacements follow
    the last batch, so no batch seed is used twice).
    """
    recipe = resolved.recipe
    here = distributed.world()
    extractor, rows, classifier = resolved.build("feature_extractor"), None, None
    if _fits_together(resolved, extractor, here.size):
        log.info("audit: the feature extractor trains over all %d processes (DDP)", here.size)
        rows = list(progress(extractor.fit(train, val, seed=recipe.seed), "audit: feature extractor", extractor.total_steps))
    if here.main:  # alone: the others wait for the audited batches
        with distributed.alone():
            batches, classifier = audit_synthetic(resolved, generator, batches, train, val, folder, progress,
                                                  extractor=extractor, rows=rows, first=first)
    elif rows is not None:  # trained together: every rank holds the study's real, first-seed classifier
        trained = extractor.trained_classifier
        classifier = None if trained is None else (trained, rows)
    return distributed.broadcast(batches if here.main else None), classifier


def _fits_together(resolved, extractor, world_size: int) -> bool:
    """Whether the audit's feature extractor trains over every process: when the study trains its
    classifiers so (``ddp``) and the extractor can, with its options; otherwise rank 0 fits it alone."""
    if world_size == 1 or not extractor.supports_distributed:
        return False
    if study.study_mode(resolved, world_size) != "ddp":
        return False
    try:
        extractor.check_distributed(world_size)
    except distributed.DistributedError as exc:
        log.info("audit: the feature extractor trains on rank 0 alone: %s", exc)
        return False
    return True


def audit_synthetic(resolved: ResolvedRecipe, generator: Generator, batches: list[SyntheticBatch],
                    train: LabeledImages, val: LabeledImages, folder: RunFolder, progress: Progress, *,
                    max_rounds: int = 5, extractor: FeatureExtractor | None = None, rows: list | None = None,
                    first: int = 0) -> tuple[list[SyntheticBatch], object]:
    """Screen every synthetic image (near copies, unfaithful labels); drop and replace as the recipe asks.

    ``extractor``: the recipe's feature extractor, fitted already when ``rows`` (its training
    rows) is given; otherwise it is built and fitted here. Writes ``audit.json`` and ``audit/``
    (flags.csv, closest_pairs.png, distances.png). The held-out real images are the validation
    split: the test split stays out of every choice.
    """
    recipe = resolved.recipe
    spec = recipe.audit
    extractor = extractor or resolved.build("feature_extractor")
    if rows is None:
        build = getattr(extractor.options, "build_classifier", None)  # a classifier the study may reuse
        with side_by_side.threads(None if build is None else reuse.audit_threads(resolved, build())):
            rows = list(progress(extractor.fit(train, val, seed=recipe.seed), "audit: feature extractor", extractor.total_steps))
    settings = A.AuditSettings(k=spec.k, repeats=spec.repeats, copy_quantile=spec.copy_quantile,
                               copy_margin=spec.copy_margin, seed=recipe.seed)
    auditor = A.Auditor(extractor, train, val, settings)
    drop = {f for f, on in (("near_copy", spec.drop_copies), ("unfaithful", spec.drop_unfaithful)) if on}
    target = torch.bincount(torch.cat([b.labels for b in batches]), minlength=len(train.classes)) if batches else None
    screens, feats, kept, all_images, ids = [], [], [], [], []
    dropped = {"near_copy": 0, "unfaithful": 0, "replacements_generated": 0}
    todo, rounds, next_batch = batches, 0, first + len(batches)
    while todo:
        for b in progress(todo, "audit: screen", len(todo)):
            screen, f = auditor.screen(b.images, b.labels)
            screens.append(screen)
            feats.append(f)
            all_images.append(b.images)
            ids += [(b.seed, i) for i in b.index]
            keep = [not (set(fl) & drop) for fl in screen.flags]
            for fl in screen.flags:
                for name in set(fl) & drop:
                    dropped[name] += 1
            idx = torch.tensor(keep, dtype=torch.bool)
            kept.append(SyntheticBatch(b.images[idx], b.labels[idx], b.seed,
                                       [i for i, k in zip(b.index, keep) if k],
                                       [fl for fl, k in zip(screen.flags, keep) if k]))
        have = torch.bincount(torch.cat([b.labels for b in kept]), minlength=len(train.classes))
        short = (target - have).clamp_min(0)
        rounds += 1
        if not drop or short.sum() == 0 or rounds > max_rounds:
            break
        labels = torch.cat([torch.full((int(n),), c, dtype=torch.long) for c, n in enumerate(short.tolist())])
        todo = list(generate_batches(generator, labels, seed=recipe.seed, batch_size=recipe.synthetic.batch_size,
                                     first=next_batch, shape=train.image_shape))
        next_batch += len(todo)
        dropped["replacements_generated"] += len(labels)
    if drop:  # keep the planned count per class: replacements can overshoot a class
        kept = _trim(kept, target)

    screen, syn_feats, images = A.Screen.concat(screens), torch.cat(feats), torch.cat(all_images)
    summary = auditor.summary(screen, syn_feats, dropped=dropped if drop else None, images=images)
    folder.folder(RunFolder.AUDIT_DIR)
    folder.write_json(RunFolder.AUDIT, summary)
    exported = {(b.seed, i) for b in kept for i in b.index}
    A.write_flags(screen, train.classes, [{"seed": sd, "index": i, "exported": int((sd, i) in exported)} for sd, i in ids],
                  folder.file(RunFolder.FLAGS))
    A.plot_closest_pairs(images, screen, train.images, folder.file(RunFolder.CLOSEST_PAIRS), n=spec.pairs,
                         classes=train.classes)
    A.plot_distances(screen, auditor, folder.file(RunFolder.DISTANCES))
    for warning in A.warnings_for(summary):
        folder.warn(warning)
    _board_audit(folder, summary)
    c_t = summary["memorisation"]["data_copying"].get("c_t")
    log.info("audit: %d near copies, faithfulness %s, C_T %s", summary["memorisation"]["near_copies"],
             "n/a" if not summary["faithfulness"] else f"{summary['faithfulness']['overall']:.2f}",
             "n/a" if c_t is None else f"{c_t:.2f}")
    classifier = extractor.trained_classifier
    return kept, (None if classifier is None else (classifier, rows))


def _trim(batches: list[SyntheticBatch], target: Tensor) -> list[SyntheticBatch]:
    left = target.clone()
    out = []
    for b in batches:
        keep = []
        for y in b.labels.tolist():
            keep.append(bool(left[y] > 0))
            left[y] -= 1
        idx = torch.tensor(keep, dtype=torch.bool)
        out.append(SyntheticBatch(b.images[idx], b.labels[idx], b.seed, [i for i, k in zip(b.index, keep) if k],
                                  [f for f, k in zip(b.flags, keep) if k]))
    return [b for b in out if len(b.labels)]




def _board_audit(folder: RunFolder, summary: dict) -> None:
    """The audit's headline figures in TensorBoard: fidelity against the floors, near copies, faithfulness."""
    board = folder.board()
    blocks = {"all": summary.get("fidelity", {}).get("overall", {}), **summary.get("fidelity", {}).get("per_class", {})}
    for name, block in blocks.items():
        for side in ("synthetic", "real_floor"):
            if side in block:
                board.scalars(f"audit/{name}/{side}", {k: v["mean"] for k, v in block[side].items()}, 0)
    memorisation = summary.get("memorisation", {})
    faithfulness = summary.get("faithfulness") or {}
    for name, figures in (summary.get("diversity") or {}).get("per_class", {}).items():
        board.scalars(f"audit/{name}/ms_ssim_diversity", {k: figures[k] for k in ("synthetic", "real", "ratio")}, 0)
    board.scalars("audit", {"near_copies": memorisation.get("near_copies"),
                            "faithfulness": faithfulness.get("overall")}, 0)
