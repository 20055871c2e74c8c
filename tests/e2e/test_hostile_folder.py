"""One folder holding every hostile or broken input at once: the run completes, every bad file is skipped
with a reason that holds no path, nothing is written outside the run folder, and the planted patient
name appears in no output, log or console line. A class name that would escape a folder is refused."""

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

pytestmark = pytest.mark.e2e

PATIENT = "SMITH_JOHN_MRN-12345"
FOLDER = "DOE_JANE0"


@pytest.fixture
def hostile(tmp_path, circle_images):
    root = circle_images(tmp_path / "data", {"yes": 16, "no": 8})
    (root / "maybe").mkdir()  # an empty class folder
    (root / "yes" / FOLDER).mkdir()
    os.symlink(tmp_path / "gone" / f"{PATIENT}.png", root / "yes" / FOLDER / f"{PATIENT}.png")  # dangling
    os.mkfifo(root / "no" / f"{PATIENT}_fifo.png")  # reading it would block forever
    (root / "no" / f"{PATIENT}_eps.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nshowpage\n")
    Image.new("L", (8000, 8000)).save(root / "yes" / f"{PATIENT}_huge.png")  # 64 M pixels in a few KB
    nan = np.full((48, 48), 0.5, np.float32)
    nan[10:20, 10:20] = np.nan
    Image.fromarray(nan, mode="F").save(root / "no" / f"{PATIENT}_nan.tif")
    return root


def _recipe(tmp_path, root, **dataset_options):
    recipe = yaml.safe_load((Path(__file__).parents[2] / "examples" / "tiny.yaml").read_text())
    recipe["dataset"] = {"name": "image-folder", "options": {"root": str(root), **dataset_options}}
    recipe["preprocessor"] = {"name": "paper", "options": {"modality": "mri"}}
    recipe["evaluation"] = {"regimes": ["real", "fake+real"], "seeds": 1}
    recipe["preview"] = 4
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if not p.is_dir()}


def test_a_hostile_folder_runs_and_leaks_nothing(hostile, tmp_path, cli):
    recipe = _recipe(tmp_path, hostile)
    runs = tmp_path / "runs"
    before = _files(tmp_path)
    result = cli("run", recipe, "--out", runs)
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    # nothing outside the runs folder was created (the cache lives in it)
    assert {p for p in _files(tmp_path) - before if runs not in p.parents} == set()
    skipped = [line.split(",", 1) for line in (run_dir / "skipped.csv").read_text().splitlines()[1:]]
    reasons = [reason for _, reason in skipped]
    assert len(skipped) == 5, reasons  # the dangling link, the FIFO, the EPS, the huge PNG, the NaN TIFF
    assert any("dangling link" in r for r in reasons) and any("not a regular file" in r for r in reasons)
    assert any("not a PNG image" in r for r in reasons) and any("more than the cap" in r for r in reasons)
    assert any("NaN" in r for r in reasons)
    assert not any(str(tmp_path) in r or str(hostile.name) + "/" in r or PATIENT in r or FOLDER in r for r in reasons)
    data = (run_dir / "data.json").read_text()
    assert '"maybe"' not in data and "left out class maybe" in (run_dir / "warnings.txt").read_text()
    # the planted patient name is nowhere: no output file, log, report or console line
    for path in _files(run_dir):
        blob = path.read_bytes()
        assert PATIENT.encode() not in blob and FOLDER.encode() not in blob, path
    assert PATIENT not in result.output and FOLDER not in result.output
    # files that show real images are as private as the data
    for name in ("report.html", "preprocessing.png", "samples/real_yes.png"):
        assert (run_dir / name).stat().st_mode & 0o077 == 0, name
    mask = os.umask(0)
    os.umask(mask)  # what is made to be shared keeps the umask's mode: the export and its dataset card
    for name in ("synthetic/manifest.csv", "synthetic/DATASET_CARD.md", "synthetic/dataset_card.json"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


def test_a_class_name_that_escapes_its_folder_is_refused_before_any_work(hostile, tmp_path, cli):
    recipe = _recipe(tmp_path, hostile, label_map={"yes": "../../../escaped", "no": "no"})
    result = cli("run", recipe, "--out", tmp_path / "runs", expect=2)
    assert "label_map.yes" in result.output and "not a usable class name" in result.output
    assert not (tmp_path / "runs").exists() and not list(tmp_path.parent.rglob("escaped"))


def test_a_hostile_dicom_folder_is_read_to_what_is_usable_and_names_no_one(tmp_path, caplog):
    """The DICOM side of the hostile folder, through the data stage: bogus frame counts (a million; 1e400),
    a dangling link and a FIFO named after a patient, the patient's name in headers."""
    import logging

    import pydicom

    from augkit.stages.data import load_and_preprocess
    from augkit_plugins.dicom import Dicom
    from augkit_plugins.dicom.testing import write_dicom

    root = tmp_path / "dicom"
    for c in ("lung", "brain"):
        (root / c / FOLDER).mkdir(parents=True)
        for i in range(3):
            write_dicom(root / c / FOLDER / f"{PATIENT}_{i}.dcm", np.full((16, 16), 100 * i, np.uint16),
                        PatientName="SMITH^JOHN", PatientID=PATIENT)
    for name, frames in (("million", b"999999"), ("overflow", b"1e400 ")):
        path = write_dicom(root / "lung" / FOLDER / f"{PATIENT}_{name}.dcm", np.zeros((16, 16), np.uint16))
        ds = pydicom.dcmread(path)
        ds.NumberOfFrames = "77777"
        ds.save_as(path)
        path.write_bytes(path.read_bytes().replace(b"77777 ", frames))
    os.symlink(tmp_path / "gone.dcm", root / "brain" / FOLDER / f"{PATIENT}_link.dcm")
    os.mkfifo(root / "brain" / FOLDER / f"{PATIENT}_fifo.dcm")
    prep = __import__("augkit").build("preprocessor", "paper", image_size=16, modality="mri")
    with caplog.at_level(logging.DEBUG):
        loaded = load_and_preprocess(Dicom(root=root), prep, source_name="dicom", prep_name="paper", cache_dir=None)
    assert len(loaded.data) == 6 and len(loaded.skipped) == 4
    reasons = " | ".join(r for _, r in loaded.skipped)
    assert "NumberOfFrames 999999 is outside" in reasons and "is not a frame count" in reasons
    assert "dangling link" in reasons and "not a regular file" in reasons
    for text in (reasons, caplog.text, " ".join(k for k, _ in loaded.skipped)):
        assert PATIENT not in text and FOLDER not in text and "SMITH" not in text and str(tmp_path) not in text
