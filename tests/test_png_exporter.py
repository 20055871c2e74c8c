import csv

import numpy as np
import pytest
import torch
from PIL import Image

from augkit_plugins.png_exporter import PNGExporter


def batches():
    yield torch.linspace(-1, 1, 2 * 16).view(2, 1, 4, 4), torch.tensor([0, 1]), 11
    yield -torch.ones(1, 1, 4, 4), torch.tensor([1]), 12


@pytest.mark.parametrize("bits", [8, 16])
def test_png_files_and_manifest(tmp_path, bits):
    manifest = PNGExporter(bits=bits).export(batches(), ["normal", "virus"], tmp_path, {"generator": "acgan"})
    rows = list(csv.DictReader(open(manifest)))
    assert [r["file"] for r in rows] == ["normal/normal_000000.png", "virus/virus_000000.png", "virus/virus_000001.png"]
    assert [(r["class"], r["seed"], r["index"], r["generator"]) for r in rows][2] == ("virus", "12", "0", "acgan")
    img = np.array(Image.open(tmp_path / rows[0]["file"]))
    assert img.shape == (4, 4) and img.min() == 0 and img.max() == pytest.approx((2**bits - 1) * 15 / 31, abs=1)


def test_never_overwrites_an_export(tmp_path):
    PNGExporter().export(batches(), ["a", "b"], tmp_path, {})
    with pytest.raises(FileExistsError):
        PNGExporter().export(batches(), ["a", "b"], tmp_path, {})


def test_manifest_has_provenance_and_audit_columns(tmp_path):
    provenance = {"generator": "acgan", "generator_version": "3", "checkpoint_sha256": "c", "recipe_sha256": "r"}
    manifest = PNGExporter().export(batches(), ["normal", "virus"], tmp_path, provenance)
    with open(manifest, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames[-1] == "audit_flags" and "recipe_sha256" in reader.fieldnames
    assert rows[0]["generator_version"] == "3" and rows[0]["checkpoint_sha256"] == "c" and rows[0]["audit_flags"] == ""
