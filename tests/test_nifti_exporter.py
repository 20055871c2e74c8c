import csv

import nibabel as nib
import numpy as np
import pytest
import torch

import augkit
import augkit_plugins.nifti_exporter as nifti_exporter
from augkit_plugins.nifti_exporter import NiftiExporter


def batches():
    yield torch.linspace(-1, 1, 2 * 12).view(2, 1, 3, 4), torch.tensor([0, 1]), 11
    yield torch.ones(1, 1, 3, 4), torch.tensor([1]), 12


def image_back(img) -> np.ndarray:
    """The (H, W) image from the exporter's (W, H, 1) layout."""
    return np.rot90(img.get_fdata()[..., 0])


@pytest.mark.parametrize("dtype", ["float32", "int16"])
def test_files_values_and_header(tmp_path, dtype):
    manifest = NiftiExporter(dtype=dtype, spacing_mm=0.7).export(batches(), ["normal", "virus"], tmp_path, {})
    rows = list(csv.DictReader(open(manifest)))
    assert [r["file"] for r in rows] == [
        "normal/normal_000000.nii.gz",
        "virus/virus_000000.nii.gz",
        "virus/virus_000001.nii.gz",
    ]
    img = nib.load(tmp_path / rows[1]["file"])
    assert img.shape == (4, 3, 1) and img.get_data_dtype() == np.dtype(dtype)
    expected = ((torch.linspace(-1, 1, 24).view(2, 3, 4)[1] + 1) / 2).numpy()
    np.testing.assert_allclose(image_back(img), expected, atol=1e-4 if dtype == "int16" else 1e-7)
    assert image_back(nib.load(tmp_path / rows[2]["file"])).min() == pytest.approx(1.0)
    np.testing.assert_allclose(img.header.get_zooms(), [0.7, 0.7, 0.7], rtol=1e-6)
    assert img.header["descrip"].tobytes().rstrip(b"\0") == b"augkit synthetic virus"
    assert img.header.get_xyzt_units()[0] == "mm"


def test_orientation_keeps_the_image_upright(tmp_path):
    # one bright pixel in the top-left corner of a 3 x 4 image
    x = -torch.ones(1, 1, 3, 4)
    x[0, 0, 0, 0] = 1
    manifest = NiftiExporter(spacing_mm=2.0).export([(x, torch.tensor([0]), 0)], ["a"], tmp_path, {})
    img = nib.load(manifest.parent / "a/a_000000.nii.gz")
    assert nib.aff2axcodes(img.affine) == ("L", "A", "S")  # as dcm2niix writes an axial DICOM slice
    assert img.header.get_qform(coded=True)[1] > 0 and img.header.get_sform(coded=True)[1] > 0
    np.testing.assert_allclose(img.affine, np.diag([-2.0, 2.0, 2.0, 1.0]))
    ijk = np.argwhere(img.get_fdata() > 0.5)[0]
    x_mm, y_mm, _ = nib.affines.apply_affine(img.affine, ijk)
    others = nib.affines.apply_affine(img.affine, np.argwhere(img.get_fdata() < 0.5))
    # top-left on screen = patient's right (+x) and anterior (+y) in a radiological axial view
    assert x_mm >= others[:, 0].max() and y_mm >= others[:, 1].max()


def test_long_class_names_fit_descrip(tmp_path):
    name = "x" * 100
    manifest = NiftiExporter().export([(torch.zeros(1, 1, 2, 2), torch.tensor([0]), 0)], [name], tmp_path, {})
    img = nib.load(manifest.parent / name / f"{name}_000000.nii.gz")
    assert len(img.header["descrip"].tobytes()) == 80


def test_multichannel_images_are_stored_gray(tmp_path):
    rgb = torch.stack([torch.full((2, 2), v) for v in (-1.0, 0.0, 1.0)])[None]
    manifest = NiftiExporter().export([(rgb, torch.tensor([0]), 0)], ["a"], tmp_path, {})
    img = nib.load(manifest.parent / "a/a_000000.nii.gz")
    assert img.shape == (2, 2, 1) and np.allclose(img.get_fdata(), 0.5)


def test_options_are_validated():
    with pytest.raises(ValueError):
        NiftiExporter(dtype="uint8")
    with pytest.raises(ValueError):
        NiftiExporter(spacing_mm=0)


def test_registered_as_nifti():
    registry = augkit.get_plugin_manager(load_entry_points=False, extra=[nifti_exporter])
    assert registry.get("exporter", "nifti") is NiftiExporter
