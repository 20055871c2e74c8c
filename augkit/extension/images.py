"""The data every role exchanges: a sample as a data source yields it, and a preprocessed image set.

* images are ``float32`` tensors of shape ``(N, C, H, W)`` with values in ``[-1, 1]``;
* labels are ``int64`` tensors of shape ``(N,)`` indexing ``classes``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Sample:
    """One image as a data source yields it.

    ``group`` is the patient (or any unit that must not straddle splits). It is used for
    grouping only and never written to an output. ``key`` is a stable, non-identifying
    string used for caching and for naming skipped files in reports.
    """

    load: Callable[[], np.ndarray]  # () -> (H, W) or (H, W, C), any dtype
    label: int
    group: str
    key: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class LabeledImages:
    """An in-memory, preprocessed image set: what generators and classifiers train on."""

    images: Tensor  # (N, C, H, W) float32 in [-1, 1]
    labels: Tensor  # (N,) int64
    classes: list[str]
    groups: list[str] | None = None  # patient id per image, grouping only

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(C, H, W) of every image."""
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: Tensor | np.ndarray | list[int]) -> LabeledImages:
        index = torch.as_tensor(index, dtype=torch.long)
        groups = None if self.groups is None else [self.groups[i] for i in index.tolist()]
        return LabeledImages(self.images[index], self.labels[index], self.classes, groups)

    def counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=len(self.classes)).tolist()

    @staticmethod
    def concat(parts: Iterable[LabeledImages]) -> LabeledImages:
        parts = list(parts)
        groups = None
        if all(p.groups is not None for p in parts):
            groups = [g for p in parts for g in p.groups]  # type: ignore[union-attr]
        return LabeledImages(
            torch.cat([p.images for p in parts]),
            torch.cat([p.labels for p in parts]),
            parts[0].classes,
            groups,
        )
