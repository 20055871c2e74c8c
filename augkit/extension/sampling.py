"""What the core checks of a generator's output wherever it samples: a broken plugin is named, not a traceback.

``augkit.testing.check_generator`` checks the same contract on tiny data before a plugin is
used; these checks catch what a plugin does on real data (a scale of [0, 255], NaN after
training, a wrong class list) at the first sample, with the plugin and the broken rule named.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from augkit.extension.roles import Generator

TOLERANCE = 1e-3  # rounding of a network's last tanh in bf16 or on a GPU: not a broken contract

CONTRACT = ("a float32 (N, C, H, W) tensor in [-1, 1], one image per label (`augkit.testing.check_generator` "
            "checks a plugin against it)")


class GeneratorOutputError(ValueError):
    """A generator broke its contract: what came back, and the generator, are named."""


def sample_checked(generator: Generator, labels: Tensor, *, seed: int, shape: Sequence[int] | None = None,
                   finite: bool = True) -> Tensor:
    """``generator.sample(labels, seed=seed)``, checked against the contract (and ``shape``, (C, H, W), if given).

    ``finite=False`` lets NaN through: a checkpoint's score and grid, where a diverged checkpoint is
    recorded as such and never chosen, rather than the run stopped.
    """
    if labels.ndim != 1:
        raise ValueError(f"labels of shape {tuple(labels.shape)}: give a 1-d tensor, one class label per image")
    images = generator.sample(labels, seed=seed)
    name = type(generator).__name__

    def broken(what: str) -> GeneratorOutputError:
        return GeneratorOutputError(f"generator {name}: sample({len(labels)} labels, seed={seed}) {what}; the "
                                    f"contract is {CONTRACT}")

    if not isinstance(images, Tensor):
        raise broken(f"returned a {type(images).__name__}, not a torch.Tensor")
    if images.dtype != torch.float32:
        raise broken(f"returned {images.dtype} images")
    if images.ndim != 4 or images.shape[0] != len(labels):
        raise broken(f"returned shape {tuple(images.shape)}")
    if shape is not None and tuple(images.shape[1:]) != tuple(shape):
        raise broken(f"returned images of shape {tuple(images.shape[1:])} where the data's are {tuple(shape)} "
                     "(check the generator's image_size and channels options)")
    ok = torch.isfinite(images)
    if finite and not ok.all():
        raise broken(f"returned {int((~ok).sum())} NaN or infinite values: its training diverged (a lower learning "
                     "rate, or precision: fp32, may hold it)")
    values = images[ok]
    if values.numel() and (values.min() < -1 - TOLERANCE or values.max() > 1 + TOLERANCE):
        raise broken(f"returned values in [{values.min().item():.4g}, {values.max().item():.4g}]")
    return images


def check_classes(generator: Generator, classes: Sequence[str]) -> None:
    """A generator trained on ``classes`` reports them, in that order (labels index them in every export)."""
    got = list(generator.classes)
    if got != list(classes):
        raise GeneratorOutputError(f"generator {type(generator).__name__}: classes is {got} after training on "
                                   f"{list(classes)}; the contract is the training data's classes, in label order "
                                   "(train.classes)")
