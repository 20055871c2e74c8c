"""DICOM files (single- and multi-frame, any folder structure) read through MONAI, as 2-D slices."""

import augkit
from augkit_plugins.dicom.source import Dicom

__all__ = ["Dicom"]


@augkit.hookimpl
def register_datasets(register):
    register("dicom", Dicom)
