"""Per-class mean images learnt by a few seeded steps, plus seeded noise.

It implements the Generator role's abstract members (``fit``, ``sample``, ``save``, ``load``,
``classes``, ``steps_done``) and an ``Options`` model, and nothing else: every other member
the core reads (``version``, ``total_steps``, ``device``, ``precision``,
``supports_distributed``, ...) is the role's default. A run with it shows that the roles
module holds the whole contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from pydantic import Field
from torch import Tensor

import augkit

FORMAT = "augkit-test-minimal-1"


class MinimalGenerator(augkit.Generator):
    """Learns each class's mean image from seeded batches; samples it plus seeded Gaussian noise."""

    class Options(augkit.Generator.Options):
        steps: int = Field(30, ge=1, description="training steps (one seeded batch each)")
        batch_size: int = Field(8, ge=1, description="images per step")
        lr: float = Field(0.3, gt=0, le=1, description="how far a step moves a class mean towards its batch mean")
        noise: float = Field(0.1, ge=0, description="standard deviation of the noise added to a sampled mean")

    def __init__(self, options: Options | None = None, **kwargs):
        super().__init__(options, **kwargs)
        self._classes: list[str] = []
        self._step = 0
        self._means: Tensor | None = None  # (n_classes, C, H, W)
        self._rng = torch.Generator()

    @property
    def classes(self) -> list[str]:
        return list(self._classes)

    @property
    def steps_done(self) -> int:
        return self._step

    def fit(self, train: augkit.LabeledImages, *, seed: int) -> Iterator[dict[str, float]]:
        o = self.options
        if self._means is None:  # a fresh start; after load, training continues where it stopped
            self._classes = list(train.classes)
            self._means = torch.zeros(len(self._classes), *train.images.shape[1:])
            self._rng.manual_seed(seed)
        while self._step < o.steps:
            idx = torch.randint(len(train), (o.batch_size,), generator=self._rng)
            images, labels = train.images[idx], train.labels[idx]
            loss = (images - self._means[labels]).pow(2).mean().item()
            for c in labels.unique().tolist():
                self._means[c] += o.lr * (images[labels == c].mean(0) - self._means[c])
            self._step += 1
            yield {"step": self._step, "loss": loss}

    def sample(self, labels: Tensor, *, seed: int) -> Tensor:
        if self._means is None:
            raise RuntimeError("minimal: fit() or load() before sampling")
        means = self._means[labels.long()]
        noise = torch.randn(means.shape, generator=torch.Generator().manual_seed(seed))
        return (means + self.options.noise * noise).clamp(-1, 1)

    def save(self, path: Path) -> None:
        torch.save({"format": FORMAT, "options": self.options.model_dump(), "classes": self._classes,
                    "step": self._step, "means": self._means, "rng": self._rng.get_state()}, path)

    @classmethod
    def load(cls, path: Path) -> MinimalGenerator:
        blob = torch.load(path, weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError(f"{path} is not a minimal-generator checkpoint")
        self = cls(cls.Options.model_validate(blob["options"]))
        self._classes, self._step, self._means = blob["classes"], blob["step"], blob["means"]
        self._rng.set_state(blob["rng"])
        return self
