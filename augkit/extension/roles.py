"""The roles a plugin can fill: small ABCs, each with a nested, typed ``Options`` model.

Tensor conventions used throughout augkit (and by every default plugin):

* images are ``float32`` tensors of shape ``(N, C, H, W)`` with values in ``[-1, 1]``;
* labels are ``int64`` tensors of shape ``(N,)`` indexing ``classes``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor


class Options(BaseModel):
    """Base of every plugin's options: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


class Plugin(ABC):
    """Common constructor: every role is built from its validated options."""

    class Options(Options):
        pass

    def __init__(self, options: Options | None = None, **kwargs: Any):
        if options is None:
            options = self.Options(**kwargs)
        elif kwargs:  # re-validate: model_copy(update=...) would skip the checks
            options = type(options).model_validate({**options.model_dump(), **kwargs})
        self.options = options


class DataSource(Plugin):
    """Yields labelled samples (an image loader, a class label, a patient id)."""

    @property
    @abstractmethod
    def classes(self) -> list[str]: ...

    @abstractmethod
    def samples(self) -> Iterator[Sample]: ...

    def fingerprint(self) -> str:
        """A string that changes whenever the data would change: the cache key's data part.

        File-based sources should include file content hashes; the default covers
        procedurally generated sources, which are a function of their options alone.
        """
        return self.options.model_dump_json()


class Preprocessor(Plugin):
    """A deterministic image -> tensor step."""

    class Options(Options):
        image_size: int = 112
        channels: int = 1

    @abstractmethod
    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W) or (H, W, C) of any dtype -> (channels, image_size, image_size) float32 in [-1, 1]."""


class Generator(Plugin):
    """Learns p(image | label) from real images and samples new ones."""

    version: ClassVar[str] = "0"
    # True: under torchrun, ``fit`` runs on every rank and trains one model together (e.g. with
    # DDP), leaving identical weights on every rank (docs/distributed.md). False: augkit refuses
    # a multi-process run rather than train N separate models.
    supports_distributed: ClassVar[bool] = False

    @abstractmethod
    def fit(self, train: LabeledImages, *, seed: int) -> Iterator[dict[str, float]]:
        """Train, yielding one log row (``{"step": ..., "d_loss": ...}``) at a time.

        The caller iterates to the end; it may call ``save`` between rows.
        """

    def check_distributed(self, world_size: int) -> None:
        """Raise (naming the option) if these options cannot train over ``world_size`` processes.

        Called before any work in a multi-process run, when ``supports_distributed`` is True.
        """

    @abstractmethod
    def sample(self, labels: Tensor, *, seed: int) -> Tensor:
        """(N,) int64 -> (N, C, H, W) float32 in [-1, 1]; the same seed gives the same images."""

    @abstractmethod
    def save(self, path: Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, path: Path) -> Generator: ...


class Classifier(Plugin):
    """The evaluator: trained on one regime's data, scored on the real test split."""

    # True: under torchrun, when the study trains each classifier over every process
    # (``evaluation.distribute: ddp``), ``fit`` runs on every rank and trains one model together
    # (e.g. with DDP), every rank ending with the same weights and the same rows. False: each
    # rank trains whole classifiers on its own (``distribute: jobs``); ``fit`` then sees a
    # single process. Either way ``augkit.compute.distributed.world()`` tells ``fit`` which it is.
    supports_distributed: ClassVar[bool] = False

    @abstractmethod
    def fit(self, train: LabeledImages, val: LabeledImages, *, seed: int) -> Iterator[dict[str, float]]:
        """Train with early stopping on ``val``, yielding one row per epoch."""

    def check_distributed(self, world_size: int) -> None:
        """Raise (naming the option) if these options cannot train over ``world_size`` processes.

        Called before any work when the study will train classifiers over several processes.
        """

    @abstractmethod
    def predict_proba(self, images: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, n_classes) class probabilities."""

    def features(self, images: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, D): the penultimate layer, the audit's default feature space.

        Optional: a classifier without it cannot serve as the ``real-classifier`` feature
        extractor (the audit then needs another extractor).
        """
        raise NotImplementedError(f"{type(self).__name__} does not expose features(); "
                                  "choose another feature_extractor for the audit")


class FeatureExtractor(Plugin):
    """Maps images to feature vectors for the audit (Frechet distance, KID, PRDC, copies).

    ``fit`` sees real training (and validation) images only; extractors with fixed weights
    ignore it. An extractor that is also a classifier of the recipe's classes exposes
    ``predict_proba``, which the audit then uses to check label faithfulness.
    """

    # True: under torchrun, when the study trains its classifiers over every process
    # (``evaluation.distribute`` resolves to ddp), ``fit`` runs on every rank and trains one
    # model together, as a ``Classifier`` with ``supports_distributed`` does. False: rank 0
    # fits alone (``fit`` then sees a single process) while the others wait.
    supports_distributed: ClassVar[bool] = False

    def fit(self, train: LabeledImages, val: LabeledImages, *, seed: int) -> Iterator[dict[str, float]]:
        """Train on real images, yielding log rows (none for fixed extractors)."""
        return iter(())

    def check_distributed(self, world_size: int) -> None:
        """Raise ``DistributedError`` if these options cannot fit over ``world_size`` processes (rank 0 then fits alone)."""

    @abstractmethod
    def features(self, images: Tensor) -> Tensor:
        """(N, C, H, W) in [-1, 1] -> (N, D) float32."""

    def predict_proba(self, images: Tensor) -> Tensor | None:
        """(N, C, H, W) -> (N, n_classes), or None if this extractor does not classify."""
        return None

    def describe(self) -> str:
        """One sentence for the report: what feature space this is and what it was trained on."""
        return type(self).__name__


class SyntheticBatch(NamedTuple):
    """Synthetic images as the runner hands them to an exporter.

    ``seed`` generated the batch; ``index[i]`` is image i's position in that batch (with the
    checkpoint, (seed, index) reproduces the image: positions can skip when the audit dropped
    images); ``flags[i]`` are its audit flags (empty when it passed or no audit ran).
    """

    images: Tensor  # (N, C, H, W) float32 in [-1, 1]
    labels: Tensor  # (N,) int64
    seed: int
    index: list[int] | None = None  # default: 0 .. N-1
    flags: list[tuple[str, ...]] | None = None  # default: no flags

    @classmethod
    def of(cls, batch: SyntheticBatch | tuple) -> SyntheticBatch:
        """Accept a SyntheticBatch or a plain ``(images, labels, seed)`` triple; fill the defaults."""
        b = batch if isinstance(batch, SyntheticBatch) else cls(*batch)
        n = len(b.labels)
        index = list(range(n)) if b.index is None else [int(i) for i in b.index]
        flags = [()] * n if b.flags is None else [tuple(f) for f in b.flags]
        if len(index) != n or len(flags) != n:
            raise ValueError(f"a batch of {n} images with {len(index)} indexes and {len(flags)} flag sets")
        return cls(b.images, b.labels, int(b.seed), index, flags)


class Exporter(Plugin):
    """Writes synthetic images with a provenance manifest."""

    @abstractmethod
    def export(
        self,
        batches: Iterable[SyntheticBatch | tuple[Tensor, Tensor, int]],
        classes: list[str],
        out_dir: Path,
        provenance: dict[str, Any],
    ) -> Path:
        """Write every batch (a :class:`SyntheticBatch` or an (images, labels, seed) triple) into ``out_dir``.

        Read each through ``SyntheticBatch.of(batch)`` and record ``seed``, ``index[i]`` and
        ``flags[i]`` per image in the manifest: ``augkit.outputs.manifest.ManifestWriter.entries`` does both.

        Returns the path of ``manifest.csv``; never overwrites an earlier export.
        """


ROLES: dict[str, type[Plugin]] = {
    "dataset": DataSource,
    "preprocessor": Preprocessor,
    "generator": Generator,
    "classifier": Classifier,
    "exporter": Exporter,
    "feature_extractor": FeatureExtractor,
}
