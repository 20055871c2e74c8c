"""The provenance manifest every exporter writes beside its images: ``<out>/manifest.csv``.

One row per written file. ``seed`` is the batch seed and ``index`` the image's position in
that batch: together with the checkpoint they reproduce the image. ``audit_flags`` is
empty unless a caller passes flags for an image (``;``-separated); the column is always
there so that readers need not care whether an audit ran. ``classes.json`` beside the manifest
records the label order: the ``classes`` an export's labels number (else ``provenance["classes"]``).

:class:`ManifestWriter` writes a manifest, :func:`read_manifest` reads one back (the image
files themselves are read by the exporter that wrote them: ``augkit.Exporter.read_image``).
:class:`SyntheticBatch` is what an exporter is handed: one batch with the seed, the index
and the flags that the manifest records per image.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from torch import Tensor

from augkit.extension.names import check_class_name, inside
from augkit.outputs.files import read_json

FIELDS = [
    "file",
    "class",
    "generator",
    "generator_version",
    "checkpoint_sha256",
    "seed",
    "index",
    "recipe_sha256",
    "audit_flags",
]
PROVENANCE_FIELDS = ("generator", "generator_version", "checkpoint_sha256", "recipe_sha256")


class SyntheticBatch(NamedTuple):
    """Synthetic images as the runner hands them to an exporter.

    ``seed`` generated the batch; ``index[i]`` is image i's position in that batch (with the
    checkpoint, (seed, index) reproduces the image: positions can skip when the audit dropped
    images); ``flags[i]`` are its audit flags (empty when it passed or no audit ran).
    """

    images: Tensor  # (N, C, H, W) float32 in [-1, 1]
    labels: Tensor  # (N,) int64
    seed: int
    index: list[int] | None = None  # default: 0 .. N-1
    flags: list[tuple[str, ...]] | None = None  # default: no flags

    @classmethod
    def of(cls, batch: SyntheticBatch | tuple) -> SyntheticBatch:
        """Accept a SyntheticBatch or a plain ``(images, labels, seed)`` triple; fill the defaults."""
        b = batch if isinstance(batch, SyntheticBatch) else cls(*batch)
        n = len(b.labels)
        index = list(range(n)) if b.index is None else [int(i) for i in b.index]
        flags = [()] * n if b.flags is None else [tuple(f) for f in b.flags]
        if len(index) != n or len(flags) != n:
            raise ValueError(f"a batch of {n} images with {len(index)} indexes and {len(flags)} flag sets")
        return cls(b.images, b.labels, int(b.seed), index, flags)


class ManifestWriter:
    """Creates ``<out_dir>/manifest.csv`` (never overwriting one) and names the image files.

    ::

        with ManifestWriter(out_dir, provenance) as manifest:
            for pixels, name, path in manifest.entries(batches, classes, suffix, convert):
                save(pixels, path)                         # <out>/<class>/<class>_000000<suffix>

    (``next_file`` and ``add`` are the two halves of ``entries``, for other loops.)
    """

    def __init__(self, out_dir: Path, provenance: dict[str, Any]):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / "manifest.csv"
        self.provenance = {k: provenance.get(k) for k in PROVENANCE_FIELDS}  # None -> empty cell
        self.classes = list(provenance.get("classes") or [])
        self.rows = 0
        self._per_class: dict[str, int] = {}
        self._file = None
        self._writer: csv.DictWriter | None = None

    def __enter__(self) -> ManifestWriter:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "x", newline="")  # "x": never overwrite an earlier export
        self._writer = csv.DictWriter(self._file, FIELDS)
        self._writer.writeheader()
        if self.classes:
            self._write_classes(self.classes)
        return self

    def _write_classes(self, classes: list[str]) -> None:
        """The label order, so that readers (augkit.pipeline.SyntheticFolder) keep it."""
        self.classes = list(classes)
        (self.out_dir / "classes.json").write_text(json.dumps(self.classes) + "\n")

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._writer = None

    def next_file(self, class_name: str, suffix: str) -> Path:
        """The class's next file name, relative to ``out_dir``; its folder is created."""
        n = self._per_class.get(class_name, 0)
        self._per_class[class_name] = n + 1
        inside(self.out_dir, check_class_name(class_name, "class")).mkdir(exist_ok=True)
        return Path(class_name) / f"{class_name}_{n:06d}{suffix}"

    def add(self, file: Path | str, class_name: str, *, seed: int, index: int, audit_flags: Iterable[str] = ()) -> None:
        """One row for a file already written to ``out_dir / file``."""
        if self._writer is None:
            raise RuntimeError("ManifestWriter.add outside its `with` block")
        self._writer.writerow(
            {
                "file": Path(file).as_posix(),
                "class": class_name,
                **self.provenance,
                "seed": seed,
                "index": index,
                "audit_flags": ";".join(audit_flags),
            }
        )
        self.rows += 1

    def entries(self, batches: Iterable, classes: list[str], suffix: str,
                convert: Callable[[Any], Iterable[Any]]) -> Iterator[tuple[Any, str, Path]]:
        """Per image of every batch (``SyntheticBatch`` or triple): ``(convert(images)[i], class name, path to write)``.

        The manifest row (the batch's seed, the image's index and audit flags) is added once the
        caller has written the file and asks for the next one: every exporter's loop is then
        ``for pixels, name, path in manifest.entries(...): save(pixels, path)``. ``classes`` (what the
        labels number) is the export's label order in ``classes.json``, whatever ``provenance`` said.
        """
        if list(classes) != self.classes:
            self._write_classes(classes)
        for batch in map(SyntheticBatch.of, batches):
            bad = [y for y in batch.labels.tolist() if not 0 <= y < len(classes)]
            if bad:  # before any of the batch's files
                raise ValueError(f"a synthetic image is labelled {bad[0]}, and the classes are {list(classes)} (labels "
                                 f"0 to {len(classes) - 1}): pass the classes the labels number, e.g. generator.classes")
            for pixels, label, index, flags in zip(convert(batch.images), batch.labels.tolist(), batch.index, batch.flags):
                name = classes[label]
                rel = self.next_file(name, suffix)
                yield pixels, name, self.out_dir / rel
                self.add(rel, name, seed=batch.seed, index=index, audit_flags=flags)


@dataclass(frozen=True)
class Manifest:
    """An export as :func:`read_manifest` finds it: the rows of ``manifest.csv`` and the label order."""

    folder: Path
    columns: list[str]
    rows: list[dict[str, str]]  # one per file, every value a str (as csv gives it)
    classes: list[str] | None  # the run's label order from classes.json; None when the export has none

    def file(self, row: dict[str, str]) -> Path:
        """The image file a row names (``file`` is relative to the manifest's folder)."""
        return self.folder / row["file"]


def read_manifest(folder: Path | str) -> Manifest:
    """Read ``<folder>/manifest.csv`` (and ``classes.json`` when there is one), as :class:`ManifestWriter` wrote them."""
    folder = Path(folder)
    path = folder / "manifest.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: give a folder written by an augkit exporter")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    return Manifest(folder, list(reader.fieldnames or []), rows, read_json(folder / "classes.json"))
