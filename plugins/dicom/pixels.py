"""One DICOM frame -> a display-ready array: rescale (MONAI's reader), window, invert MONOCHROME1.

Module-level functions only, so a sample's ``load`` (a ``functools.partial`` of
``load_frame``) pickles into a worker process.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydicom
from pydicom.multival import MultiValue

from augkit_plugins._files import check_size, clean_message

DICM_OFFSET = 128  # a DICOM Part 10 file: 128-byte preamble, then b"DICM"
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
SUFFIXES = (".dcm", ".dicom", ".dic")
PERCENTILES = (0.5, 99.5)

# (centre, width) in Hounsfield units; the usual radiology presets
WINDOWS = {
    "ct-lung": (-600.0, 1500.0),
    "ct-soft-tissue": (40.0, 400.0),
    "ct-brain": (40.0, 80.0),
    "ct-bone": (400.0, 1800.0),
}


# pydicom logs through its own logger, which reaches the root logger (and a run's handlers): its
# messages quote element values (a name, an id). Only errors, and those without values, are ours to give.
logging.getLogger("pydicom").setLevel(logging.CRITICAL)


@contextmanager
def quiet() -> Iterator[None]:
    """Silence pydicom's and MONAI's warnings: pydicom's quote invalid element values (a name, an id)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def has_preamble(path: Path) -> bool:
    """True for a DICOM Part 10 file: ``DICM`` at byte 128, whatever the file is called."""
    try:
        with open(path, "rb") as f:
            f.seek(DICM_OFFSET)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def is_dicomdir(header: pydicom.Dataset) -> bool:
    meta = getattr(header, "file_meta", None)
    return str(getattr(meta, "MediaStorageSOPClassUID", "")) == DICOMDIR_SOP_CLASS


def read_header(path: Path) -> pydicom.Dataset:
    """The header only (no pixel data); raises ``ValueError`` without the path in its message."""
    if os.path.getsize(path) == 0:
        raise ValueError("file is empty (0 bytes)")
    try:
        with quiet():
            return pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:
        raise ValueError(f"not a readable DICOM file: {clean_message(exc, path)}") from None


def first(value) -> float | None:
    """A number from a DICOM element that may be multi-valued (WindowCenter often is)."""
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else None
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):  # a malformed window is no window
        return None


def window_bounds(values: np.ndarray, header: pydicom.Dataset, window: str) -> tuple[float, float]:
    """(low, high) of the intensity range that maps to [0, 1]."""
    if window in WINDOWS:
        centre, width = WINDOWS[window]
    elif window == "auto" and first(header.get("WindowWidth")) and first(header.get("WindowCenter")) is not None:
        centre, width = first(header.get("WindowCenter")), first(header.get("WindowWidth"))
    elif window == "none":
        return float(values.min()), float(values.max())
    else:  # "percentile", or "auto" without a window in the file (typical of MR)
        low, high = np.percentile(values, PERCENTILES)
        return float(low), float(high)
    return centre - width / 2, centre + width / 2  # type: ignore[operator]


def to_unit(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if not high > low:  # a constant image
        return np.zeros(values.shape, np.float32)
    return np.clip((values - low) / (high - low), 0.0, 1.0).astype(np.float32)


def load_frame(path: str, frame: int, window: str, output: str) -> np.ndarray:
    """Frame ``frame`` of a DICOM file -> (H, W) (or (H, W, 3) for colour) float32 in [0, 1] or uint8.

    Stored values are rescaled by MONAI's ``PydicomReader`` (RescaleSlope / Intercept), then
    windowed; MONOCHROME1 (white = low values) is inverted so that bright always means dense.
    """
    if os.path.getsize(path) == 0:
        raise ValueError("file is empty (0 bytes)")
    with quiet():  # also: missing orientation tags, which only matter for 3-D affines
        try:
            from monai.data import PydicomReader  # imported on first read: discovering plugins stays fast

            reader = PydicomReader(swap_ij=False, affine_lps_to_ras=False, force=True)
            dataset = reader.read(path)
            array, _ = reader.get_data(dataset)
        except Exception as exc:
            raise ValueError(f"not a readable DICOM image: {clean_message(exc, path)}") from None
        return _display(np.asarray(array), dataset, frame, window, output)


def _display(array: np.ndarray, header: pydicom.Dataset, frame: int, window: str, output: str) -> np.ndarray:
    frames = int(header.get("NumberOfFrames") or 1)
    if frames > 1:
        if frame >= array.shape[0]:
            raise ValueError(f"frame {frame} requested but the pixel data holds {array.shape[0]} frames")
        array = array[frame]
    if int(header.get("SamplesPerPixel") or 1) > 1:  # colour: no windowing, full stored range
        bits = int(header.get("BitsStored") or 8)
        image = to_unit(array.astype(np.float32), 0.0, float(2**bits - 1))
    else:
        values = array.astype(np.float32)
        if not np.isfinite(values).all():
            raise ValueError("pixel data has NaN or infinite values")
        image = to_unit(values, *window_bounds(values, header, window))
        if str(header.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
            image = 1.0 - image
    check_size(image)
    if output == "uint8":
        return (image * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(image, dtype=np.float32)
