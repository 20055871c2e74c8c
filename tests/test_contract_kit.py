"""augkit.testing: every default plugin passes its contract check; broken plugins fail with a clear message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ConfigDict

import augkit
from augkit.testing import (
    ContractError,
    check_classifier,
    check_dataset,
    check_exporter,
    check_generator,
    check_preprocessor,
)
from augkit_plugins.acgan import ACGAN
from augkit_plugins.dicom import Dicom
from augkit_plugins.dicom.testing import write_dicom
from augkit_plugins.efficientnetv2 import EfficientNetV2
from augkit_plugins.image_folder import ImageFolder
from augkit_plugins.kaggle_chest_xray import KaggleChestXray
from augkit_plugins.nifti import Nifti
from augkit_plugins.paper_preprocessing import PaperPreprocessor
from augkit_plugins.phantoms import BrainPhantom, ChestPhantom
from augkit_plugins.png_exporter import PNGExporter
from test_image_folder import write_image
from test_kaggle_chest_xray import write_jpeg
from test_nifti import blob_volume, write_nifti

# --- the default plugins ------------------------------------------------------------------


def test_acgan():
    check_generator(ACGAN, image_size=16, width=8, iterations=3, batch_size=4, log_every=2)


def test_efficientnetv2():
    check_classifier(EfficientNetV2, variant="test_efficientnet", epochs=1, image_size=16, batch_size=8)


@pytest.mark.parametrize("options", [{"image_size": 32}, {"image_size": 16, "channels": 3, "modality": "mri"}])
def test_paper_preprocessor(options):
    check_preprocessor(PaperPreprocessor, **options)


@pytest.mark.parametrize("bits", [8, 16])
def test_png_exporter(tmp_path, bits):
    check_exporter(PNGExporter, tmp_path, bits=bits)


def test_phantoms():
    check_dataset(ChestPhantom, counts={"normal": 2, "bacteria": 1, "virus": 1}, image_size=32)
    check_dataset(BrainPhantom(counts={"tumor": 1, "no_tumor": 2}, image_size=32))  # an instance works too


def test_image_folder(tmp_path):
    for i, name in enumerate(["yes/a.png", "yes/b.jpg", "no/c.png"]):
        write_image(tmp_path / name, seed=i)
    check_dataset(ImageFolder, root=tmp_path)


def test_kaggle_chest_xray(tmp_path):
    names = ["NORMAL/IM-0001-0001.jpeg", "PNEUMONIA/person1_bacteria_1.jpeg", "PNEUMONIA/person2_virus_3.jpeg"]
    for i, name in enumerate(names):
        write_jpeg(tmp_path / "chest_xray" / "train" / name, seed=i)
    check_dataset(KaggleChestXray, root=tmp_path / "chest_xray", splits=["train"])


def test_dicom(tmp_path):
    write_dicom(tmp_path / "lung" / "p1" / "a.dcm", np.arange(256, dtype=np.uint16).reshape(16, 16), Modality="CT")
    write_dicom(tmp_path / "brain" / "p2" / "b.dcm", np.full((16, 16), 300, np.int16), Modality="MR")
    check_dataset(Dicom, root=tmp_path)


def test_nifti(tmp_path):
    write_nifti(tmp_path / "control" / "sub-01.nii.gz", blob_volume())
    write_nifti(tmp_path / "tumor" / "sub-02.nii.gz", blob_volume()[..., ::-1].copy())
    check_dataset(Nifti, root=tmp_path, central=1)


# --- broken plugins fail, naming the plugin, the check and the difference -------------------


class TinyGAN(augkit.Generator):
    """A correct toy generator: class means plus seeded noise."""

    version = "1"
    classes = ["a", "b", "c"]  # the role's classes and steps_done as plain attributes: the contract kit's classes
    steps_done = 0

    class Options(augkit.Generator.Options):
        image_size: int = 8
        channels: int = 1
        iterations: int = 2

    def fit(self, train, *, seed=0):
        self.mean = torch.stack([train.images[train.labels == c].mean(0) for c in range(len(train.classes))])
        for step in range(1, self.options.iterations + 1):
            self.steps_done = step
            yield {"step": step, "loss": 0.5}

    def sample(self, labels, *, seed):
        noise = torch.randn(len(labels), *self.mean.shape[1:], generator=torch.Generator().manual_seed(seed))
        return (self.mean[labels] + 0.1 * noise).clamp(-1, 1)

    def save(self, path):
        torch.save({"options": self.options.model_dump(), "mean": self.mean, "steps_done": self.steps_done}, path)

    @classmethod
    def load(cls, path):
        blob = torch.load(path)
        gan = cls(**blob["options"])
        gan.mean, gan.steps_done = blob["mean"], blob["steps_done"]
        return gan


def test_a_correct_toy_generator_passes():
    check_generator(TinyGAN, image_size=8)


class IgnoresSeed(TinyGAN):
    def sample(self, labels, *, seed):
        return super().sample(labels, seed=0)


class OutOfRange(TinyGAN):
    def sample(self, labels, *, seed):
        return super().sample(labels, seed=seed) * 3


class UnseededFit(TinyGAN):
    def fit(self, train, *, seed=0):  # noise in training that the seed does not fix
        yield from super().fit(train, seed=seed)
        self.mean = self.mean + 0.01 * torch.randn(self.mean.shape)


class FloatSteps(TinyGAN):
    def fit(self, train, *, seed=0):
        for row in super().fit(train, seed=seed):
            yield {**row, "step": float(row["step"])}


class LosesWeights(TinyGAN):
    @classmethod
    def load(cls, path):
        gan = super().load(path)
        gan.mean = torch.zeros_like(gan.mean)
        return gan


class StepsNotCounted(TinyGAN):  # augkit resume would keep no log row and start training again
    def fit(self, train, *, seed=0):
        yield from super().fit(train, seed=seed)
        self.steps_done = 0


class StepsNotSaved(TinyGAN):
    @classmethod
    def load(cls, path):
        gan = super().load(path)
        gan.steps_done = 0
        return gan


class IgnoresLabels(TinyGAN):
    def sample(self, labels, *, seed):
        return super().sample(torch.zeros_like(labels), seed=seed)


class OtherClasses(TinyGAN):
    classes = ["x"]


class AllowsExtra(TinyGAN):
    class Options(TinyGAN.Options):
        model_config = ConfigDict(extra="allow")


@pytest.mark.parametrize(
    "cls, message",
    [
        (IgnoresSeed, r"IgnoresSeed: sample is seeded: expected different images for seeds 0 and 1; got identical"),
        (OutOfRange, r"OutOfRange: sample\(labels, seed=0\): expected values in \[-1, 1\]; got values in \[-3"),
        (UnseededFit, r"UnseededFit: a second instance fitted with the same seed: expected the same samples"),
        (FloatSteps, r'FloatSteps: fit\(train, seed=0\): expected every row to have an int "step"; got row 0'),
        (LosesWeights, r"LosesWeights: save\(path\), then cls.load\(path\).*: expected the images the saved"),
        (AllowsExtra, r"AllowsExtra: Options forbids unknown keys: expected a ValidationError"),
        (StepsNotCounted, r"StepsNotCounted: steps_done after fit: expected the last row's step, 2; got 0"),
        (StepsNotSaved, r"StepsNotSaved: cls.load\(path\).steps_done: expected the saved generator's, 2; got 0"),
        (IgnoresLabels, r"IgnoresLabels: sample follows labels: expected different images for labels 0 and 2"),
        (OtherClasses, r"OtherClasses: classes after fit\(train\): expected train.classes, \['a', 'b', 'c'\]"),
    ],
)
def test_broken_generators_fail_clearly(cls, message):
    with pytest.raises(ContractError, match=message):
        check_generator(cls)


def test_the_error_is_an_assertion_error_and_the_rng_is_left_alone():
    torch.manual_seed(7)
    state = torch.get_rng_state()
    with pytest.raises(AssertionError):
        check_generator(IgnoresSeed)
    assert torch.equal(torch.get_rng_state(), state)


def test_not_a_plugin_class():
    with pytest.raises(ContractError, match="dict: class: expected a subclass of augkit.Generator"):
        check_generator(dict)


class CentreClassifier(augkit.Classifier):
    """A correct toy classifier: nearest class mean."""

    def fit(self, train, val, *, seed=0):
        self.means = torch.stack([train.images[train.labels == c].mean(0) for c in range(len(train.classes))])
        yield {"step": 1, "val_acc": 1.0}

    def predict_proba(self, images):
        return (-(images[:, None] - self.means[None]).flatten(2).pow(2).mean(2)).softmax(1)


class BudgetIgnored(CentreClassifier):  # says it trains to a step budget, and fit does not take one
    def budget_steps(self, n_images):
        return 5


class Unnormalised(CentreClassifier):
    def predict_proba(self, images):
        return super().predict_proba(images) * 2


def test_classifiers():
    check_classifier(CentreClassifier)
    with pytest.raises(ContractError, match=r"Unnormalised: predict_proba\(images\): expected rows summing to 1"):
        check_classifier(Unnormalised)
    # a classifier every default recipe would train to a step budget, whose fit takes none: refused in the kit, not
    # in the middle of a user's study
    with pytest.raises(ContractError, match=r"BudgetIgnored: fit\(train, val, seed=0, steps=5\): raised TypeError"):
        check_classifier(BudgetIgnored)


class Lambdas(augkit.DataSource):
    classes = ["a", "b"]

    def samples(self):
        for i in range(4):
            yield augkit.Sample(load=lambda: np.zeros((8, 8), np.uint8), label=i % 2, group=f"p{i}", key=f"k{i}")


class ChannelsFirst(augkit.DataSource):
    classes = ["a"]

    def samples(self):
        yield augkit.Sample(load=_channels_first, label=0, group="p", key="k")


class Drifts(ChannelsFirst):
    def samples(self):
        yield augkit.Sample(load=_noise, label=0, group="p", key="k")


class Unstable(ChannelsFirst):
    def samples(self):
        yield augkit.Sample(load=_gray, label=0, group="p", key="k")

    def fingerprint(self):
        return f"instance {id(self)}"


def _channels_first():
    return np.zeros((3, 8, 8), np.uint8)


def _noise():  # a new array each call
    return np.random.random((8, 8))


def _gray():
    return np.zeros((8, 8), np.uint8)


@pytest.mark.parametrize(
    "cls, message",
    [
        (Lambdas, r"Lambdas: Sample.load is picklable: .*not a lambda.*; got samples\(\)\[0\] \(key 'k0'\)"),
        (ChannelsFirst, r"ChannelsFirst: samples\(\)\[0\].load\(\): expected .*channels last\); got shape \(3, 8, 8\)"),
        (Drifts, r"Drifts: samples\(\)\[0\].load\(\) is deterministic: expected the same array"),
        (Unstable, r"Unstable: fingerprint\(\): expected one fingerprint across calls and instances"),
    ],
)
def test_broken_datasets_fail_clearly(cls, message):
    with pytest.raises(ContractError, match=message):
        check_dataset(cls)


class Float64Preprocessor(augkit.Preprocessor):
    def __call__(self, image):
        s = self.options.image_size
        return np.zeros((self.options.channels, s, s))


def test_broken_preprocessor_fails_clearly():
    message = r"Float64Preprocessor: __call__\(uint8 .*\): expected dtype float32; got float64"
    with pytest.raises(ContractError, match=message):
        check_preprocessor(Float64Preprocessor, image_size=8)


class Overwrites(PNGExporter):
    def export(self, batches, classes, out_dir, provenance):
        (Path(out_dir) / "manifest.csv").unlink(missing_ok=True)
        return super().export(batches, classes, out_dir, provenance)


def test_exporter_that_overwrites_fails_clearly(tmp_path):
    with pytest.raises(ContractError, match=r"Overwrites: a second export into the same folder: expected it to raise"):
        check_exporter(Overwrites, tmp_path)


# -- check_distributed: two CPU processes, as torchrun starts them ---------------------------


class EachRankAlone(EfficientNetV2):
    """Declares supports_distributed, but every rank trains its own model (another seed each)."""

    supports_distributed = True

    def fit(self, train, val, *, seed=0):
        rank = augkit.compute.distributed.world().rank
        with augkit.compute.distributed.alone():
            yield from super().fit(train, val, seed=seed + rank)


class FailsOnRank1(EfficientNetV2):
    def fit(self, train, val, *, seed=0):
        if augkit.compute.distributed.world().rank == 1:
            raise ValueError("rank 1 cannot fit")
        yield from super().fit(train, val, seed=seed)


class Chatty(EfficientNetV2):
    def fit(self, train, val, *, seed=0):
        if augkit.compute.distributed.world().rank == 1:
            print("x" * 300_000, flush=True)  # more than a pipe holds: must not block the check
        yield from super().fit(train, val, seed=seed)


TINY_NET = {"variant": "test_efficientnet", "image_size": 16, "epochs": 2, "batch_size": 6, "precision": "fp32"}


def test_default_plugins_train_over_two_processes():
    from augkit.testing import check_distributed

    check_distributed(ACGAN, image_size=16, width=8, iterations=3, batch_size=4, precision="fp32")
    check_distributed(EfficientNetV2, **TINY_NET)


def test_a_plugin_whose_ranks_train_apart_fails_the_distributed_check():
    from augkit.testing import check_distributed

    with pytest.raises(ContractError, match=r"EachRankAlone: fit over 2 processes: expected rank 1 to yield rank 0's "
                                            r"rows|EachRankAlone: predict_proba\(images\) on every rank"):
        check_distributed(EachRankAlone, **TINY_NET)
    with pytest.raises(ContractError, match="EfficientNetV2: check_distributed\\(2\\): raised DistributedError: "
                                            "classifier.options.batch_size 5 is not divisible"):
        check_distributed(EfficientNetV2, **{**TINY_NET, "batch_size": 5})


def test_the_distributed_check_names_the_rank_that_failed_and_survives_chatty_ranks():
    from augkit.testing import check_distributed

    with pytest.raises(ContractError, match=r"(?s)FailsOnRank1: fit over 2 processes: expected every rank to finish; "
                                            r"got rank 1 failed: .*ValueError: rank 1 cannot fit"):
        check_distributed(FailsOnRank1, **TINY_NET)
    check_distributed(Chatty, **TINY_NET)


def test_the_distributed_check_refuses_what_cannot_work():
    from augkit.testing import check_distributed

    class Local(EfficientNetV2):  # defined in a function: a new process cannot import it
        pass

    with pytest.raises(ContractError, match=r"Local: import by name: expected test_contract_kit.test_the_distributed_"
                                            r"check_refuses_what_cannot_work.<locals>.Local importable"):
        check_distributed(Local, **TINY_NET)
    with pytest.raises(ContractError, match="processes: expected at least 2"):
        check_distributed(EfficientNetV2, processes=1, **TINY_NET)
