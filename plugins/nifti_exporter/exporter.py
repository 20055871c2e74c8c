"""NIfTI exporter: one ``.nii.gz`` per synthetic image, plus manifest.csv.

Layout. Each 2-D image of H rows and W columns becomes a (W, H, 1) volume, stored the way
dcm2niix stores an axial DICOM slice: voxel axis 0 runs along the image's columns (left
to right on screen, i.e. towards the patient's left in radiological display), axis 1
along its rows from the bottom up (towards anterior), so the affine is
``diag(-spacing, spacing, spacing)``, orientation code ``LAS``. ITK-SNAP and 3D Slicer then
show the image upright and unmirrored in their axial view, as a DICOM viewer shows the
same image; nibabel users get the image back with ``np.rot90(data[..., 0])``, which is
also what augkit's own ``nifti`` data source does with a one-slice volume.

Values. ``float32``: the image mapped from [-1, 1] to [0, 1]. ``int16``: 0..32767 with
``scl_slope = 1/32767``, so that ``get_fdata()`` gives the same [0, 1] values for either
dtype (``dataobj.get_unscaled()`` gives the integers). Multi-channel images (the paper's
3-channel generator output is a repeated gray plane) are stored as the mean of their
channels: NIfTI viewers expect one gray value per voxel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
from pydantic import Field
from torch import Tensor

import augkit

INT16_TOP = 32767


def to_unit(images: Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W) float32 in [0, 1]; channels are averaged."""
    return ((images.float().clamp(-1, 1).mean(dim=1) + 1) / 2).numpy()


def to_volume(image: np.ndarray) -> np.ndarray:
    """(H, W) image -> (W, H, 1) voxels: axis 0 = columns, axis 1 = rows from the bottom up."""
    return np.ascontiguousarray(image[::-1].T[:, :, None])


def affine(spacing_mm: float) -> np.ndarray:
    """Voxel -> RAS mm for ``to_volume``'s layout: columns run to the left (-x), rows up (+y)."""
    return np.diag([-spacing_mm, spacing_mm, spacing_mm, 1.0])


def description(class_name: str) -> bytes:
    """The header's ``descrip`` (80 bytes at most, ASCII)."""
    return f"augkit synthetic {class_name}".encode("ascii", "replace")[:80]


class NiftiExporter(augkit.Exporter):
    """Writes ``<out>/<class>/<class>_<n>.nii.gz`` and ``<out>/manifest.csv``."""

    suffix = ".nii.gz"

    class Options(augkit.Exporter.Options):
        dtype: Literal["float32", "int16"] = Field(
            "float32", description="float32 in [0, 1], or int16 0..32767 scaled back to [0, 1] by scl_slope"
        )
        spacing_mm: float = Field(1.0, gt=0, description="voxel size in mm, the same along every axis")

    def image(self, pixels: np.ndarray, class_name: str) -> nib.Nifti1Image:
        """(H, W) float in [0, 1] -> a NIfTI-1 image in ``to_volume``'s layout."""
        o = self.options
        data = to_volume(pixels)
        if o.dtype == "int16":
            data = np.round(data * INT16_TOP).astype(np.int16)
        aff = affine(o.spacing_mm)
        img = nib.Nifti1Image(data, aff)
        header = img.header
        header.set_xyzt_units("mm")
        img.set_qform(aff, code="aligned")  # no scanner space: "aligned" to an arbitrary frame
        img.set_sform(aff, code="aligned")
        header["descrip"] = description(class_name)
        header["cal_min"], header["cal_max"] = 0.0, 1.0  # display range, in scaled values
        if o.dtype == "int16":
            header.set_slope_inter(1.0 / INT16_TOP, 0.0)
        return img

    def pixels(self, images: Tensor) -> np.ndarray:
        return to_unit(images)

    def write_image(self, pixels: np.ndarray, path: Path, *, class_name: str, **_: Any) -> None:
        nib.save(self.image(pixels, class_name), path)

    @classmethod
    def read_image(cls, path: Path) -> np.ndarray:
        """(H, W) float32 in [0, 1] (``get_fdata`` values), undoing ``to_volume``'s layout."""
        x = np.asarray(nib.load(str(path)).dataobj, dtype=np.float32).squeeze()
        return np.rot90(x)  # back from the (x, y) voxel order of the file to image rows and columns
