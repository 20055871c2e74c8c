"""``augkit audit``: audit folders of synthetic images (from augkit or any other tool) against real ones.

Each folder is a class-per-folder tree, read through the folder dataset plugin
(``augkit.config.defaults.FOLDER_DATASET``); the command writes the same audit a run does
(``audit.json``, ``audit/``) and a report of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from augkit.audit.auditor import AuditSettings, Auditor, warnings_for, write_flags
from augkit.audit.plots import plot_closest_pairs, plot_distances
from augkit.config.defaults import FOLDER_DATASET
from augkit.extension.names import path_free
from augkit.extension.registry import Registry, get_plugin_manager
from augkit.extension.roles import FeatureExtractor, LabeledImages
from augkit.outputs import report, run_report
from augkit.outputs.progress import no_progress
from augkit.outputs.run_folder import RunFolder
from augkit.stages.data import is_blank, like_the_others, prepare_one


def _read_folder(root: Path, prep, *, reveal: bool, progress, registry: Registry
                 ) -> tuple[LabeledImages, list[str], list[tuple[str, str]], list[str]]:
    """Every image of a class-per-folder tree, preprocessed as a run's data is (NaN, a shape of its own: skipped
    with the reason); returns (images, keys, skipped, keys of blank images)."""
    source = registry.get("dataset", FOLDER_DATASET)(root=root, reveal_file_names=reveal)
    classes, images, labels, keys, skipped, blank = source.classes, [], [], [], [], []
    samples = list(source.samples())
    for sample in progress(samples, f"read {root.name}", len(samples)):
        image, problem = like_the_others(*prepare_one(sample, prep), images)  # one bad image must not stop the audit
        if image is None:
            skipped.append((sample.key, problem))
            continue
        if is_blank(image):
            blank.append(sample.key)
        images.append(torch.from_numpy(image))
        labels.append(sample.label)
        keys.append(sample.key)
    if not images:
        raise ValueError(f"{root}: no readable images" + (f" ({skipped[0][1]})" if skipped else ""))
    return LabeledImages(torch.stack(images), torch.tensor(labels, dtype=torch.long), classes), keys, skipped, blank


def _keyed(skipped: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"sample": key, "reason": path_free(reason)} for key, reason in skipped]


def blank_note(summary: dict) -> str | None:
    """One sentence on the images that are blank (one value in every pixel), or None."""
    blank = {what: keys for what, keys in (summary.get("blank") or {}).items() if keys}
    if not blank:
        return None
    return ("blank images (one value in every pixel), audited as they are: "
            + "; ".join(f"{len(keys)} {'held-out' if what == 'heldout' else what} ({', '.join(keys[:5])}"
                        f"{' ...' if len(keys) > 5 else ''})" for what, keys in blank.items())
            + ". A blank image is usually a failed acquisition or export: remove the file (reference and held-out "
            "ones by key: `augkit locate KEY --root DIR`)")


def folder_warnings(summary: dict) -> list[str]:
    """What ``augkit audit`` warns of, on the console and in its report."""
    return warnings_for(summary, "folders") + [note for note in (skipped_note(summary), blank_note(summary)) if note]


def skipped_note(summary: dict) -> str | None:
    """One sentence on the files the audit could not read, or None."""
    skipped = summary.get("skipped") or {}
    counts = {what: len(files) for what, files in skipped.items()}
    if not any(counts.values()):
        return None
    names = {"heldout": "held-out"}
    return ("unreadable files skipped: " + ", ".join(f"{n} {names.get(what, what)}" for what, n in counts.items() if n)
            + " (listed in audit.json: reference and held-out ones by sample key, `augkit locate KEY --root DIR`)")


def _grids(syn: LabeledImages, ref: LabeledImages, folder: RunFolder, per_class: int = 8) -> list:
    """Up to ``per_class`` synthetic and reference images of each class, a row a class: the figures beside what they
    measure (a class read as collapsed, or as varied, can be checked by eye)."""
    def first(data: LabeledImages) -> torch.Tensor:
        rows = [data.images[data.labels == c][:per_class] for c in range(len(ref.classes))]
        pad = torch.ones(1, *data.images.shape[1:])  # white where a class has fewer images: rows stay classes
        return torch.cat([torch.cat([r, pad.expand(per_class - len(r), *pad.shape[1:])]) for r in rows])

    names = ", ".join(ref.classes)
    blocks = [run_report.Heading("Images, a row per class", 3)]
    images = []
    for what, data in (("synthetic", syn), ("reference", ref)):
        path = f"{RunFolder.AUDIT_DIR}/{what}_grid.png"
        report.image_grid(first(data), folder.file(path), title=f"{what}: rows of {per_class} ({names})", columns=per_class)
        images.append(run_report.Image(path, f"the first {per_class} {what} images of each class"))
    return blocks + [run_report.Row(images)]


def _to_classes(data: LabeledImages, classes: list[str], what: str, root: Path) -> LabeledImages:
    unknown = sorted(set(data.classes) - set(classes))
    if unknown:
        raise ValueError(f"{root}: {what} class folder(s) {unknown} are not classes of the reference "
                         f"(reference classes: {', '.join(classes)}): the reference needs a folder of that class's "
                         f"training images (every class has to be compared with its own), or rename the {what} "
                         "folder if it is a class of the reference under another name")
    mapping = torch.tensor([classes.index(c) for c in data.classes], dtype=torch.long)
    return LabeledImages(data.images, mapping[data.labels], classes)


def audit_folders(synthetic: Path, reference: Path, holdout: Path | None, out_dir: Path, *, extractor: FeatureExtractor,
                  prep, settings: AuditSettings = AuditSettings(), pairs: int = 8, progress=None,
                  registry: Registry | None = None) -> dict:
    """Audit a class-per-folder tree of synthetic images (from augkit or any other tool) against the
    generator's training images and, ideally, held-out real images. Writes into ``out_dir``:
    audit.json, audit/flags.csv (synthetic files by relative path), audit/closest_pairs.png,
    audit/distances.png, report.md and report.html. Reference and held-out file names are never written.
    """
    progress = progress or no_progress
    registry = registry or get_plugin_manager()
    ref, _, ref_skipped, ref_blank = _read_folder(Path(reference), prep, reveal=False, progress=progress,
                                                  registry=registry)
    held, held_skipped, held_blank = None, [], []
    if holdout is not None:
        held_raw, _, held_skipped, held_blank = _read_folder(Path(holdout), prep, reveal=False, progress=progress,
                                                             registry=registry)
        held = _to_classes(held_raw, ref.classes, "held-out", Path(holdout))
    syn_raw, syn_files, syn_skipped, syn_blank = _read_folder(Path(synthetic), prep, reveal=True, progress=progress,
                                                              registry=registry)
    syn = _to_classes(syn_raw, ref.classes, "synthetic", Path(synthetic))
    if held is not None:
        fit_train, fit_val = ref, held
    else:  # the extractor's own validation images: a seeded 15% of each class of the reference
        gen = torch.Generator().manual_seed(settings.seed)
        val_idx = []
        for c in range(len(ref.classes)):
            members = torch.nonzero(ref.labels == c).flatten()
            members = members[torch.randperm(len(members), generator=gen)]
            val_idx += members[: len(members) * 15 // 100].tolist()
        val_idx = val_idx or [0]
        rest = sorted(set(range(len(ref))) - set(val_idx))
        fit_train, fit_val = ref.subset(torch.tensor(rest)), ref.subset(torch.tensor(val_idx))
    list(progress(extractor.fit(fit_train, fit_val, seed=settings.seed), "audit: feature extractor", extractor.total_steps))
    counts = torch.bincount(fit_val.labels, minlength=len(ref.classes))
    enough = held is None and len(fit_val) >= 10 and bool((counts >= 2).all())  # else its accuracy is chance
    auditor = Auditor(extractor, ref, held, settings, validation=fit_val if enough else None)
    screen, feats = auditor.screen(syn.images, syn.labels)
    summary = auditor.summary(screen, feats, images=syn.images)
    # reference and held-out files by sample key (a keyed hash: `augkit locate` finds the file), synthetic by path
    summary["skipped"] = {"reference": _keyed(ref_skipped), "heldout": _keyed(held_skipped),
                          "synthetic": [{"file": f, "reason": path_free(r)} for f, r in syn_skipped]}
    summary["blank"] = {"reference": ref_blank, "heldout": held_blank, "synthetic": syn_blank}
    out_dir = Path(out_dir)
    folder = RunFolder(out_dir)
    folder.folder(RunFolder.AUDIT_DIR)
    folder.write_text(RunFolder.AUDIT, json.dumps(summary, indent=2))
    write_flags(screen, ref.classes, [{"file": f} for f in syn_files], folder.file(RunFolder.FLAGS))
    plot_closest_pairs(syn.images, screen, ref.images, folder.file(RunFolder.CLOSEST_PAIRS), n=pairs, classes=ref.classes)
    plot_distances(screen, auditor, folder.file(RunFolder.DISTANCES))
    content = [run_report.Heading(f"augkit audit: {Path(synthetic).name}", 1)]
    warnings = folder_warnings(summary)
    content += [run_report.Heading("Warnings"), run_report.Bullets(warnings) if warnings else run_report.Para("None.")]
    content += run_report.audit_blocks(summary, ref.classes, RunFolder.AUDIT_DIR)
    content += _grids(syn, ref, folder)
    folder.write_text(RunFolder.REPORT_MD, run_report.to_markdown(content))
    folder.write_text(RunFolder.REPORT_HTML, run_report.to_html(content, out_dir))
    return summary
