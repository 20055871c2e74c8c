"""Synthetic images as PNG files with a provenance manifest."""

import augkit
from augkit_plugins.png_exporter.exporter import PNGExporter

__all__ = ["PNGExporter"]


@augkit.hookimpl
def register_exporters(register):
    register("png", PNGExporter)
