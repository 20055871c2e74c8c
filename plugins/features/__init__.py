"""Audit feature extractors: a classifier or a small CNN trained on the real training split, Inception-v3 from a local file, pixels."""

import augkit
from augkit_plugins.features.extractors import InceptionFeatures, PixelFeatures, RealClassifierFeatures, SmallCNNFeatures

__all__ = ["InceptionFeatures", "PixelFeatures", "RealClassifierFeatures", "SmallCNNFeatures"]


@augkit.hookimpl
def register_feature_extractors(register):
    register("real-classifier", RealClassifierFeatures)
    register("small-cnn", SmallCNNFeatures)
    register("inception", InceptionFeatures)
    register("pixels", PixelFeatures)
