"""The hook specifications: augkit's whole extension surface.

A plugin is a module (found through the ``augkit`` entry-point group) that implements
one or more of these hooks. Implementations may accept fewer arguments than the spec,
so a spec can grow without breaking plugins::

    import augkit

    @augkit.hookimpl
    def register_generators(register):
        register("my-gan", MyGAN)
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("augkit")
hookimpl = pluggy.HookimplMarker("augkit")


@hookspec
def register_datasets(register: Callable[[str, type], None]) -> None:
    """Add data sources by name: call ``register("chest-phantom", ChestPhantom)`` once per class.

    Each class subclasses :class:`augkit.DataSource`.
    """


@hookspec
def register_preprocessors(register: Callable[[str, type], None]) -> None:
    """Add preprocessors by name; each class subclasses :class:`augkit.Preprocessor`."""


@hookspec
def register_generators(register: Callable[[str, type], None]) -> None:
    """Add generators by name: call ``register("acgan", ACGAN)`` once per class.

    Each class subclasses :class:`augkit.Generator`.
    """


@hookspec
def register_classifiers(register: Callable[[str, type], None]) -> None:
    """Add classifiers (evaluators) by name; each subclasses :class:`augkit.Classifier`."""


@hookspec
def register_exporters(register: Callable[[str, type], None]) -> None:
    """Add exporters by name; each class subclasses :class:`augkit.Exporter`."""


@hookspec
def register_feature_extractors(register: Callable[[str, type], None]) -> None:
    """Add audit feature extractors by name; each class subclasses :class:`augkit.FeatureExtractor`."""
