"""The Exporter role: the base export() loop, exporters that override export() whole, reading an export back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import plugin_module

import augkit
from augkit.outputs.manifest import ManifestWriter
from augkit.pipeline import SyntheticFolder
from augkit.testing import ContractError, check_exporter


class NpyExporter(augkit.Exporter):
    """Declares a suffix and writes one image: the base export() does the rest."""

    suffix = ".npy"

    def begin_export(self, provenance):
        return {"generator": provenance.get("generator")}

    def pixels(self, images):
        return ((images.float() + 1) / 2).numpy()

    def write_image(self, pixels, path, *, class_name, number, shared):
        self.calls.append((class_name, number, shared["generator"], Path(path).name))
        np.save(path, pixels.transpose(1, 2, 0))

    calls: list = []

    @classmethod
    def read_image(cls, path):
        return np.load(path)


class WholeExportExporter(augkit.Exporter):
    """The other way: export() overridden as a whole (no suffix, no write_image)."""

    def export(self, batches, classes, out_dir, provenance):
        with ManifestWriter(out_dir, provenance) as manifest:
            for pixels, _, path in manifest.entries(batches, classes, ".txt", lambda images: images.tolist()):
                Path(path).write_text(json.dumps(pixels))
        return manifest.path


def batches():
    yield torch.linspace(-1, 1, 2 * 16).view(2, 1, 4, 4), torch.tensor([0, 1]), 11
    yield augkit.SyntheticBatch(-torch.ones(1, 1, 4, 4), torch.tensor([1]), 12, [3], [("near_copy",)])


def test_the_base_export_writes_files_manifest_and_classes(tmp_path):
    NpyExporter.calls = []
    provenance = {"generator": "gan", "classes": ["normal", "virus"]}
    manifest = NpyExporter().export(batches(), ["normal", "virus"], tmp_path / "out", provenance)
    assert manifest == tmp_path / "out/manifest.csv"
    rows = list(csv.DictReader(open(manifest, newline="")))
    assert [(r["file"], r["seed"], r["index"], r["audit_flags"]) for r in rows] == [
        ("normal/normal_000000.npy", "11", "0", ""), ("virus/virus_000000.npy", "11", "1", ""),
        ("virus/virus_000001.npy", "12", "3", "near_copy")]
    assert NpyExporter.calls == [("normal", 1, "gan", "normal_000000.npy"), ("virus", 2, "gan", "virus_000000.npy"),
                                 ("virus", 3, "gan", "virus_000001.npy")]
    assert json.loads((tmp_path / "out/classes.json").read_text()) == ["normal", "virus"]
    with pytest.raises(FileExistsError):  # never overwrites an earlier export
        NpyExporter().export(batches(), ["normal", "virus"], tmp_path / "out", provenance)


@pytest.mark.parametrize("cls", [NpyExporter, WholeExportExporter])
def test_the_classes_argument_is_the_label_order_written_beside_the_export(tmp_path, cls):
    """Exported from Python without provenance classes, virus (label 2) was read back as label 0: classes.json
    came only from provenance, and a reader numbered the classes it found."""
    classes = ["normal", "bacteria", "virus"]
    registry = augkit.get_plugin_manager(
        extra=[plugin_module("npy_plugin", register_exporters=lambda register: register("npy", NpyExporter))])
    for provenance in ({"generator": "x"}, {"generator": "x", "classes": ["wrong"]}):
        out = tmp_path / str(len(provenance))
        cls().export([(torch.zeros(2, 1, 4, 4), torch.tensor([2, 2]), 1)], classes, out, provenance)
        assert json.loads((out / "classes.json").read_text()) == classes
        if cls is NpyExporter:
            assert [SyntheticFolder(out, registry=registry)[i]["label"] for i in range(2)] == [2, 2]
    with pytest.raises(ValueError, match=r"labelled 3, and the classes are \['normal', 'bacteria', 'virus'\]"):
        cls().export([(torch.zeros(2, 1, 4, 4), torch.tensor([0, 3]), 1)], classes, tmp_path / "bad", {})
    written = [p.name for p in (tmp_path / "bad").rglob("*") if p.is_file()]
    assert sorted(written) == ["classes.json", "manifest.csv"]  # not one file of the bad batch


def test_both_kinds_of_exporter_pass_the_contract_check(tmp_path):
    check_exporter(NpyExporter, tmp_path)
    check_exporter(WholeExportExporter, tmp_path)


def test_an_exporter_with_neither_write_image_nor_export_cannot_be_built(tmp_path):
    class Nothing(augkit.Exporter):
        pass

    class NoSuffix(augkit.Exporter):
        def write_image(self, pixels, path, **_):
            pass

    for cls in (Nothing, NoSuffix, augkit.Exporter):
        with pytest.raises(TypeError, match="declares suffix and implements write_image"):
            cls()
    with pytest.raises(ContractError, match=r"Nothing: cls\(options\): raised TypeError"):
        check_exporter(Nothing, tmp_path)


def test_synthetic_folder_reads_each_file_through_the_exporter_of_its_suffix(tmp_path):
    registry = augkit.get_plugin_manager(
        extra=[plugin_module("npy_plugin", register_exporters=lambda register: register("npy", NpyExporter))])
    NpyExporter().export(batches(), ["normal", "virus"], tmp_path, {})
    ds = SyntheticFolder(tmp_path, registry=registry)
    assert ds.classes == ["normal", "virus"] and [ds[i]["label"] for i in range(3)] == [0, 1, 1]
    expected = (torch.linspace(-1, 1, 32).view(2, 1, 4, 4)[1] + 1) / 2
    assert torch.equal(ds[1]["image"], expected) and ds[2]["image"].shape == (1, 4, 4)
    with pytest.raises(ValueError, match=r"no installed exporter reads 'normal/normal_000000.npy' back .*\.png"):
        SyntheticFolder(tmp_path)  # the installed exporters do not read .npy files


@pytest.mark.parametrize("name, options", [("png", {"bits": 16}), ("nifti", {}), ("nifti", {"dtype": "int16"}),
                                           ("dicom", {"bits": 16})])
def test_synthetic_folder_reads_every_default_exporters_files(tmp_path, name, options):
    images = torch.rand(3, 1, 8, 6, generator=torch.Generator().manual_seed(0)) * 2 - 1
    augkit.build("exporter", name, **options).export([(images, torch.tensor([0, 1, 0]), 5)], ["a", "b"], tmp_path,
                                                     {"classes": ["a", "b"]})
    ds = SyntheticFolder(tmp_path)
    assert [ds[i]["label"] for i in range(3)] == [0, 1, 0]
    for i in range(3):
        assert ds[i]["image"].dtype == torch.float32
        assert torch.allclose(ds[i]["image"], (images[i] + 1) / 2, atol=1e-4)  # upright, unmirrored, in [0, 1]
