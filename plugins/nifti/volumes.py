"""NIfTI volumes -> 2-D slices: reading (MONAI's NibabelReader), orientation, intensity windowing.

Module-level functions only, so a sample's ``load`` (a ``functools.partial`` of
``load_slice``) pickles into a worker process. The last volumes read are cached per
process, so loading the slices of one volume one after another reads the file once.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
from skimage.filters import threshold_otsu

from augkit_plugins._files import check_size, clean_message

SUFFIXES = (".nii", ".nii.gz")


def stem(name: str) -> str:
    """``sub-01_T1w.nii.gz`` -> ``sub-01_T1w``."""
    lower = name.lower()
    for suffix in (".nii.gz", ".nii"):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _squeeze_trailing(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Drop trailing length-1 dimensions beyond the second: (X, Y, 1) is 2-D, (X, Y, Z, 1) is 3-D."""
    shape = tuple(shape)
    while len(shape) > 2 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _check_ndim(ndim: int) -> None:
    if ndim not in (2, 3, 4):
        raise ValueError(f"image has {ndim} dimensions; a 2-D, 3-D or 4-D (first volume used) NIfTI is needed")


def canonical_shape(path: Path) -> tuple[tuple[int, ...], bool]:
    """(shape after reorientation to RAS, whether the file is 4-D), from the header alone."""
    if os.path.getsize(path) == 0:
        raise ValueError("file is empty (0 bytes)")
    try:
        image = nib.load(path)
        shape = _squeeze_trailing(image.shape)
        _check_ndim(len(shape))
        four_d = len(shape) == 4
        shape = shape[:3]
        if len(shape) == 3:
            ornt = nib.io_orientation(image.affine)
            canonical = [0, 0, 0]
            for axis, (target, _) in enumerate(ornt):
                canonical[int(target)] = shape[axis]
            shape = tuple(canonical)
    except ValueError as exc:
        raise ValueError(clean_message(exc, path)) from None
    except Exception as exc:
        raise ValueError(f"not a readable NIfTI file: {clean_message(exc, path)}") from None
    return shape, four_d


def read_volume(path: str) -> np.ndarray:
    """The image as float32, reoriented to RAS (axis 0: left->right, 1: posterior->anterior,
    2: inferior->superior); 4-D images give their first volume; 2-D images stay 2-D."""
    if os.path.getsize(path) == 0:
        raise ValueError("file is empty (0 bytes)")
    try:
        from monai.data import NibabelReader  # imported on first read: discovering plugins stays fast

        reader = NibabelReader()  # reorientation is done below: nibabel's canonical needs 3-D data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = reader.read(path)
            data, _ = reader.get_data(image)
        affine = np.asarray(image.affine)
        data = np.asarray(data).reshape(_squeeze_trailing(np.shape(data)))
    except Exception as exc:
        raise ValueError(f"not a readable NIfTI file: {clean_message(exc, path)}") from None
    _check_ndim(data.ndim)
    if data.ndim == 4:
        data = data[..., 0]
    if data.ndim == 3:
        data = nib.orientations.apply_orientation(data, nib.io_orientation(affine))
    data = data.astype(np.float32)
    if not np.isfinite(data).all():
        raise ValueError("image has NaN or infinite values")
    return data


@lru_cache(maxsize=2)
def _windowed(path: str, low: float, high: float, _mtime: int, _size: int) -> np.ndarray:
    volume = read_volume(path)
    lo, hi = np.percentile(volume, (low, high))
    scaled = np.clip((volume - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(volume)
    scaled = scaled.astype(np.float32)
    scaled.flags.writeable = False
    return scaled


def windowed_volume(path: str, percentiles: tuple[float, float]) -> np.ndarray:
    """The volume with its ``percentiles`` (e.g. 0.5 and 99.5) mapped to 0 and 1, clipped; read-only."""
    stat = os.stat(path)
    return _windowed(path, float(percentiles[0]), float(percentiles[1]), stat.st_mtime_ns, stat.st_size)


def foreground_fractions(volume: np.ndarray, axis: int) -> np.ndarray:
    """Per slice along ``axis``: the fraction of voxels above the volume's Otsu threshold."""
    if volume.max() <= volume.min():
        return np.zeros(volume.shape[axis])
    above = volume > threshold_otsu(volume)
    other = tuple(a for a in range(volume.ndim) if a != axis)
    return above.mean(axis=other)


def load_slice(path: str, axis: int, index: int | None, percentiles: tuple[float, float]) -> np.ndarray:
    """Slice ``index`` along ``axis`` (None: the image is 2-D) -> (H, W) float32 in [0, 1].

    Rotated by 90 degrees so that anterior (axial) or superior (coronal, sagittal) is up.
    """
    volume = windowed_volume(path, percentiles)
    image = volume if index is None else np.take(volume, index, axis=axis)
    if image.ndim != 2:
        raise ValueError(f"slice has shape {image.shape}; the image's dimensions changed since it was listed")
    return check_size(np.ascontiguousarray(np.rot90(image), dtype=np.float32))
