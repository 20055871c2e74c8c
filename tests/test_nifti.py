"""nifti: nibabel's bundled test images and generated volumes; orientation, selection, labels, bad files."""

from __future__ import annotations

import logging
import pickle
import re
import shutil
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path
from pydantic import ValidationError

import augkit
import augkit_plugins.nifti
from augkit_plugins.nifti import Nifti


def bundled(name: str) -> Path:
    path = Path(data_path) / name
    if not path.is_file():
        pytest.skip(f"nibabel does not bundle {name}")
    return path


def write_nifti(path: Path, data: np.ndarray, affine=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return path


def by_name(source: Nifti) -> dict[str, augkit.Sample]:
    assert source.options.reveal_file_names
    return {s.key: s for s in source.samples()}


def blob_volume() -> np.ndarray:
    """(20, 20, 10): empty in slices 0-2, a bright 10x10 square (25 %) in slices 3-9."""
    volume = np.zeros((20, 20, 10), np.int16)
    volume[5:15, 5:15, 3:] = 1000
    return volume


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "nifti"
    (root / "control").mkdir(parents=True)
    shutil.copy(bundled("anatomical.nii"), root / "control" / "sub-01_T1w.nii")  # 3-D, big-endian int16
    write_nifti(root / "control" / "sub-02_T1w.nii.gz", blob_volume())
    write_nifti(root / "tumor" / "deep" / "sub-03_flair.nii.gz", blob_volume()[..., ::-1].copy())
    write_nifti(root / "tumor" / "sub-04_photo.nii.gz", np.arange(16 * 12, dtype=np.float32).reshape(16, 12))  # 2-D
    return root


def test_bundled_and_generated_volumes_become_central_slices(tree):
    source = Nifti(root=tree, reveal_file_names=True)
    assert source.classes == ["control", "tumor"]
    samples = by_name(source)
    assert Counter(re.sub(r"/s\d+$", "", k) for k in samples) == {
        "control/sub-01_T1w.nii": 5, "control/sub-02_T1w.nii.gz": 5,
        "tumor/deep/sub-03_flair.nii.gz": 5, "tumor/sub-04_photo.nii.gz": 1,
    }  # fmt: skip
    assert [samples[f"control/sub-01_T1w.nii/s{i}"].meta["slice"] for i in range(10, 15)] == list(range(10, 15))
    for key, s in samples.items():
        image = pickle.loads(pickle.dumps(s)).load()  # the core sends whole samples to workers
        assert type(image) is np.ndarray and image.dtype == np.float32 and image.ndim == 2
        assert 0.0 <= image.min() and image.max() <= 1.0
    assert samples["control/sub-01_T1w.nii/s12"].load().shape == (41, 33)  # axial of (33, 41, 25), rotated
    assert samples["tumor/sub-04_photo.nii.gz"].load().shape == (12, 16)
    assert {s.group for s in samples.values()} == {"sub-01_T1w", "sub-02_T1w", "sub-03_flair", "sub-04_photo"}
    assert samples["tumor/sub-04_photo.nii.gz"].meta == {}


def test_four_d_takes_the_first_volume_with_a_warning(tmp_path, caplog):
    root = tmp_path / "r"
    (root / "fmri").mkdir(parents=True)
    shutil.copy(bundled("example4d.nii.gz"), root / "fmri" / "run1.nii.gz")  # (128, 96, 24, 2)
    with caplog.at_level(logging.WARNING, logger="augkit"):
        samples = list(Nifti(root=root, selection="all").samples())
    assert len(samples) == 24 and samples[0].load().shape == (96, 128)
    assert "is 4-D; only its first volume is used" in caplog.text and "run1" not in caplog.text
    first = np.asarray(nib.load(root / "fmri" / "run1.nii.gz").dataobj)[..., 0]
    ras = np.rot90(first[::-1, :, 7]).ravel()  # the file is LAS: x is reversed to RAS
    assert np.corrcoef(samples[7].load().ravel(), ras)[0, 1] > 0.98


def test_orientation_is_canonical_whatever_the_voxel_order(tmp_path):
    root = tmp_path / "r"
    volume = np.random.default_rng(0).integers(0, 1000, (12, 14, 10)).astype(np.int16)
    write_nifti(root / "a" / "ras.nii", volume)
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = 11.0
    write_nifti(root / "a" / "las.nii", volume[::-1].copy(), flip)  # same anatomy, x stored reversed
    for axis in (0, 1, 2):
        s = by_name(Nifti(root=root, axis=axis, selection="all", reveal_file_names=True))
        n = volume.shape[axis]
        assert len(s) == 2 * n
        for i in (0, n // 2):
            np.testing.assert_array_equal(s[f"a/ras.nii/s{i}"].load(), s[f"a/las.nii/s{i}"].load())


def test_selection_all_central_foreground(tree):
    count = lambda **o: Counter(re.sub(r"/s\d+$", "", k) for k in by_name(Nifti(root=tree, reveal_file_names=True, **o)))  # noqa: E731
    assert count(selection="all")["control/sub-01_T1w.nii"] == 25
    assert count(selection="all", axis=0)["control/sub-01_T1w.nii"] == 33
    assert count(central=3)["control/sub-02_T1w.nii.gz"] == 3
    assert count(central=99)["control/sub-02_T1w.nii.gz"] == 10
    fg = by_name(Nifti(root=tree, selection="foreground", min_foreground=0.1, reveal_file_names=True))
    assert sorted(s.meta["slice"] for k, s in fg.items() if "sub-02" in k) == [3, 4, 5, 6, 7, 8, 9]
    assert sorted(s.meta["slice"] for k, s in fg.items() if "sub-03" in k) == [0, 1, 2, 3, 4, 5, 6]
    strict = by_name(Nifti(root=tree, selection="foreground", min_foreground=0.3, reveal_file_names=True))
    assert not [k for k in strict if "sub-02" in k]


def test_labels_from_csv_and_patient_regex(tree, caplog):
    (tree / "labels.csv").write_text("path,label\ncontrol/sub-01_T1w.nii,healthy\ntumor/deep,glioma\n")
    with caplog.at_level(logging.INFO, logger="augkit"):
        source = Nifti(root=tree, labels_csv=tree / "labels.csv", patient_regex=r"^sub-(?P<patient>\d+)_")
        samples = list(source.samples())
    assert source.classes == ["glioma", "healthy"]
    assert Counter((source.classes[s.label], s.group) for s in samples) == {("healthy", "01"): 5, ("glioma", "03"): 5}
    assert "2 files are outside the rows of labels.csv" in caplog.text
    assert all("sub-" not in s.key for s in samples)


def test_bad_files_are_ignored_or_refused_by_load(tree, caplog):
    bad = tree / "control"
    (bad / "empty.nii").write_bytes(b"")
    (bad / "text.nii").write_text("this is not a NIfTI file " * 20)
    (bad / "corrupt.nii.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 40)
    write_nifti(bad / "five_d.nii.gz", np.zeros((4, 4, 4, 2, 2), np.int16))
    write_nifti(bad / "needle.nii.gz", np.ones((1, 1, 6), np.int16))
    (bad / "._sub-02_T1w.nii.gz").write_bytes(b"\0\5\26\7")
    (bad / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (bad / "notes.txt").write_text("ignored")
    (tree / "empty_class").mkdir()
    with caplog.at_level(logging.INFO, logger="augkit"):
        source = Nifti(root=tree, reveal_file_names=True)
        samples = by_name(source)
    assert source.classes == ["control", "empty_class", "tumor"] and "class 'empty_class' has no files" in caplog.text
    assert not [k for k in samples if "._" in k or "DS_Store" in k or "notes" in k]
    for name, message in [
        ("empty.nii", r"file is empty \(0 bytes\)"),
        ("text.nii", "not a readable NIfTI file"),
        ("corrupt.nii.gz", "not a readable NIfTI file"),
        ("five_d.nii.gz", "image has 5 dimensions"),
        ("needle.nii.gz/s2", "image is 1x1 pixels; at least 8x8 is needed"),
    ]:
        with pytest.raises(ValueError, match=message) as info:
            samples[f"control/{name}"].load()
        assert name.split("/")[0] not in str(info.value) and str(tree) not in str(info.value)


def test_no_nifti_at_all_is_a_clear_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "scan.nii.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no usable files in .* expected ROOT/<class>/\*\*/\*\.nii"):
        list(Nifti(root=tmp_path).samples())


def test_options_are_validated(tree, tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        Nifti(root=tmp_path / "missing")
    with pytest.raises(ValidationError, match="needs a group"):
        Nifti(root=tree, patient_regex="sub-\\d+")
    with pytest.raises(ValidationError, match="percentiles"):
        Nifti(root=tree, percentiles=(99, 1))
    for bad in ({"axis": 3}, {"selection": "middle"}, {"central": 0}, {"min_foreground": 2}, {"labels_from": "names"}):
        with pytest.raises(ValidationError):
            Nifti(root=tree, **bad)


def test_fingerprint_follows_content(tree):
    before = Nifti(root=tree).fingerprint()
    assert Nifti(root=tree).fingerprint() == before
    assert Nifti(root=tree, axis=0).fingerprint() != before
    write_nifti(tree / "control" / "sub-02_T1w.nii.gz", blob_volume() * 2)
    assert Nifti(root=tree).fingerprint() != before


def test_registered_through_the_plugin_hook():
    registry = augkit.get_plugin_manager(load_entry_points=False, extra=[augkit_plugins.nifti])
    assert registry.get("dataset", "nifti") is Nifti
