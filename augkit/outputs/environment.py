"""environment.json: what a run ran on (Python, packages, accelerator), what ``auto`` resolved to, which plugins."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

import torch

from augkit.compute import accel
from augkit.config.recipe import ResolvedRecipe
from augkit.version import __version__

PACKAGES = ("torch", "torchvision", "timm", "monai", "numpy", "scikit-image", "pydantic")


def environment(resolved: ResolvedRecipe) -> dict:
    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "augkit": __version__,
        "packages": {p: version(p) for p in PACKAGES},
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "accelerator": accel.describe(),
        "resolved": resolved_compute(resolved),
        "plugins": [i.as_dict() for i in resolved.registry.all()],  # the plugins this recipe was resolved with
    }


def resolved_compute(resolved: ResolvedRecipe) -> dict:
    """Per network-training plugin, the device and precision that ``auto`` resolved to on this machine."""
    out = {}
    for section in ("generator", "classifier"):
        plugin = resolved.build(section)
        out[section] = {"device": str(plugin.device), "precision": str(plugin.precision)}
    return out
