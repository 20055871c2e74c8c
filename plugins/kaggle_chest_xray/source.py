"""``kaggle-chest-xray``: the Kaggle "Chest X-Ray Images (Pneumonia)" folder, as downloaded.

Layout (``root`` is the ``chest_xray`` folder, or the folder that contains it)::

    chest_xray/{train,val,test}/NORMAL/IM-0115-0001.jpeg, NORMAL2-IM-1427-0001.jpeg, ...
    chest_xray/{train,val,test}/PNEUMONIA/person1_bacteria_1.jpeg, person3_virus_16.jpeg, ...

The zip's duplicate ``chest_xray/chest_xray/`` and its ``__MACOSX/`` folder are not read.
Classes, in this order: ``normal, bacteria, virus`` (``classes: three``, the pneumonia type
read from the file name) or ``normal, pneumonia`` (``classes: two``). The patient is
``personN`` for pneumonia files and the ``IM-NNNN`` part (with its ``NORMAL2-`` prefix, if
any) for normal files. ``meta["source_split"]`` keeps the data set's own split.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

import augkit
from augkit_plugins._files import (
    IMAGE_SUFFIXES,
    FileSourceOptions,
    content_fingerprint,
    existing_dir,
    is_hidden,
    read_image,
    reject,
    relative,
    sample_key,
)

log = logging.getLogger("augkit")

LOADER_VERSION = 1  # bump when loading changes, so cached preprocessed data is rebuilt
SPLITS = ("train", "val", "test")
CLASSES = {"three": ("normal", "bacteria", "virus"), "two": ("normal", "pneumonia")}
FOLDERS = {"NORMAL": "normal", "PNEUMONIA": "pneumonia"}
LAYOUT = "chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg (the Kaggle 'Chest X-Ray Images (Pneumonia)' layout)"

PERSON = re.compile(r"^(person\d+)_", re.IGNORECASE)  # person12_bacteria_57 -> person12
NORMAL_PATIENT = re.compile(r"^((?:NORMAL\d*-)?IM-\d+)", re.IGNORECASE)  # NORMAL2-IM-1427-0001 -> NORMAL2-IM-1427
NO_TYPE = (
    "the file name says neither 'bacteria' nor 'virus', which the three-class rule needs "
    "(names like person1_bacteria_1.jpeg); use classes: two to keep such files as 'pneumonia'"
)
BOTH_TYPES = "the file name says both 'bacteria' and 'virus'; the three-class rule needs exactly one"


def patient_of(folder_class: str, stem: str) -> str:
    """The patient id in a Kaggle file name; the whole stem when the name follows no known pattern."""
    match = (NORMAL_PATIENT if folder_class == "normal" else PERSON).match(stem)
    return match.group(1) if match else stem


def pneumonia_type(name: str) -> str | None:
    """'bacteria' or 'virus' from a PNEUMONIA file name; None when it says neither or both."""
    lower = name.lower()
    found = [kind for kind in ("bacteria", "virus") if kind in lower]
    return found[0] if len(found) == 1 else None


def _subfolders(folder: Path) -> dict[str, Path]:
    """Non-hidden child folders by upper-case name (the zip's case varies between mirrors)."""
    return {p.name.upper(): p for p in sorted(folder.iterdir()) if p.is_dir() and not is_hidden(p.name)}


class KaggleChestXray(augkit.DataSource):
    """Chest radiographs from the Kaggle pneumonia data set: normal / bacteria / virus (or two classes)."""

    name = "kaggle-chest-xray"

    class Options(FileSourceOptions):
        root: Path = Field(
            description="The Kaggle 'chest_xray' folder (the one holding train/ val/ test/), or the folder containing it."
        )
        classes: Literal["three", "two"] = Field(
            "three",
            description="'three': normal, bacteria, virus (pneumonia type from the file name); 'two': normal, pneumonia.",
        )
        splits: list[Literal["train", "val", "test"]] = Field(
            default_factory=lambda: list(SPLITS),
            description="Which of the data set's split folders to read (each sample keeps its folder in meta).",
        )

        @field_validator("root")
        @classmethod
        def _root_is_a_folder(cls, value: Path) -> Path:
            return existing_dir(value, f"the Kaggle 'chest_xray' folder, laid out as {LAYOUT}")

        @field_validator("splits")
        @classmethod
        def _distinct_splits(cls, value: list[str]) -> list[str]:
            if not value:
                raise ValueError(f"splits must name at least one of {list(SPLITS)}")
            return [s for s in SPLITS if s in value]  # fixed order, duplicates dropped

    options: Options

    @property
    def classes(self) -> list[str]:
        return list(CLASSES[self.options.classes])

    def base(self) -> Path:
        """The folder holding train/ val/ test/: ``root`` itself or ``root/chest_xray``."""
        root = self.options.root
        for candidate in (root, root / "chest_xray"):
            if candidate.is_dir() and set(_subfolders(candidate)) & {s.upper() for s in SPLITS}:
                return candidate
        raise ValueError(f"{root} has no train/, val/ or test/ folder (nor a chest_xray/ folder with them); expected {LAYOUT}")

    def files(self, *, warn: bool = True) -> list[tuple[str, str, Path]]:
        """(split, 'normal' or 'pneumonia', path) of every image file in the chosen splits."""
        base = self.base()
        splits = _subfolders(base)
        found = []
        for split in self.options.splits:
            if split.upper() not in splits:
                if warn:
                    log.warning("%s: no %s/ folder under the data set root; that split is skipped", self.name, split)
                continue
            folders = _subfolders(splits[split.upper()])
            for folder, folder_class in FOLDERS.items():
                images = []
                if folder in folders:
                    images = [
                        p
                        for p in sorted(folders[folder].iterdir())
                        if p.is_file() and not is_hidden(p.name) and p.suffix.lower() in IMAGE_SUFFIXES
                    ]
                if not images and warn:
                    log.warning("%s: %s/%s has no images", self.name, split, folder)
                found += [(split, folder_class, p) for p in images]
        if not found:
            raise ValueError(f"no images under {base} in the splits {self.options.splits}; expected {LAYOUT}")
        return found

    def samples(self) -> Iterator[augkit.Sample]:
        base, o = self.base(), self.options
        classes = self.classes
        counts: Counter[str] = Counter()
        samples = []
        for split, folder_class, path in self.files():
            kind = folder_class
            load = partial(read_image, str(path), self.options.max_pixels)
            if folder_class == "pneumonia" and o.classes == "three":
                kind = pneumonia_type(path.name)
                if kind is None:  # the core skips it; its label (bacteria's) is a placeholder, never used
                    kind = "pneumonia"
                    load = partial(reject, BOTH_TYPES if "bacteria" in path.name.lower() else NO_TYPE)
            label = classes.index(kind) if kind in classes else classes.index("bacteria")
            counts[kind] += 1
            samples.append(
                augkit.Sample(
                    load=load,
                    label=label,
                    group=patient_of(folder_class, path.stem),
                    key=sample_key(relative(path, base), kind, o.reveal_file_names),
                    meta={"source_split": split},
                )
            )
        for name in classes:
            if counts[name] == 0:
                log.warning("%s: class %r has no images in the splits %s", self.name, name, o.splits)
        if counts["pneumonia"] and o.classes == "three":
            log.warning("%s: %d pneumonia files name no single type and will be skipped", self.name, counts["pneumonia"])
        log.info("%s: %d images (%s)", self.name, len(samples), ", ".join(f"{k} {v}" for k, v in counts.items()))
        yield from samples

    def fingerprint(self) -> str:
        return content_fingerprint(
            self.name, LOADER_VERSION, self.options, self.base(), [p for *_, p in self.files(warn=False)]
        )
