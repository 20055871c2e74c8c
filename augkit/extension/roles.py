"""The roles a plugin can fill: small ABCs, each with a nested, typed ``Options`` model.

Tensor conventions used throughout augkit (and by every default plugin):

* images are ``float32`` tensors of shape ``(N, C, H, W)`` with values in ``[-1, 1]``;
* labels are ``int64`` tensors of shape ``(N,)`` indexing ``classes``.

The whole contract: the core reads a plugin through the members declared here and nothing
else. Per role, what a plugin must implement (abstract), then what it may override (each
with the documented default):

* every role (:class:`Plugin`): a nested ``Options`` model (the recipe's ``options:`` are
  validated against it); built as ``cls(options)``, the instance keeps them as ``options``.
* :class:`DataSource`: ``classes``, ``samples()``; ``fingerprint()``.
* :class:`Preprocessor`: ``__call__(image)``.
* :class:`Generator`: ``fit(train, seed=...)``, ``sample(labels, seed=...)``, ``save(path)``,
  the classmethod ``load(path)``, ``classes``, ``steps_done``; ``version``, ``total_steps``,
  ``device``, ``precision``, ``supports_distributed``, ``check_distributed(world_size)``.
* :class:`Classifier`: ``fit(train, val, seed=...)``, ``predict_proba(images)``;
  ``features(images)``, ``total_epochs``, ``device``, ``precision``, ``supports_distributed``,
  ``check_distributed(world_size)``.
* :class:`FeatureExtractor`: ``features(images)``; ``fit(train, val, seed=...)``,
  ``predict_proba(images)``, ``describe()``, ``trained_classifier``, ``total_steps``, ``classifier_fields``,
  ``supports_distributed``, ``check_distributed(world_size)``.
* :class:`Exporter`: as its docstring says (``suffix`` and ``write_image``, or ``export``).

Anything else a plugin holds is its own business: the core never reads it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor

from augkit.extension.images import LabeledImages, Sample  # noqa: F401  (part of the roles' vocabulary)
from augkit.outputs.manifest import ManifestWriter, SyntheticBatch


class Options(BaseModel):
    """Base of every plugin's options: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Plugin(ABC):
    """Common constructor: every role is built from its validated options.

    The core builds a plugin as ``cls(options)`` (``options`` an instance of ``cls.Options``)
    and reads them back as ``self.options``, e.g. to compare two classifiers' trainings. A
    subclass that takes more in ``__init__`` must still accept exactly that call.
    """

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
    # Plain attributes, not properties, so that a plugin may assign ``self.device = ...`` in
    # ``__init__`` or override either with a property (e.g. one resolving an ``auto`` option).
    device: torch.device = torch.device("cpu")
    """Where ``fit`` trains and ``sample`` runs. The core records it in ``environment.json`` and
    picks the process group's backend from it under torchrun (nccl for CUDA, else gloo) for
    ``augkit run``, ``resume``, ``evaluate`` and ``generate``. Default: the CPU."""
    precision: str = "fp32"
    """The arithmetic ``fit`` and ``sample`` use (e.g. ``"fp32"``, ``"bf16"``): recorded in
    ``environment.json``. Default: ``"fp32"``."""

    @abstractmethod
    def fit(self, train: LabeledImages, *, seed: int) -> Iterator[dict[str, float]]:
        """Train, yielding one log row (``{"step": ..., "d_loss": ...}``) at a time.

        The caller iterates to the end; it may call ``save`` between rows. After ``load``,
        ``fit`` continues from ``steps_done``: its first row is step ``steps_done + 1``. Rows
        with keys besides ``"step"`` carry measurements: the core writes them to ``losses.csv``
        and plots every one named ``loss`` or ``*_loss`` in ``losses.png``.
        """

    @property
    @abstractmethod
    def classes(self) -> list[str]:
        """The class names in label order (label ``i`` is ``classes[i]``).

        Known after ``fit`` (``train.classes``) and after ``load`` (the checkpoint's). The core
        writes them beside every export (``classes.json``, the manifest's class names), and
        ``augkit generate --class NAME`` and ``augkit.pipeline.GeneratorDataset`` look labels
        up in them.
        """

    @property
    @abstractmethod
    def steps_done(self) -> int:
        """Training steps completed, counted as the rows' ``"step"``: 0 before ``fit``, the
        checkpoint's after ``load``.

        ``augkit resume`` loads the last checkpoint and keeps the log rows and checkpoint scores
        up to this step: ``fit`` resumes from it.
        """

    @property
    def total_steps(self) -> int | None:
        """The steps ``fit`` runs in all (the last row's ``"step"``), or None when unknown.

        The total of the core's training progress bar. Default: None (a bar without a total).
        """
        return None

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
    def load(cls, path: Path) -> Generator:
        """Restore a checkpoint. A ``load(cls, path, **overrides)`` also lets ``augkit evaluate --set
        generator.options.X=...`` change a sampling option; raise ``ValueError`` naming an option that
        cannot change once trained (:meth:`refuse_fixed`)."""

    @staticmethod
    def refuse_fixed(path: Path, saved: dict, overrides: dict, fixed: Iterable[str], same=None) -> None:
        """Raise ``ValueError`` naming each of ``fixed`` that ``overrides`` changes from the checkpoint's ``saved``
        options (``same(key, saved_value, new_value)`` compares; default ``==``)."""
        same = same or (lambda key, a, b: a == b)
        keys = sorted(k for k in overrides if k in fixed and not same(k, saved.get(k), overrides[k]))
        if keys:
            had = ", ".join(f"{k}={saved.get(k)!r}" for k in keys)
            raise ValueError(f"{Path(path).name}: {', '.join(keys)} cannot change once trained (the checkpoint has {had})")


class Classifier(Plugin):
    """The evaluator: trained on one regime's data, scored on the real test split."""

    # True: under torchrun, when the study trains each classifier over every process
    # (``evaluation.distribute: ddp``), ``fit`` runs on every rank and trains one model together
    # (e.g. with DDP), every rank ending with the same weights and the same rows. False: each
    # rank trains whole classifiers on its own (``distribute: jobs``); ``fit`` then sees a
    # single process. Either way ``augkit.compute.distributed.world()`` tells ``fit`` which it is.
    supports_distributed: ClassVar[bool] = False
    # Plain attributes, as on Generator: assign them or override them with a property.
    device: torch.device = torch.device("cpu")
    """Where ``fit`` trains and ``predict_proba`` runs: recorded in ``environment.json``.
    Default: the CPU."""
    precision: str = "fp32"
    """The arithmetic ``fit`` and ``predict_proba`` use (e.g. ``"fp32"``, ``"bf16"``): recorded
    in ``environment.json``. Default: ``"fp32"``."""

    @abstractmethod
    def fit(self, train: LabeledImages, val: LabeledImages, *, seed: int, steps: int | None = None
            ) -> Iterator[dict[str, float]]:
        """Train with early stopping on ``val``, yielding one row per epoch.

        ``steps`` (only passed when :meth:`budget_steps` returns a number): train for at most this
        many optimizer steps whatever the size of ``train``, validating at the same points (in the
        same number of rows) as every other training with that budget. None: the plugin's own
        epochs over ``train``.
        """

    @classmethod
    def trains_to_budget(cls) -> bool:
        """Whether the plugin implements :meth:`budget_steps` (and so ``fit(..., steps=...)``)."""
        return cls.budget_steps is not Classifier.budget_steps

    def budget_steps(self, n_images: int) -> int | None:
        """The optimizer steps ``fit`` takes over ``n_images`` images at its most epochs, or None.

        ``evaluation.budget: steps`` (the default) gives every regime of the study the steps this
        returns for the real training split (``fit(..., steps=...)``): larger training sets no longer
        get more optimizer steps. None (the default): the classifier cannot train to a step
        budget, and a recipe must set ``evaluation.budget: epochs``.
        """
        return None

    @property
    def total_epochs(self) -> int | None:
        """The most epochs ``fit`` runs (it may stop early), or None when unknown.

        The total of the progress bar of each of the study's trainings. Default: None.
        """
        return None

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
    # An extractor that trains a classifier plugin and wants the recipe's by default names two of its
    # Options fields, (name field, options field), e.g. ("classifier", "classifier_options"): where
    # a recipe leaves the name field unset it gets the recipe's classifier name, and where it
    # leaves the options field unset (and names that same classifier) the classifier's resolved
    # options. None: the extractor takes nothing from the recipe's classifier.
    classifier_fields: ClassVar[tuple[str, str] | None] = None

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

    @property
    def total_steps(self) -> int | None:
        """The last ``step`` ``fit``'s rows can reach (its progress total), or None when unknown (the default)."""
        return None

    @property
    def trained_classifier(self) -> Classifier | None:
        """The :class:`Classifier` of the recipe's classes that ``fit`` trained, or None.

        It must be trained by ``fit`` alone, on the real training (and validation) split ``fit``
        was given, with the seed it was given (the recipe's). When it is an instance of the
        recipe's classifier plugin with the recipe's classifier options, the study reuses it,
        with ``fit``'s rows, as its real-data run for the first seed instead of training that
        run again. Default: None (this extractor trains no classifier, or has not been fitted).
        """
        return None


class Exporter(Plugin):
    """Writes synthetic images with a provenance manifest.

    The base :meth:`export` is a template: it refuses to overwrite an earlier export
    (``FileExistsError`` when ``manifest.csv`` exists), runs the
    :class:`~augkit.outputs.manifest.ManifestWriter` loop (file names
    ``<class>/<class>_<n><suffix>``, one manifest row per image with its batch's seed, its index
    and audit flags), writes ``classes.json`` and returns the manifest's path. A subclass fills
    in the per-image part:

    * ``suffix`` (required): the files' suffix, e.g. ``".tif"``;
    * ``write_image(pixels, path, *, class_name, number, shared)`` (required): write one image
      to ``path``. Take the keywords it needs and ``**_`` for the rest (more may come):
      ``number`` counts the images of this export from 1, ``shared`` is ``begin_export``'s result;
    * ``pixels(images)``: a batch ``(N, C, H, W)`` in [-1, 1] -> one item per image for
      ``write_image`` (default: the ``(C, H, W)`` tensors themselves);
    * ``begin_export(provenance)``: called once per export, before any file is written; what
      every image of the export shares (default ``None``), e.g. the study all files belong to;
    * ``read_image(path)`` (optional, a classmethod): one of its files back as an array;
      ``augkit.pipeline.SyntheticFolder`` reads each file of an export through the exporter
      whose ``suffix`` the file name ends with.

    An exporter may instead override ``export`` as a whole (its contract is in ``export``'s
    docstring). A class that does neither cannot be built: ``TypeError``.
    """

    suffix: ClassVar[str] = ""

    def __init__(self, options: Options | None = None, **kwargs: Any):
        cls = type(self)
        if cls.export is Exporter.export and (cls.write_image is Exporter.write_image or not cls.suffix):
            raise TypeError(f"{cls.__name__} cannot be built: an Exporter declares suffix and implements "
                            "write_image(pixels, path, ...), or overrides export(batches, classes, out_dir, provenance)")
        super().__init__(options, **kwargs)

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
        shared = self.begin_export(provenance)
        with ManifestWriter(out_dir, provenance) as manifest:
            entries = manifest.entries(batches, classes, self.suffix, self.pixels)
            for number, (pixels, name, path) in enumerate(entries, start=1):
                self.write_image(pixels, path, class_name=name, number=number, shared=shared)
        return manifest.path

    def begin_export(self, provenance: dict[str, Any]) -> Any:
        """What every image of one export shares, passed to ``write_image`` as ``shared``."""
        return None

    def pixels(self, images: Tensor) -> Iterable[Any]:
        """A batch ``(N, C, H, W)`` in [-1, 1] -> what ``write_image`` gets, one item per image."""
        return images

    def write_image(self, pixels: Any, path: Path, *, class_name: str, number: int, shared: Any) -> None:
        """Write one image (``pixels``, an item of ``self.pixels(images)``) to ``path``."""
        raise NotImplementedError(f"{type(self).__name__}.write_image")

    @classmethod
    def read_image(cls, path: Path) -> np.ndarray:
        """One file this exporter wrote -> an ``(H, W)`` or ``(H, W, C)`` float32 array in [0, 1]."""
        raise NotImplementedError(f"{cls.__name__} cannot read its files back: it has no read_image")


ROLES: dict[str, type[Plugin]] = {
    "dataset": DataSource,
    "preprocessor": Preprocessor,
    "generator": Generator,
    "classifier": Classifier,
    "exporter": Exporter,
    "feature_extractor": FeatureExtractor,
}
