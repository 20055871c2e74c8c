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
from augkit.outputs import run_report
from augkit.outputs.progress import no_progress
from augkit.outputs.run_folder import RunFolder


def _read_folder(root: Path, prep, *, reveal: bool, progress, registry: Registry
                 ) -> tuple[LabeledImages, list[str], list[tuple[str, str]]]:
    """Every image of a class-per-folder tree, preprocessed; bad files are skipped with their reason."""
    source = registry.get("dataset", FOLDER_DATASET)(root=root, reveal_file_names=reveal)
    classes, images, labels, keys, skipped = source.classes, [], [], [], []
    samples = list(source.samples())
    for sample in progress(samples, f"read {root.name}", len(samples)):
        try:
            images.append(torch.tensor(prep(sample.load())))
        except Exception as exc:  # one bad image must not stop the audit
            skipped.append((sample.key, f"{type(exc).__name__}: {exc}"))
            continue
        labels.append(sample.label)
        keys.append(sample.key)
    if not images:
        raise ValueError(f"{root}: no readable images" + (f" ({skipped[0][1]})" if skipped else ""))
    return LabeledImages(torch.stack(images), torch.tensor(labels, dtype=torch.long), classes), keys, skipped


def _keyed(skipped: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"sample": key, "reason": path_free(reason)} for key, reason in skipped]


def skipped_note(summary: dict) -> str | None:
    """One sentence on the files the audit could not read, or None."""
    skipped = summary.get("skipped") or {}
    counts = {what: len(files) for what, files in skipped.items()}
    if not any(counts.values()):
        return None
    names = {"heldout": "held-out"}
    return ("unreadable files skipped: " + ", ".join(f"{n} {names.get(what, what)}" for what, n in counts.items() if n)
            + " (listed in audit.json: reference and held-out ones by sample key, `augkit locate KEY --root DIR`)")


def _to_classes(data: LabeledImages, classes: list[str], what: str, root: Path) -> LabeledImages:
    unknown = sorted(set(data.classes) - set(classes))
    if unknown:
        raise ValueError(f"{root}: {what} class folder(s) {unknown} are not classes of the reference "
                         f"(reference classes: {', '.join(classes)}); rename the folders to match")
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
    ref, _, ref_skipped = _read_folder(Path(reference), prep, reveal=False, progress=progress, registry=registry)
    held = None
    if holdout is not None:
        held_raw, _, held_skipped = _read_folder(Path(holdout), prep, reveal=False, progress=progress,
                                                 registry=registry)
        held = _to_classes(held_raw, ref.classes, "held-out", Path(holdout))
    syn_raw, syn_files, syn_skipped = _read_folder(Path(synthetic), prep, reveal=True, progress=progress,
                                                   registry=registry)
    syn = _to_classes(syn_raw, ref.classes, "synthetic", Path(synthetic))
    if held is not None:
        fit_train, fit_val = ref, held
    else:  # the extractor's own validation images: a seeded 15% of the reference
        perm = torch.randperm(len(ref), generator=torch.Generator().manual_seed(settings.seed))
        cut = max(1, len(ref) * 15 // 100)
        fit_train, fit_val = ref.subset(perm[cut:]), ref.subset(perm[:cut])
    list(progress(extractor.fit(fit_train, fit_val, seed=settings.seed), "audit: feature extractor", extractor.total_steps))
    auditor = Auditor(extractor, ref, held, settings)
    screen, feats = auditor.screen(syn.images, syn.labels)
    summary = auditor.summary(screen, feats, images=syn.images)
    # reference and held-out files by sample key (a keyed hash: `augkit locate` finds the file), synthetic by path
    summary["skipped"] = {"reference": _keyed(ref_skipped), "heldout": _keyed(held_skipped if holdout else []),
                          "synthetic": [f for f, _ in syn_skipped]}
    out_dir = Path(out_dir)
    folder = RunFolder(out_dir)
    folder.folder(RunFolder.AUDIT_DIR)
    folder.write_text(RunFolder.AUDIT, json.dumps(summary, indent=2))
    write_flags(screen, ref.classes, [{"file": f} for f in syn_files], folder.file(RunFolder.FLAGS))
    plot_closest_pairs(syn.images, screen, ref.images, folder.file(RunFolder.CLOSEST_PAIRS), n=pairs)
    plot_distances(screen, auditor, folder.file(RunFolder.DISTANCES))
    content = [run_report.Heading(f"augkit audit: {Path(synthetic).name}", 1)]
    warnings = warnings_for(summary) + [note for note in [skipped_note(summary)] if note]
    content += [run_report.Heading("Warnings"), run_report.Bullets(warnings) if warnings else run_report.Para("None.")]
    content += run_report.audit_blocks(summary, ref.classes, RunFolder.AUDIT_DIR)
    folder.write_text(RunFolder.REPORT_MD, run_report.to_markdown(content))
    folder.write_text(RunFolder.REPORT_HTML, run_report.to_html(content, out_dir))
    return summary
