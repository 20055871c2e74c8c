import pytest
import torch
from torch.utils.data import DataLoader

import augkit
from augkit.pipeline import GeneratorDataset, SyntheticFolder, TensorDataset, mix
from augkit_plugins.png_exporter import PNGExporter


@pytest.fixture
def gan(tiny_images):
    g = augkit.build("generator", "acgan", image_size=16, width=8, iterations=2, batch_size=4)
    list(g.fit(tiny_images, seed=0))
    return g


def test_generator_dataset_is_deterministic_per_index_whatever_the_order(gan):
    ds = GeneratorDataset(gan, [3, 2, 1], seed=5)
    assert len(ds) == 6 and ds.classes == ["a", "b", "c"]
    forward = [ds[i]["image"] for i in range(6)]
    backward = [ds[i]["image"] for i in reversed(range(6))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(forward, backward))
    item = ds[4]
    assert item["label"] == 1 and item["synthetic"] and item["image"].shape == (1, 16, 16)
    assert 0 <= item["image"].min() and item["image"].max() <= 1


def test_generator_dataset_wants_one_count_per_class(gan):
    """Four counts for a three-class generator failed at the first item of the fourth with a bare IndexError."""
    with pytest.raises(ValueError, match=r"counts \[2, 2, 2, 2\]: give one count \(0 or more\) per class, in label "
                       r"order \(3: a, b, c\)"):
        GeneratorDataset(gan, [2, 2, 2, 2])
    with pytest.raises(ValueError, match="one count"):
        GeneratorDataset(gan, [2, 2])  # which class was meant to be left out is not for augkit to guess
    with pytest.raises(ValueError, match="one count"):
        GeneratorDataset(gan, [2, -1, 2])


def test_synthetic_folder_reads_an_export_and_batches_like_monai_dicts(gan, tmp_path):
    labels = torch.tensor([0, 1, 2, 2])
    images = gan.sample(labels, seed=1)
    PNGExporter(bits=16).export([(images, labels, 1)], ["a", "b", "c"], tmp_path, {"generator": "acgan"})
    ds = SyntheticFolder(tmp_path, classes=["a", "b", "c"])
    assert len(ds) == 4 and [ds[i]["label"] for i in range(4)] == [0, 1, 2, 2]
    assert torch.allclose(ds[0]["image"], (images[0] + 1) / 2, atol=1e-4)  # 16-bit PNG keeps the values
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 1, 16, 16) and batch["label"].tolist() == [0, 1, 2, 2]


def test_synthetic_folder_keeps_the_runs_label_order(gan, tmp_path):
    labels = torch.tensor([0, 1, 2])
    classes = ["normal", "bacteria", "virus"]  # not alphabetical, as in the chest recipes
    PNGExporter().export([(gan.sample(labels, seed=1), labels, 1)], classes, tmp_path, {"classes": classes})
    ds = SyntheticFolder(tmp_path)
    assert ds.classes == classes
    assert {ds.rows[i]["class"]: ds[i]["label"] for i in range(3)} == {"normal": 0, "bacteria": 1, "virus": 2}


def test_synthetic_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.csv not found"):
        SyntheticFolder(tmp_path)


def test_mix_at_a_ratio(tiny_images, gan):
    real = TensorDataset(tiny_images)
    synthetic = GeneratorDataset(gan, [20, 20, 20])
    mixed = mix(real, synthetic, 0.5, seed=0)
    assert len(mixed) == 24 + 12
    assert sum(mixed[i]["synthetic"] for i in range(len(mixed))) == 12
    with pytest.raises(ValueError, match="needs 240 synthetic items"):
        mix(real, synthetic, 10)
