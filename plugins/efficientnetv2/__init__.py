"""The paper's evaluator: EfficientNetV2 through timm."""

import augkit
from augkit_plugins.efficientnetv2.classifier import EfficientNetV2

__all__ = ["EfficientNetV2"]


@augkit.hookimpl
def register_classifiers(register):
    register("efficientnetv2", EfficientNetV2)
