"""A dataset card beside every exported synthetic set: what it is, how good and how safe, what it is for.

``dataset_card.json`` and ``DATASET_CARD.md`` go into the export folder (a run's ``synthetic/``,
``augkit generate``'s ``--out``). They summarise, from the run folder the images came from: the
generator and checkpoint, the real training data (counts per class and split, never a path or
an identifier), the audit's findings (fidelity and diversity per class against the real-vs-real
floors, label faithfulness, near copies, data copying), the study's verdict when there is one,
intended use and limits, and a licence field left for the user to fill in.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from augkit.outputs.files import atomic_write_text, read_json, shared_mode, write_json
from augkit.outputs.run_folder import RunFolder
from augkit.version import __version__

JSON, MARKDOWN = "dataset_card.json", "DATASET_CARD.md"

INTENDED_USE = ("research on data augmentation and synthetic data for the diagnostic task of the training data; "
                "method development and teaching")
LIMITS = [
    "synthetic images are not patient data and carry no diagnosis: never use them for clinical decisions",
    "they reflect the training data's population, scanner and labelling, and its biases, within the generator's "
    "diversity (see the audit figures above): a class the generator collapsed is represented by a few looks",
    "a generator can memorise training images: near copies and data-copying figures are measured against the "
    "training split, not proven absent; share only after reading them",
]


def build(run: Path | None, *, provenance: dict[str, Any], per_class: dict[str, int], study: Path | None = None,
          note: str | None = None) -> dict[str, Any]:
    """The card's content. ``run``: the run folder the generator was trained in (None: unknown);
    ``study``: the folder whose metrics.json holds the verdict (default: ``run``)."""
    folder = RunFolder(run) if run is not None else None
    data = folder.read_json(RunFolder.DATA) if folder else None
    audit = folder.read_json(RunFolder.AUDIT) if folder else None
    metrics = read_json(Path(study or run) / RunFolder.METRICS) if (study or run) else None
    card: dict[str, Any] = {
        "card_version": 1,
        "created": dt.date.today().isoformat(),
        "augkit_version": __version__,
        "images": {"total": sum(per_class.values()), "per_class": per_class},
        "generator": {k: provenance.get(k) for k in ("generator", "generator_version", "checkpoint_sha256",
                                                      "recipe_sha256")},
        "training_data": None if not data else {
            "classes": data["classes"], "images": data["images"], "skipped_files": data.get("skipped", 0),
            "splits": data["splits"],
            "note": "the generator trained on the train split only; counts only, no paths or identifiers"},
        # the run's warnings on these figures travel with them: an audit in a feature space at chance, or a
        # study whose real-only classifiers learnt nothing, reads well without them
        "audit": {**_audit(audit), "warnings": [w for w in folder.warnings() if w.startswith("audit:")]}
        if audit else None,
        "study": None if not metrics or "verdict" not in metrics else {
            "verdict": metrics["verdict"], "not_covered": metrics.get("not_covered", []),
            "warnings": metrics.get("warnings", []),
            "seeds": metrics.get("seeds"), "test_images": sum(metrics.get("test_counts", []))},
        "intended_use": INTENDED_USE,
        "limits": LIMITS,
        "licence": None,
        "licence_note": "fill in: the licence the training data's terms allow for derived images",
    }
    if note:
        card["note"] = note
    return card


def _audit(audit: dict) -> dict:
    def figure(block: dict, name: str) -> dict:
        return {"synthetic": block["synthetic"][name]["mean"], "real_floor": block["real_floor"][name]["mean"]}

    fidelity = audit.get("fidelity", {})
    names = ("precision", "recall", "coverage")
    per_class = {c: {name: figure(block, name) for name in names} if "synthetic" in block
                 else {"note": block.get("note", "not measured")}
                 for c, block in fidelity.get("per_class", {}).items()}
    overall = fidelity.get("overall") or {}
    memorisation = audit.get("memorisation", {})
    faithfulness = audit.get("faithfulness") or {}
    return {
        "feature_space": audit.get("feature_space"),
        "overall": {name: figure(overall, name) for name in names} if "synthetic" in overall
        else {"note": overall.get("note", "not measured")},
        "per_class": per_class,
        "label_faithfulness": {"overall": faithfulness.get("overall"), "per_class": faithfulness.get("per_class")},
        "near_copies": memorisation.get("near_copies"),
        "data_copying_c_t": (memorisation.get("data_copying") or {}).get("c_t"),
        # the ratio's 95 % interval where the audit gave one (audits before 2026-12-07 have none)
        "intra_class_diversity": {c: {k: f.get(k) for k in ("synthetic", "real", "ratio", "ratio_interval", "collapsed")}
                                  for c, f in (audit.get("diversity") or {}).get("per_class", {}).items()},
    }


def for_export(out: Path, run: Path | None, *, study: Path | None = None, note: str | None = None) -> None:
    """Write the card of the export in ``out``, from its manifest (provenance, counts) and ``run``'s files."""
    from augkit.outputs.manifest import read_manifest

    manifest = read_manifest(out)
    rows = manifest.rows
    per_class: dict[str, int] = {c: 0 for c in (manifest.classes or [])}
    for row in rows:
        per_class[row["class"]] = per_class.get(row["class"], 0) + 1
    first = rows[0] if rows else {}
    provenance = {k: first.get(k) for k in ("generator", "generator_version", "checkpoint_sha256", "recipe_sha256")}
    write(out, build(run, provenance=provenance, per_class=per_class, study=study, note=note))


def write(out: Path, card: dict[str, Any]) -> None:
    """``dataset_card.json`` and ``DATASET_CARD.md`` in ``out`` (atomic; the umask's mode, as the export they
    describe: numbers, class names and hashes, made to be shared with it)."""
    write_json(Path(out) / JSON, card)
    atomic_write_text(Path(out) / MARKDOWN, markdown(card))
    shared_mode(Path(out) / JSON, Path(out) / MARKDOWN)


def markdown(card: dict[str, Any]) -> str:
    g, images = card["generator"], card["images"]
    lines = ["# Dataset card: synthetic images", "",
             f"{images['total']} synthetic images ({', '.join(f'{c} {n}' for c, n in images['per_class'].items())}), "
             f"made by augkit {card['augkit_version']} on {card['created']}.", ""]
    if card.get("note"):
        lines += [card["note"], ""]
    lines += ["## Generator", "", f"- plugin: {g['generator']} (version {g['generator_version']})",
              f"- checkpoint SHA-256: {g['checkpoint_sha256']}"]
    if g.get("recipe_sha256"):
        lines.append(f"- recipe SHA-256: {g['recipe_sha256']}")
    lines.append("")
    data = card["training_data"]
    lines += ["## Training data", ""]
    if data:
        lines += [f"{data['images']} real images in {len(data['classes'])} classes ({data['skipped_files']} files "
                  "skipped); the generator trained on the train split only. Counts only: no paths, no identifiers.",
                  "", "| split | images | patients | " + " | ".join(data["classes"]) + " |",
                  "|---|---:|---:|" + "---:|" * len(data["classes"])]
        for name, s in data["splits"].items():
            lines.append(f"| {name} | {s['images']} | {s['patients']} | "
                         + " | ".join(str(s["per_class"][c]) for c in data["classes"]) + " |")
    else:
        lines.append("Unknown: the checkpoint is not in an augkit run folder.")
    lines += ["", "## Audit: quality and privacy", ""]
    audit = card["audit"]
    if audit:
        lines += [f"Feature space: {audit['feature_space']}.", "",
                  "| class | precision (fidelity) | recall (diversity) | coverage |", "|---|---:|---:|---:|"]
        for c, f in {"all classes": audit["overall"], **audit["per_class"]}.items():
            if "note" in f:
                lines.append(f"| {c} | {f['note']} | | |")
                continue
            lines.append(f"| {c} | " + " | ".join(f"{f[k]['synthetic']:.2f} (real {f[k]['real_floor']:.2f})"
                                                   for k in ("precision", "recall", "coverage")) + " |")
        diversity = audit.get("intra_class_diversity") or {}
        if diversity:
            lines += ["", "Intra-class diversity, 1 - MS-SSIM between pairs of one class (their layouts; 0 is one "
                      "image repeated): " + "; ".join(
                          f"{c} {_number(f['synthetic'], 3)} (real {_number(f['real'], 3)}{_ratio(f)})"
                          + (", collapsed" if f["collapsed"] else "") for c, f in diversity.items()) + "."]
        faith = audit["label_faithfulness"]["overall"]
        lines += ["", f"Label faithfulness (the real-trained classifier agrees with the requested class): "
                      f"{'n/a' if faith is None else f'{faith:.2f}'}. Near copies of training images: "
                      f"{audit['near_copies']}. Data copying C_T: {_number(audit['data_copying_c_t'])} (well below 0 "
                      "means copying). docs/audit.md explains each figure."]
        lines += _caveats(audit.get("warnings", []))
    else:
        lines.append("Not audited.")
    lines += ["", "## What the study found", ""]
    study = card["study"]
    if study:
        lines += [*(f"- {v}" for v in study["verdict"]), *(f"- Not covered: {n}." for n in study["not_covered"])]
        lines += _caveats(study.get("warnings", []))
    else:
        lines.append("No classifier study of these images.")
    lines += ["", "## Intended use", "", card["intended_use"] + ".", "", "## Limits", "",
              *(f"- {limit}." for limit in card["limits"]), "", "## Licence", "",
              card["licence"] or f"Not set ({card['licence_note']}).", ""]
    return "\n".join(lines)


def _ratio(figures: dict) -> str:
    """The ratio for the card, e.g. "; 0.92x as varied, 95 % interval 0.77-1.07" (the interval over the synthetic
    images, where the audit gave one)."""
    if figures.get("ratio") is None:
        return ""
    low_high = figures.get("ratio_interval")
    return f"; {figures['ratio']:.2f}x as varied" + (f", 95 % interval {low_high[0]:.2f}-{low_high[1]:.2f}"
                                                      if low_high else "")


def _caveats(warnings: list[str]) -> list[str]:
    """The run's warnings on the figures just above, as a list of their own (none: nothing)."""
    return ["", "Caveats (the run's warnings):", "", *(f"- {w}" for w in warnings)] if warnings else []


def _number(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"
