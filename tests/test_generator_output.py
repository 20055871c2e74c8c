"""What the core checks of a generator plugin's output wherever it samples: a broken plugin is named with the rule it
breaks, not a traceback from deep inside augkit (or, for values in [0, 255], an export without a word)."""

from pathlib import Path

import pytest
import torch
import yaml
from conftest import plugin_module

import augkit
from augkit.extension.sampling import GeneratorOutputError, check_classes, sample_checked
from minimal_generator import MinimalGenerator

TINY = Path(__file__).parents[1] / "examples" / "tiny.yaml"


class Broken(MinimalGenerator):
    """The minimal generator with one fault, chosen by ``fault``."""

    class Options(MinimalGenerator.Options):
        fault: str = "none"

    def sample(self, labels, *, seed):
        images = super().sample(labels, seed=seed)
        fault = self.options.fault
        if fault == "scale":  # a plugin that forgot to map its pixels to [-1, 1]
            return (images + 1) * 127.5
        if fault == "nan":
            return images * float("nan")
        if fault == "count":
            return images[:-1]
        if fault == "dtype":
            return images.double()
        if fault == "size":
            return images[..., :-2]
        if fault == "array":
            return images.numpy()
        return images

    @property
    def classes(self):
        return ["x"] if self.options.fault == "classes" else super().classes


def fitted(fault: str) -> Broken:
    gen = Broken(steps=2, fault=fault)
    images = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    list(gen.fit(augkit.LabeledImages(images, torch.tensor([0, 1, 2] * 2), ["a", "b", "c"]), seed=0))
    return gen


@pytest.mark.parametrize("fault, said", [
    ("scale", r"returned values in \[\d+\.?\d*, \d+\.?\d*\]"),  # up to 255
    ("nan", "returned 192 NaN or infinite values"),
    ("count", r"returned shape \(2, 1, 8, 8\)"),
    ("dtype", "returned torch.float64 images"),
    ("size", r"returned images of shape \(1, 8, 6\) where the data's are \(1, 8, 8\)"),
    ("array", "returned a ndarray, not a torch.Tensor"),
])
def test_each_broken_rule_is_named_with_the_generator(fault, said):
    with pytest.raises(GeneratorOutputError, match=rf"generator Broken: sample\(3 labels, seed=5\) {said}.*; the "
                       r"contract is a float32 \(N, C, H, W\) tensor in \[-1, 1\]"):
        sample_checked(fitted(fault), torch.tensor([0, 1, 2]), seed=5, shape=(1, 8, 8))


def test_a_generator_keeping_the_contract_samples_what_it_samples():
    gen = fitted("none")
    labels = torch.tensor([0, 1, 2])
    assert torch.equal(sample_checked(gen, labels, seed=5, shape=(1, 8, 8)), gen.sample(labels, seed=5))
    assert sample_checked(gen, torch.tensor([], dtype=torch.long), seed=5).shape == (0, 1, 8, 8)  # nothing asked
    with pytest.raises(ValueError, match=r"labels of shape \(\): give a 1-d tensor, one class label per image"):
        sample_checked(gen, torch.tensor(1), seed=5)
    check_classes(gen, ["a", "b", "c"])
    with pytest.raises(GeneratorOutputError, match=r"classes is \['x'\] after training on \['a', 'b', 'c'\]"):
        check_classes(fitted("classes"), ["a", "b", "c"])


@pytest.mark.parametrize("fault, said", [("scale", r"values in \[\d+\.?\d*, \d+\.?\d*\]"), ("classes", r"classes is \['x'\]")])
def test_a_run_with_a_broken_generator_stops_at_its_first_checkpoint_naming_it(tmp_path, fault, said):
    """A generator returning [0, 255] ran to the end and exported; a wrong class list exported a classes.json that
    contradicted its manifest. Both stop at the first checkpoint, before any export."""
    registry = augkit.get_plugin_manager(
        extra=[plugin_module("broken_generator", register_generators=lambda register: register("broken", Broken))])
    data = yaml.safe_load(TINY.read_text())
    data["generator"] = {"name": "broken", "options": {"steps": 4, "fault": fault}}
    data["checkpoint_every"] = 2
    with pytest.raises(GeneratorOutputError, match=f"generator Broken: .*{said}"):
        augkit.run(augkit.load_recipe(data, registry=registry), tmp_path)
    (run_dir,) = tmp_path.glob("tiny-*")
    assert not (run_dir / "synthetic").exists()
