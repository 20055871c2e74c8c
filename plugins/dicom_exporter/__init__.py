"""Synthetic images as DICOM Secondary Capture files with a provenance manifest."""

import augkit
from augkit_plugins.dicom_exporter.exporter import DicomExporter

__all__ = ["DicomExporter"]


@augkit.hookimpl
def register_exporters(register):
    register("dicom", DicomExporter)
