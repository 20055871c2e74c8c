"""Feature spaces for the audit.

* ``real-classifier`` (default): the penultimate layer of a classifier (by default the
  recipe's own, e.g. EfficientNetV2) trained from scratch on the real training split only.
  A medical feature space that needs no download; being a classifier of the recipe's
  classes, it also checks whether each synthetic image shows the class it was asked for.
* ``small-cnn``: checkpoint selection's judge (four strided convolutions) trained on the real
  training split: a space that learns the classes in seconds on a CPU where the recipe's
  classifier may still be near chance at a small budget. It classifies too.
* ``inception``: Inception-v3's 2,048-d pool features, the space of the usual FID, from a
  torchvision ``inception_v3`` state dict the user has on disk. Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator
from torch import Tensor

import augkit


class RealClassifierFeatures(augkit.FeatureExtractor):
    """A classifier plugin trained on the real training split; its penultimate layer is the feature space."""

    classifier_fields = ("classifier", "classifier_options")  # a recipe's classifier, unless told otherwise

    class Options(augkit.FeatureExtractor.Options):
        classifier: str | None = Field(
            None, description="classifier plugin to train on real data; default: the recipe's classifier "
            "(efficientnetv2 outside a recipe)"
        )
        classifier_options: dict[str, Any] | None = Field(
            None, description="its options; default: the recipe's classifier options (when it is the same plugin)"
        )

        # the classifier plugin, looked up once, by the validator, in the registry it was given
        _classifier_cls: type[augkit.Classifier] | None = PrivateAttr(None)

        @model_validator(mode="after")
        def _valid_classifier(self, info: ValidationInfo):
            # the recipe's registry (load_recipe validates with context={"registry": ...}); outside one, a fresh one
            registry = (info.context or {}).get("registry") or augkit.get_plugin_manager()
            try:
                self._classifier_cls = registry.get("classifier", self.classifier or "efficientnetv2")
            except augkit.PluginError as exc:
                raise ValueError(str(exc)) from None
            self.build_classifier()  # unknown plugin or bad options fail with the recipe, not mid-run
            return self

        def build_classifier(self) -> augkit.Classifier:
            cls = self._classifier_cls
            if cls is None:  # built without validation (model_construct)
                cls = augkit.get_plugin_manager().get("classifier", self.classifier or "efficientnetv2")
            try:
                return cls(cls.Options.model_validate(self.classifier_options or {}))
            except ValidationError as exc:  # name the nested key: classifier_options.epochs, not epochs
                raise ValueError("; ".join(
                    f"classifier_options.{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})"
                    for e in exc.errors())) from None

    def __init__(self, options=None, **kwargs):
        super().__init__(options, **kwargs)
        self._classifier: augkit.Classifier | None = None
        self._trained_on = 0

    @property
    def trained_classifier(self) -> augkit.Classifier | None:
        """The classifier ``fit`` trained (on the training split it was given, with its seed), or None before."""
        return self._classifier

    @property
    def supports_distributed(self) -> bool:  # as its classifier
        return getattr(type(self.options.build_classifier()), "supports_distributed", False)

    def check_distributed(self, world_size: int) -> None:
        self.options.build_classifier().check_distributed(world_size)

    @property
    def total_steps(self) -> int | None:  # its classifier's rows count epochs
        return self.options.build_classifier().total_epochs

    def fit(self, train: augkit.LabeledImages, val: augkit.LabeledImages, *, seed: int) -> Iterator[dict[str, float]]:
        classifier = self.options.build_classifier()
        yield from classifier.fit(train, val, seed=seed)
        self._classifier, self._trained_on = classifier, len(train)

    def _trained(self) -> augkit.Classifier:
        if self._classifier is None:
            raise RuntimeError("real-classifier: fit() on real training images before computing features")
        return self._classifier

    def features(self, images: Tensor) -> Tensor:
        return self._trained().features(images).float()

    def predict_proba(self, images: Tensor) -> Tensor:
        return self._trained().predict_proba(images)

    def describe(self) -> str:
        name = self.options.classifier or "efficientnetv2"
        return (f"penultimate layer of {name} trained from scratch on the {self._trained_on} real training images "
                "only (no pretrained weights, nothing downloaded)")


class SmallCNNFeatures(augkit.FeatureExtractor):
    """Checkpoint selection's judge (``augkit.stages.selection.train_judge``) trained on the real training split."""

    class Options(augkit.FeatureExtractor.Options):
        steps: int = Field(1000, ge=1, description="training steps at batch 32 (cosine-annealed learning rate); "
                           "about 12 s at 56 px on 2 CPU cores")

    def __init__(self, options=None, **kwargs):
        super().__init__(options, **kwargs)
        self._judge = None
        self._trained_on, self._balanced = 0, float("nan")

    @property
    def total_steps(self) -> int:  # one row, at the end
        return self.options.steps

    def fit(self, train: augkit.LabeledImages, val: augkit.LabeledImages, *, seed: int) -> Iterator[dict[str, float]]:
        from augkit.stages.selection import train_judge

        self._judge, self._balanced = train_judge(train, val, seed=seed, steps=self.options.steps)
        self._trained_on = len(train)
        yield {"step": self.options.steps, "val_balanced_accuracy": self._balanced}

    def _trained(self):
        if self._judge is None:
            raise RuntimeError("small-cnn: fit() on real training images before computing features")
        return self._judge

    def features(self, images: Tensor) -> Tensor:  # Judge.embed: eval mode, inference mode, batches of 256
        return self._trained().embed(images.float())[0]

    @torch.inference_mode()
    def predict_proba(self, images: Tensor) -> Tensor:
        return self._trained().head(self.features(images)).softmax(1)

    def describe(self) -> str:
        return (f"pooled features of a 4-layer CNN (checkpoint selection's judge) trained from scratch on the "
                f"{self._trained_on} real training images only ({self._balanced:.0%} balanced on real validation images)")


class InceptionFeatures(augkit.FeatureExtractor):
    """Inception-v3 pool features (2,048-d) from a local torchvision state dict."""

    class Options(augkit.FeatureExtractor.Options):
        weights: Path = Field(
            description="a torchvision inception_v3 state dict (.pth) on disk, e.g. the ImageNet weights saved "
            "once with torch.save(model.state_dict(), path); nothing is downloaded"
        )
        batch_size: int = Field(32, ge=1, description="images per forward pass")

        @field_validator("weights")
        @classmethod
        def _exists(cls, v: Path) -> Path:
            if not Path(v).is_file():
                raise ValueError(f"{v}: no such file; give the path of a local inception_v3 state dict")
            return v

    def __init__(self, options=None, **kwargs):
        super().__init__(options, **kwargs)
        self._model: torch.nn.Module | None = None

    def model(self) -> torch.nn.Module:
        if self._model is None:
            from torchvision.models import inception_v3

            path = self.options.weights
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise ValueError(f"{path}: not a readable PyTorch state dict ({exc})") from None
            state = state.get("state_dict", state) if isinstance(state, dict) else state
            if not isinstance(state, dict):
                raise ValueError(f"{path}: expected a state dict (a mapping of tensors), got {type(state).__name__}")
            aux = any(k.startswith("AuxLogits.") for k in state)
            model = inception_v3(weights=None, aux_logits=aux, init_weights=False, transform_input=False)
            missing, unexpected = model.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ValueError(f"{path}: not an inception_v3 state dict: {len(missing)} missing tensors "
                                 f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})")
            model.fc = torch.nn.Identity()
            self._model = model.eval()
        return self._model

    @torch.inference_mode()
    def features(self, images: Tensor) -> Tensor:
        model = self.model()
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        out = []
        for i in range(0, len(images), self.options.batch_size):
            x = images[i : i + self.options.batch_size].float()
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
            x = F.interpolate((x + 1) / 2, size=(299, 299), mode="bilinear", align_corners=False, antialias=True)
            out.append(model((x - mean) / std))
        return torch.cat(out)

    def describe(self) -> str:
        return f"Inception-v3 pool features (2,048-d) from the local weights file {Path(self.options.weights).name}"


class PixelFeatures(augkit.FeatureExtractor):
    """Average-pooled pixels: a fixed, training-free feature space (a baseline; it does not classify)."""

    class Options(augkit.FeatureExtractor.Options):
        size: int = Field(16, ge=2, le=256, description="images are average-pooled to size x size before flattening")

    @torch.inference_mode()
    def features(self, images: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(images.float(), self.options.size).flatten(1)

    def describe(self) -> str:
        s = self.options.size
        return f"pixels average-pooled to {s} x {s} (fixed; no training, no label check)"
