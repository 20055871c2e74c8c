"""Synthetic images as NIfTI-1 files (``.nii.gz``) with a provenance manifest."""

import augkit
from augkit_plugins.nifti_exporter.exporter import NiftiExporter

__all__ = ["NiftiExporter"]


@augkit.hookimpl
def register_exporters(register):
    register("nifti", NiftiExporter)
