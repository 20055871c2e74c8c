"""The paper's preprocessing (section 3.2), registered as the ``paper`` preprocessor."""

import augkit

from .pipeline import PaperPreprocessor

__all__ = ["PaperPreprocessor"]


@augkit.hookimpl
def register_preprocessors(register):
    register("paper", PaperPreprocessor)
