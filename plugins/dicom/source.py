"""``dicom``: DICOM files in any folder structure, one sample per 2-D frame.

Layout: ``ROOT/<class>/**/<files>`` (``labels_from: folders``), or any tree with a
``path,label`` CSV (``labels_from: csv``). A file is DICOM if it has the ``DICM`` marker at
byte 128 (whatever its name) or ends in ``.dcm`` / ``.dicom`` / ``.dic``; DICOMDIR index files
and objects without pixels (structured reports, RT structures) are left out. Multi-frame
files and series of single-frame files (grouped by SeriesInstanceUID, ordered by
InstanceNumber) become 2-D slices; ``slices`` / ``central`` choose which.

The patient is PatientID (else StudyInstanceUID, else the file's folder). It is used as the
sample's ``group`` only: never in a key, in ``meta`` or in a log line.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import Field, model_validator

import augkit
from augkit.extension.names import path_free
from augkit_plugins._files import (
    LabelledFileOptions,
    check_regular,
    clean_message,
    content_fingerprint,
    label_files,
    reject,
    sample_key,
    walk_files,
)
from augkit_plugins.dicom.pixels import SUFFIXES, has_preamble, is_dicomdir, load_frame, quiet, read_header

log = logging.getLogger("augkit")

LOADER_VERSION = 2  # bump when loading changes, so cached preprocessed data is rebuilt
LAYOUT = "ROOT/<class>/**/<DICOM files> (labels_from: folders) or a labels_csv with columns path,label"


def _text(header, keyword: str) -> str:
    return str(header.get(keyword) or "").strip()


def _number(header, keyword: str) -> float:
    try:
        return float(header.get(keyword) or 0)
    except (TypeError, ValueError):  # a malformed value only loses its place in the series order
        return 0.0


def _frames(header, max_frames: int, max_pixels: int) -> int:
    """NumberOfFrames, checked against the caps before any pixel is read (a 1 KB file can claim a million)."""
    try:
        raw = header.get("NumberOfFrames") or 1  # pydicom converts on access: "1e400" overflows here
        frames = int(float(raw))
    except (TypeError, ValueError, OverflowError):
        element = header.get_item("NumberOfFrames")
        shown = element.value if element is not None and isinstance(element.value, (str, bytes)) else "?"
        raise ValueError(f"NumberOfFrames {str(shown)[:20]!r} is not a frame count") from None
    if not 1 <= frames <= max_frames:
        raise ValueError(f"NumberOfFrames {frames} is outside 1..{max_frames} (the source's max_frames option)")
    rows, columns = int(header.get("Rows") or 0), int(header.get("Columns") or 0)
    if rows * columns > max_pixels:
        raise ValueError(f"frames of {columns}x{rows} pixels are more than the cap of {max_pixels:,} (max_pixels)")
    return frames


def _central(units: list, k: int | None) -> list:
    """The central ``k`` of an ordered list (all of it when ``k`` is None)."""
    if k is None or k >= len(units):
        return units
    start = (len(units) - k) // 2
    return units[start : start + k]


class Dicom(augkit.DataSource):
    """DICOM images (CT, MR, CR/DX, ...) through MONAI's PydicomReader, as 2-D slices in [0, 1]."""

    name = "dicom"

    class Options(LabelledFileOptions):
        root: Path = Field(description=f"The folder holding the DICOM files: {LAYOUT}.")
        max_frames: int = Field(2000, ge=1, description="refuse (skip, with the reason) a file whose NumberOfFrames is "
                                "more than this, read from its header before any pixel")
        window: Literal["auto", "none", "ct-lung", "ct-soft-tissue", "ct-brain", "ct-bone", "percentile"] = Field(
            "auto",
            description=(
                "Intensity window mapped to [0, 1] after RescaleSlope/Intercept. auto: the file's "
                "WindowCenter/Width, else percentile; percentile: 0.5-99.5 % of each frame; none: min-max; "
                "ct-*: the usual presets in HU (lung -600/1500, soft tissue 40/400, brain 40/80, bone 400/1800)."
            ),
        )
        slices: Literal["all", "middle"] = Field(
            "all",
            description=(
                "Which 2-D slices of each series (or multi-frame file) become samples: all, or the middle one "
                "(the lower of the two middle ones for an even count)."
            ),
        )
        central: int | None = Field(
            None, ge=1, description="Take the central K slices of each series instead (with slices: all)."
        )
        output: Literal["float32", "uint8"] = Field(
            "float32", description="Pixel type handed on: float32 in [0, 1], or uint8 in [0, 255]."
        )

        @model_validator(mode="after")
        def _one_selection(self):
            if self.central is not None and self.slices == "middle":
                raise ValueError("give either slices: middle or central: K, not both (middle is central: 1)")
            return self

    options: Options

    def files(self, *, warn: bool = True) -> tuple[list[str], list[tuple[Path, str, str]]]:
        """Classes, and (path, relative path, class) of every labelled DICOM candidate."""
        root = self.options.root
        candidates = [
            p
            for p in walk_files(root)
            if p.name.upper() != "DICOMDIR" and (p.suffix.lower() in SUFFIXES or has_preamble(p))
        ]
        return label_files(self.options, candidates, self.name, LAYOUT, warn=warn)

    @property
    def classes(self) -> list[str]:
        return self.files(warn=False)[0]

    def _unit(self, path: Path, rel: str, class_name: str, classes: list[str]) -> dict | augkit.Sample | None:
        """What one file contributes: a dict describing it, a refusing sample if unusable, None if not an image."""
        folder = PurePosixPath(rel).parent.as_posix()
        key = sample_key(rel, class_name, self.options.reveal_file_names)
        label = classes.index(class_name)
        try:
            check_regular(path)
            header = read_header(path)
            if is_dicomdir(header):
                return None
            if "Rows" not in header:
                if "SOPClassUID" in header or has_preamble(path):  # a report, an RT structure set, ...
                    return None
                raise ValueError("not a DICOM file: no DICM marker at byte 128 and no DICOM header")
            frames = _frames(header, self.options.max_frames, self.options.max_pixels)
            order = (_number(header, "InstanceNumber"), rel)
        except Exception as exc:  # whatever goes wrong with one file skips that file, with a reason and no path
            return augkit.Sample(partial(reject, path_free(clean_message(exc, path))), label, folder, key)
        return {
            "path": path,
            "key": key,
            "label": label,
            "group": _text(header, "PatientID") or _text(header, "StudyInstanceUID") or folder,
            "modality": _text(header, "Modality"),
            "frames": frames,
            "series": _text(header, "SeriesInstanceUID") or f"folder:{folder}",
            "order": order,
        }

    def samples(self) -> Iterator[augkit.Sample]:
        o = self.options
        classes, files = self.files()
        k = 1 if o.slices == "middle" else o.central
        series: dict[tuple, list[dict]] = defaultdict(list)  # (class, series) -> ordered units
        bad, not_images = [], 0  # DICOMDIRs and objects without pixels are counted in not_images
        for path, rel, class_name in files:
            with quiet():
                unit = self._unit(path, rel, class_name, classes)
            if unit is None:
                not_images += 1
            elif isinstance(unit, augkit.Sample):
                bad.append(unit)
            elif unit["frames"] > 1:
                frames = range(unit["frames"])
                series[(class_name, "file", rel)] = [{**unit, "frame": f, "key": f"{unit['key']}/f{f}"} for f in frames]
            else:
                series[(class_name, "series", unit["series"])].append({**unit, "frame": 0})
        chosen = []
        for units in series.values():
            units.sort(key=lambda u: u["order"])
            chosen += _central(units, k)
        chosen.sort(key=lambda u: (u["label"], str(u["path"]), u["frame"]))
        if not chosen and not bad:
            raise ValueError(f"no DICOM images in {o.root} ({not_images} DICOM files without pixels); expected {LAYOUT}")
        if not_images:
            log.info("%s: %d DICOMDIR or other files without pixel data were not read", self.name, not_images)
        log.info("%s: %d slices from %d series, %d unreadable files", self.name, len(chosen), len(series), len(bad))
        for u in chosen:
            load = partial(load_frame, str(u["path"]), u["frame"], o.window, o.output)
            yield augkit.Sample(load, u["label"], u["group"], u["key"], {"modality": u["modality"], "frame": u["frame"]})
        yield from bad

    def fingerprint(self) -> str:
        paths = [p for p, *_ in self.files(warn=False)[1]]
        if self.options.csv_path is not None:
            paths.append(self.options.csv_path)
        return content_fingerprint(self.name, LOADER_VERSION, self.options, self.options.root, paths)
