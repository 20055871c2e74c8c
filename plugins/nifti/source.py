"""``nifti``: NIfTI images (``.nii``, ``.nii.gz``) as 2-D slices.

Layout: ``ROOT/<class>/**/*.nii[.gz]`` (``labels_from: folders``), or any tree with a
``path,label`` CSV (``labels_from: csv``). Volumes are reoriented to RAS, so ``axis`` 0 / 1 / 2
are sagittal / coronal / axial slices whatever the file's voxel order; 2-D images are one
sample; 4-D images (time series) give their first volume, with a warning. Intensities: the
volume's 0.5 and 99.5 percentiles map to 0 and 1. The patient is the file name without its
extension (``sub-01_T1w``), or what ``patient_regex`` captures in the file name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

import augkit
from augkit.extension.names import path_free
from augkit_plugins._files import (
    LabelledFileOptions,
    check_patient_regex,
    check_regular,
    clean_message,
    content_fingerprint,
    label_files,
    patient_from,
    reject,
    sample_key,
    walk_files,
)
from augkit_plugins.nifti.volumes import (
    SUFFIXES,
    canonical_shape,
    foreground_fractions,
    load_slice,
    stem,
    windowed_volume,
)

log = logging.getLogger("augkit")

LOADER_VERSION = 2  # bump when loading changes, so cached preprocessed data is rebuilt
LAYOUT = "ROOT/<class>/**/*.nii or *.nii.gz (labels_from: folders) or a labels_csv with columns path,label"


class Nifti(augkit.DataSource):
    """NIfTI volumes (MRI, CT) through MONAI's NibabelReader, as 2-D slices in [0, 1]."""

    name = "nifti"

    class Options(LabelledFileOptions):
        root: Path = Field(description=f"The folder holding the NIfTI files: {LAYOUT}.")
        max_voxels: int = Field(300_000_000, ge=64, description="refuse (skip, with the reason) a volume of more voxels "
                                "than this, read from its header before the data")
        axis: Literal[0, 1, 2] = Field(
            2, description="Slice along this axis of the RAS-oriented volume: 0 sagittal, 1 coronal, 2 axial."
        )
        selection: Literal["all", "central", "foreground"] = Field(
            "central",
            description=(
                "Which slices of each volume: all; central (the central K, see central); foreground (those "
                "whose fraction of voxels above the volume's Otsu threshold is at least min_foreground)."
            ),
        )
        central: int = Field(5, ge=1, description="K, the number of central slices taken with selection: central.")
        min_foreground: float = Field(
            0.1, ge=0.0, le=1.0, description="With selection: foreground, the least foreground fraction a slice needs."
        )
        percentiles: tuple[float, float] = Field(
            (0.5, 99.5), description="Intensity percentiles of the volume mapped to 0 and 1 (values outside are clipped)."
        )
        patient_regex: str | None = Field(
            None,
            description=(
                "Regular expression searched in the file name; its group 'patient' (or first group) is the "
                "patient id. Default: the file name without .nii / .nii.gz."
            ),
        )

        @field_validator("percentiles")
        @classmethod
        def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
            if not 0.0 <= value[0] < value[1] <= 100.0:
                raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {value}")
            return value

        @field_validator("patient_regex")
        @classmethod
        def _one_group(cls, value: str | None) -> str | None:
            return check_patient_regex(value)

    options: Options

    def files(self, *, warn: bool = True) -> tuple[list[str], list[tuple[Path, str, str]]]:
        """Classes, and (path, relative path, class) of every labelled NIfTI file."""
        return label_files(self.options, walk_files(self.options.root, SUFFIXES), self.name, LAYOUT, warn=warn)

    @property
    def classes(self) -> list[str]:
        return self.files(warn=False)[0]

    def slices(self, path: Path, key: str) -> list[int | None]:
        """The slice indices to use (``[None]`` for a 2-D image); raises ``ValueError`` if unreadable."""
        o = self.options
        check_regular(path)
        shape, four_d = canonical_shape(path)
        if int(np.prod(shape)) > o.max_voxels:
            raise ValueError(f"image of {'x'.join(map(str, shape))} voxels is more than the cap of {o.max_voxels:,} "
                             "(the source's max_voxels option)")
        if four_d:
            log.warning("%s: %s is 4-D; only its first volume is used", self.name, key)
        if len(shape) == 2:
            return [None]
        n = shape[o.axis]
        if o.selection == "all":
            return list(range(n))
        if o.selection == "central":
            start = max(0, (n - o.central) // 2)
            return list(range(start, min(n, start + o.central)))
        fractions = foreground_fractions(windowed_volume(str(path), o.percentiles), o.axis)
        chosen = [i for i, f in enumerate(fractions) if f >= o.min_foreground]
        if not chosen:
            log.warning("%s: %s has no slice with a foreground fraction >= %g", self.name, key, o.min_foreground)
        return chosen

    def samples(self) -> Iterator[augkit.Sample]:
        o = self.options
        classes, files = self.files()
        samples, unmatched, volumes = [], 0, 0
        for path, rel, class_name in files:
            key = sample_key(rel, class_name, o.reveal_file_names)
            label = classes.index(class_name)
            group = patient_from(path.name, o.patient_regex)
            if group is None:
                unmatched += o.patient_regex is not None
                group = stem(path.name)
            try:
                indices = self.slices(path, key)
            except Exception as exc:  # one file's problem skips that file, with a reason and no path
                samples.append(augkit.Sample(partial(reject, path_free(clean_message(exc, path))), label, group, key))
                continue
            volumes += 1
            for i in indices:
                load = partial(load_slice, str(path), o.axis, i, o.percentiles)
                meta = {} if i is None else {"axis": o.axis, "slice": i}
                samples.append(augkit.Sample(load, label, group, key if i is None else f"{key}/s{i}", meta))
        if unmatched:
            log.warning("%s: patient_regex matched no patient in %d file names; using their names", self.name, unmatched)
        log.info("%s: %d slices from %d images (%d unreadable files)", self.name, len(samples), volumes, len(files) - volumes)
        yield from samples

    def fingerprint(self) -> str:
        paths = [p for p, *_ in self.files(warn=False)[1]]
        if self.options.csv_path is not None:
            paths.append(self.options.csv_path)
        return content_fingerprint(self.name, LOADER_VERSION, self.options, self.options.root, paths)
