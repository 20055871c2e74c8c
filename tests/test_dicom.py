"""dicom: pydicom's bundled test files and generated DICOMs; pixels, labels, slices, privacy, bad files."""

from __future__ import annotations

import logging
import pickle
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from pydicom.data import get_testdata_file

import augkit
import augkit_plugins.dicom
from augkit_plugins.dicom import Dicom
from augkit_plugins.dicom.testing import write_dicom

NAME, MRN = "DOE^JANE", "MRN-998877"


def bundled(name: str) -> Path:
    """A file shipped inside pydicom (these are in the wheel: nothing is downloaded)."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom does not bundle {name}")
    return Path(path)


def by_name(source: Dicom) -> dict[str, augkit.Sample]:
    """Samples by revealed relative path (+ /f<frame> for multi-frame files)."""
    assert source.options.reveal_file_names
    return {s.key: s for s in source.samples()}


@pytest.fixture
def tree(tmp_path) -> Path:
    """ROOT/<class>/<patient>/<study>/... with bundled and generated files, some without .dcm."""
    root = tmp_path / "dicom"
    ct, mr = root / "lung" / "DOE_JANE" / "study1", root / "brain" / "pat2" / "s1"
    ct.mkdir(parents=True)
    mr.mkdir(parents=True)
    shutil.copy(bundled("CT_small.dcm"), ct / "CT_small.dcm")
    shutil.copy(bundled("CT_small.dcm"), ct / "IM00002")  # no extension: found by the DICM marker
    shutil.copy(bundled("MR_small.dcm"), mr / "MR_small")
    shutil.copy(bundled("SC_rgb_rle_2frame.dcm"), mr / "colour_2frame.dcm")  # multi-frame RGB, RLE
    frames = np.stack([np.full((16, 16), 100 * (f + 1), np.uint16) for f in range(3)])
    write_dicom(mr / "multi", frames, Modality="MR", PatientName=NAME, PatientID=MRN)
    write_dicom(ct / "gen.dcm", np.arange(256, dtype=np.uint16).reshape(16, 16), PatientName=NAME, PatientID=MRN)
    return root


def test_bundled_and_generated_files_become_slices(tree):
    source = Dicom(root=tree, reveal_file_names=True)
    assert source.classes == ["brain", "lung"]
    samples = by_name(source)
    assert sorted(samples) == [
        "brain/pat2/s1/MR_small",
        "brain/pat2/s1/colour_2frame.dcm/f0", "brain/pat2/s1/colour_2frame.dcm/f1",
        "brain/pat2/s1/multi/f0", "brain/pat2/s1/multi/f1", "brain/pat2/s1/multi/f2",
        "lung/DOE_JANE/study1/CT_small.dcm", "lung/DOE_JANE/study1/IM00002", "lung/DOE_JANE/study1/gen.dcm",
    ]  # fmt: skip
    shapes = {}
    for key, s in samples.items():
        image = pickle.loads(pickle.dumps(s)).load()  # the core sends whole samples to workers
        assert type(image) is np.ndarray and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        shapes[key] = image.shape
    assert shapes["lung/DOE_JANE/study1/CT_small.dcm"] == (128, 128)
    assert shapes["brain/pat2/s1/MR_small"] == (64, 64)
    assert shapes["brain/pat2/s1/colour_2frame.dcm/f1"] == (100, 100, 3)
    assert samples["brain/pat2/s1/multi/f1"].meta == {"modality": "MR", "frame": 1}
    assert samples["lung/DOE_JANE/study1/CT_small.dcm"].group == "1CT1"  # PatientID of the bundled file
    assert samples["brain/pat2/s1/multi/f0"].group == MRN


def test_patient_name_and_id_never_reach_keys_meta_or_logs(tree, caplog):
    (tree / "lung" / "DOE_JANE" / "study1" / "broken.dcm").write_bytes(b"DOE^JANE MRN-998877")
    with caplog.at_level(logging.DEBUG, logger="augkit"):
        samples = list(Dicom(root=tree).samples())
        reasons = []
        for s in samples:
            try:
                s.load()
            except ValueError as exc:
                reasons.append(str(exc))
    assert reasons == ["not a DICOM file: no DICM marker at byte 128 and no DICOM header"]
    assert MRN in {s.group for s in samples}  # used for grouping ...
    for text in [caplog.text, *reasons, *(s.key for s in samples), *(repr(s.meta) for s in samples)]:
        for secret in (NAME, MRN, "DOE", "JANE", "1CT1"):  # ... and nowhere else
            assert secret not in text


class MeanOnly(augkit.Preprocessor):
    """A stand-in preprocessor: any image -> (1, 8, 8) filled with its mean, in [-1, 1]."""

    def __call__(self, image):
        return np.full((1, 8, 8), float(np.mean(image)) * 2 - 1, np.float32)


def test_through_the_core_nothing_identifying_is_kept(tree, tmp_path, caplog):
    from augkit.stages.data import load_and_preprocess

    (tree / "lung" / "DOE_JANE" / "study1" / "broken.dcm").write_bytes(b"DOE^JANE MRN-998877")
    with caplog.at_level(logging.DEBUG, logger="augkit"):
        loaded = load_and_preprocess(
            Dicom(root=tree), MeanOnly(), source_name="dicom", prep_name="mean", cache_dir=tmp_path / "cache"
        )
    assert len(loaded.data) == 9 and len(loaded.skipped) == 1
    (cached,) = (tmp_path / "cache").iterdir()  # torch.save's zip stores strings uncompressed
    kept = [caplog.text, repr(loaded.skipped), repr(loaded.data.groups), cached.name, cached.read_bytes().decode("latin-1")]
    for secret in (NAME, MRN, "DOE", "JANE", "1CT1"):
        assert not [text for text in kept if secret in text], secret


def test_pixel_handling(tmp_path):
    root = tmp_path / "r"
    ramp = np.tile(np.array([0, 500, 1000, 1000], np.uint16).repeat(4), (16, 1))  # 16x16, 3 levels
    write_dicom(root / "a" / "mono2", ramp)
    write_dicom(root / "a" / "mono1", ramp, PhotometricInterpretation="MONOCHROME1")
    # stored 512 -> 2 * 512 - 1024 = 0 HU: 0.4 of the soft-tissue window (-160 .. 240)
    write_dicom(root / "a" / "rescaled", np.full((16, 16), 512, np.uint16), RescaleSlope=2, RescaleIntercept=-1024)
    write_dicom(root / "a" / "windowed", ramp, WindowCenter=500, WindowWidth=1000)
    load = lambda name, **o: by_name(Dicom(root=root, reveal_file_names=True, **o))[f"a/{name}"].load()  # noqa: E731
    plain = load("mono2", window="none")
    np.testing.assert_allclose(plain[0, [0, 4, 8, 15]], [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(load("mono1", window="none"), 1.0 - plain)  # MONOCHROME1 is inverted
    np.testing.assert_allclose(load("rescaled", window="ct-soft-tissue"), 0.4, atol=1e-6)
    assert load("rescaled", window="ct-bone").max() < load("rescaled", window="ct-soft-tissue").min()
    np.testing.assert_allclose(load("windowed")[0, [0, 4, 8]], [0.0, 0.5, 1.0])  # auto: the file's window
    np.testing.assert_allclose(load("mono2", window="percentile")[0, [0, 15]], [0.0, 1.0])
    as_bytes = load("mono2", window="none", output="uint8")
    assert as_bytes.dtype == np.uint8 and as_bytes[0, [0, 4, 8]].tolist() == [0, 128, 255]


def test_slices_middle_and_central_per_series(tmp_path):
    root = tmp_path / "r"
    for number in [3, 1, 5, 2, 4]:  # one series, files written out of order
        write_dicom(root / "c" / f"img{number}", np.full((16, 16), number, np.uint8), SeriesInstanceUID="1.2.3.4",
                    InstanceNumber=number, PatientID="p")  # fmt: skip
    write_dicom(root / "c" / "cine", np.zeros((4, 16, 16), np.uint8), PatientID="q")
    pick = lambda **o: sorted(by_name(Dicom(root=root, reveal_file_names=True, **o)))  # noqa: E731
    assert len(pick()) == 9
    assert pick(slices="middle") == ["c/cine/f1", "c/img3"]
    assert pick(central=3) == ["c/cine/f0", "c/cine/f1", "c/cine/f2", "c/img2", "c/img3", "c/img4"]
    assert len(pick(central=50)) == 9


def test_labels_from_csv_naming_files_and_folders(tree, caplog):
    csv = tree / "labels.csv"
    csv.write_text("path,label\nlung/DOE_JANE/study1,normal\nlung/DOE_JANE/study1/gen.dcm,abnormal\nnowhere/x,normal\n")
    with caplog.at_level(logging.INFO, logger="augkit"):
        source = Dicom(root=tree, labels_csv="labels.csv", reveal_file_names=True, class_order=["normal", "abnormal"])
        samples = by_name(source)
    assert source.options.label_mode == "csv" and source.classes == ["normal", "abnormal"]
    assert {k: source.classes[s.label] for k, s in samples.items()} == {
        "lung/DOE_JANE/study1/CT_small.dcm": "normal",
        "lung/DOE_JANE/study1/IM00002": "normal",
        "lung/DOE_JANE/study1/gen.dcm": "abnormal",
    }
    assert "1 rows of labels.csv match no file (lines 4)" in caplog.text
    assert "3 files are outside the rows of labels.csv" in caplog.text
    fingerprint = source.fingerprint()
    csv.write_text(csv.read_text().replace("abnormal", "normal"))
    assert Dicom(root=tree, labels_csv=csv).fingerprint() != fingerprint


def test_bad_files_and_non_images(tree, caplog):
    folder = tree / "lung" / "DOE_JANE" / "study1"
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "notes.dcm").write_text("this is a text file")
    (folder / "notes.txt").write_text("no DICM marker, no .dcm: not even looked at")
    (folder / "._CT_small.dcm").write_bytes(bundled("CT_small.dcm").read_bytes())
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    shutil.copy(bundled("MR_truncated.dcm"), folder / "truncated")
    shutil.copy(bundled("rtstruct.dcm"), folder / "rtstruct.dcm")
    dicomdir = bundled("CT_small.dcm").parent / "dicomdirtests"
    shutil.copy(dicomdir / "DICOMDIR", tree / "lung" / "DICOMDIR")
    shutil.copy(dicomdir / "DICOMDIR-empty.dcm", folder / "index.dcm")
    (tree / "empty_class").mkdir()
    with caplog.at_level(logging.INFO, logger="augkit"):
        source = Dicom(root=tree, reveal_file_names=True)
        samples = by_name(source)
    assert source.classes == ["brain", "empty_class", "lung"]
    assert "class 'empty_class' has no files" in caplog.text
    bad = {"empty.dcm": "file is empty", "notes.dcm": "not a DICOM file", "truncated": "not a readable DICOM image"}
    for name, message in bad.items():
        with pytest.raises(ValueError, match=message) as info:
            samples[f"lung/DOE_JANE/study1/{name}"].load()
        assert name not in str(info.value) and "DOE_JANE" not in str(info.value)
    listed = {k.rsplit("/", 1)[-1] for k in samples}
    assert not listed & {"notes.txt", "._CT_small.dcm", ".DS_Store", "rtstruct.dcm", "DICOMDIR", "index.dcm"}


def test_no_dicom_at_all_is_a_clear_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no usable files in .* expected ROOT/<class>/\*\*/<DICOM files>"):
        list(Dicom(root=tmp_path).samples())


def test_options_are_validated(tree, tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        Dicom(root=tmp_path / "missing")
    with pytest.raises(ValidationError, match="labels_csv is not given"):
        Dicom(root=tree, labels_from="csv")
    with pytest.raises(ValidationError, match="not a file"):
        Dicom(root=tree, labels_csv="nope.csv")
    with pytest.raises(ValidationError, match="not both"):
        Dicom(root=tree, slices="middle", central=3)
    for bad in ({"window": "lung"}, {"central": 0}, {"output": "float64"}, {"class_order": ["a", "a"]}):
        with pytest.raises(ValidationError):
            Dicom(root=tree, **bad)
    (tree / "bad.csv").write_text("file,class\nx,y\n")
    with pytest.raises(ValueError, match="must have the columns 'path' and 'label'"):
        list(Dicom(root=tree, labels_csv=tree / "bad.csv").samples())


def test_write_dicom_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(TypeError, match="uint8, uint16 or int16"):
        write_dicom(tmp_path / "x.dcm", np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="not DICOM keywords"):
        write_dicom(tmp_path / "x.dcm", np.zeros((8, 8), np.uint8), PatientNmae="x")


def test_registered_through_the_plugin_hook():
    registry = augkit.get_plugin_manager(load_entry_points=False, extra=[augkit_plugins.dicom])
    assert registry.get("dataset", "dicom") is Dicom
