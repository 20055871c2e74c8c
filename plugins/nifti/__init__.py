"""NIfTI volumes (.nii, .nii.gz) read through MONAI, as 2-D slices."""

import augkit
from augkit_plugins.nifti.source import Nifti

__all__ = ["Nifti"]


@augkit.hookimpl
def register_datasets(register):
    register("nifti", Nifti)
