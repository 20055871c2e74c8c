"""Every plugin name the core uses, in one table: the only module of ``augkit/`` that names a plugin.

The core works with roles, never with particular plugins; where it needs a plugin the user did not
name, it takes it from here (tests/test_core_boundary.py holds every other module to that).
"""

from __future__ import annotations

# The paper's plugins, by recipe section: used when a recipe leaves a section out or gives options
# without a name, and by the commands that stand outside a recipe (``augkit generate``'s generator
# and exporter, ``augkit audit``'s preprocessor, feature extractor and the classifier it trains).
DEFAULT_PLUGINS: dict[str, str] = {
    "preprocessor": "paper",
    "generator": "acgan",
    "exporter": "png",
    "classifier": "efficientnetv2",
    "feature_extractor": "real-classifier",
}

# The dataset plugin that reads a class-per-folder tree of image files (``augkit audit``'s folders).
FOLDER_DATASET = "image-folder"
