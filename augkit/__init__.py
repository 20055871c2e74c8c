"""augkit: does class-conditional synthetic data make a diagnostic classifier better?"""

from augkit.extension.hookspecs import hookimpl
from augkit.api import build, run
from augkit.config.recipe import RecipeError, load_recipe
from augkit.extension.registry import PluginError, get_plugin_manager
from augkit.extension.roles import (
    Classifier,
    DataSource,
    Exporter,
    FeatureExtractor,
    Generator,
    LabeledImages,
    Options,
    Preprocessor,
    Sample,
    SyntheticBatch,
)

from augkit.version import __version__

__all__ = [
    "Classifier",
    "DataSource",
    "Exporter",
    "FeatureExtractor",
    "Generator",
    "LabeledImages",
    "Options",
    "PluginError",
    "Preprocessor",
    "RecipeError",
    "Sample",
    "SyntheticBatch",
    "__version__",
    "build",
    "get_plugin_manager",
    "hookimpl",
    "load_recipe",
    "run",
]
