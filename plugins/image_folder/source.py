"""``image-folder``: one folder per class, images anywhere below it.

Layout: ``ROOT/<class folder>/**/*.{jpg,jpeg,png,bmp,tif,tiff}``, e.g. the Kaggle brain
tumour data set's ``yes/`` and ``no/``. ``label_map`` renames folders to classes (several
folders may share a class; folders left out of the map are not read). Classes are in
``class_order``, else sorted by name. Without ``patient_regex`` every file is its own
patient, which is right only if no patient has two images: give a regex when they do.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from pydantic import Field, field_validator, model_validator

import augkit
from augkit.extension.names import check_class_name
from augkit_plugins._files import (
    IMAGE_SUFFIXES,
    FileSourceOptions,
    check_patient_regex,
    content_fingerprint,
    is_hidden,
    patient_from,
    read_image,
    relative,
    resolve_classes,
    sample_key,
    walk_files,
)

log = logging.getLogger("augkit")

LOADER_VERSION = 1  # bump when loading changes, so cached preprocessed data is rebuilt
LAYOUT = "ROOT/<class folder>/**/*.{jpg,jpeg,png,bmp,tif,tiff}, one folder per class"


class ImageFolder(augkit.DataSource):
    """Any class-per-folder tree of JPEG / PNG / BMP / TIFF images."""

    name = "image-folder"

    class Options(FileSourceOptions):
        root: Path = Field(description=f"The folder holding one sub-folder per class: {LAYOUT}.")
        label_map: dict[str, str] | None = Field(
            None,
            description=(
                "Folder name -> class name, e.g. {yes: tumor, no: no_tumor}; several folders may map to one "
                "class; folders not in the map are not read. Default: each folder is a class of its own name."
            ),
        )
        class_order: list[str] | None = Field(
            None, description="Class names in label-index order. Default: the class names sorted."
        )
        patient_regex: str | None = Field(
            None,
            description=(
                "Regular expression searched in the file name; its group 'patient' (or first group) is the "
                "patient id. Default: every file is its own patient."
            ),
        )

        @field_validator("label_map")
        @classmethod
        def _non_empty_names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
            if value is not None:
                if not value:
                    raise ValueError("label_map is empty; leave it out to use every folder as a class")
                blank = [k for k, v in value.items() if not k.strip() or not v.strip()]
                if blank:
                    raise ValueError(f"label_map has empty folder or class names: {blank}")
                for folder, name in value.items():
                    check_class_name(name, f"label_map.{folder}")
            return value

        @field_validator("class_order")
        @classmethod
        def _distinct(cls, value: list[str] | None) -> list[str] | None:
            if value is not None and (not value or len(set(value)) != len(value)):
                raise ValueError(f"class_order must list each class once: {value}")
            for name in value or []:
                check_class_name(name, "class_order")
            return value

        @field_validator("patient_regex")
        @classmethod
        def _one_group(cls, value: str | None) -> str | None:
            return check_patient_regex(value)

        @model_validator(mode="after")
        def _order_matches_map(self):
            if self.label_map is not None and self.class_order is not None:
                mapped, ordered = set(self.label_map.values()), set(self.class_order)
                if mapped != ordered:
                    raise ValueError(
                        f"class_order {self.class_order} must name exactly the classes of label_map "
                        f"{sorted(mapped)} (missing {sorted(mapped - ordered)}, unknown {sorted(ordered - mapped)})"
                    )
            return self

    options: Options

    def folders(self, *, warn: bool = True) -> dict[str, list[Path]]:
        """Class name -> image files, for every class folder (empty classes included)."""
        o = self.options
        found: dict[str, list[Path]] = {}
        present = set()
        for folder in sorted(p for p in o.root.iterdir() if p.is_dir() and not is_hidden(p.name)):
            present.add(folder.name)
            if o.label_map is not None and folder.name not in o.label_map:
                if warn:
                    log.info("%s: folder %r is not in label_map; not read", self.name, folder.name)
                continue
            class_name = folder.name if o.label_map is None else o.label_map[folder.name]
            images = walk_files(folder, IMAGE_SUFFIXES)
            if not images and warn:
                log.warning("%s: class folder %r has no images", self.name, folder.name)
            found.setdefault(class_name, []).extend(images)
        for folder in sorted(set(o.label_map or ()) - present):
            if warn:
                log.warning("%s: label_map names folder %r, which is not under root", self.name, folder)
            found.setdefault(o.label_map[folder], [])  # type: ignore[index]
        if not any(found.values()):
            raise ValueError(f"no images in {o.root}: expected {LAYOUT}" + (" (after label_map)" if o.label_map else ""))
        return found

    @property
    def classes(self) -> list[str]:
        return self._classes(self.folders(warn=False))

    def _classes(self, folders: dict[str, list[Path]]) -> list[str]:
        return resolve_classes(set(folders), self.options.class_order, self.name)

    def samples(self) -> Iterator[augkit.Sample]:
        o = self.options
        folders = self.folders()
        classes = self._classes(folders)
        unmatched = 0
        samples = []
        for label, class_name in enumerate(classes):
            for path in folders.get(class_name, []):
                rel = relative(path, o.root)
                group = patient_from(path.name, o.patient_regex)
                if group is None:
                    unmatched += o.patient_regex is not None
                    group = rel
                key = sample_key(rel, class_name, o.reveal_file_names)
                samples.append(augkit.Sample(load=partial(read_image, str(path), self.options.max_pixels), label=label, group=group, key=key))
        if unmatched:
            log.warning("%s: patient_regex matched no patient in %d file names; each is its own patient", self.name, unmatched)
        counts = Counter(classes[s.label] for s in samples)
        log.info("%s: %d images (%s)", self.name, len(samples), ", ".join(f"{c} {counts[c]}" for c in classes))
        yield from samples

    def fingerprint(self) -> str:
        files = [p for paths in self.folders(warn=False).values() for p in paths]
        return content_fingerprint(self.name, LOADER_VERSION, self.options, self.options.root, files)
