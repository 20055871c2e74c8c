"""Audit feature extractors: a classifier trained on the real training split, Inception-v3 from a local file, pixels."""

import augkit
from augkit_plugins.features.extractors import InceptionFeatures, PixelFeatures, RealClassifierFeatures

__all__ = ["InceptionFeatures", "PixelFeatures", "RealClassifierFeatures"]


@augkit.hookimpl
def register_feature_extractors(register):
    register("real-classifier", RealClassifierFeatures)
    register("inception", InceptionFeatures)
    register("pixels", PixelFeatures)
