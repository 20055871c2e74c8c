"""Any class-per-folder tree of ordinary image files (JPEG, PNG, BMP, TIFF)."""

import augkit
from augkit_plugins.image_folder.source import ImageFolder

__all__ = ["ImageFolder"]


@augkit.hookimpl
def register_datasets(register):
    register("image-folder", ImageFolder)
