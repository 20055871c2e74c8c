import csv
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
import torch

import augkit
import augkit_plugins.dicom_exporter as dicom_exporter
from augkit_plugins.dicom_exporter import DicomExporter

PROVENANCE = {"generator": "acgan", "generator_version": "1", "checkpoint_sha256": "ab" * 32}
# what the exporter writes besides UIDs, dates, times, numbers and pixels: nothing else may appear
CONSTANTS = {
    "", "SYNTHETIC", "SYNTHETIC^", "YES", "NO", "RESEARCH", "OT", "SYN", "augkit", "acgan", "MONOCHROME2", "ISO_IR 192",
    "+0000", "DERIVED", "SECONDARY", "SYNTHETIC - augkit", "SYNTHETIC - augkit acgan",
    "SYNTHETIC - augkit acgan normal", "SYNTHETIC - augkit acgan virus",
    "SYNTHETIC image from augkit acgan; no source patient data",
    "SYNTHETIC: sampled from a generative model (augkit acgan), not acquired",
    f"augkit {augkit.__version__}", "acgan 1",
}


def batches():
    yield torch.linspace(-1, 1, 2 * 20).view(2, 1, 4, 5), torch.tensor([0, 1]), 11
    yield -torch.ones(1, 1, 4, 5), torch.tensor([1]), 12


def export(tmp_path, **options):
    manifest = DicomExporter(**options).export(batches(), ["normal", "virus"], tmp_path, PROVENANCE)
    rows = list(csv.DictReader(open(manifest)))
    return rows, [pydicom.dcmread(tmp_path / r["file"]) for r in rows]


@pytest.mark.parametrize("bits", [8, 16])
def test_pixels_round_trip(tmp_path, bits):
    rows, files = export(tmp_path, bits=bits)
    assert [r["file"] for r in rows] == ["normal/normal_000000.dcm", "virus/virus_000000.dcm", "virus/virus_000001.dcm"]
    expected = ((torch.linspace(-1, 1, 40).view(2, 4, 5) + 1) / 2 * (2**bits - 1)).round().numpy()
    for ds, want in zip(files, [*expected, np.zeros((4, 5))]):
        assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored) == (4, 5, bits, bits)
        np.testing.assert_array_equal(ds.pixel_array, want)


def test_one_study_one_series_unique_instances(tmp_path):
    _, files = export(tmp_path)
    assert len({ds.StudyInstanceUID for ds in files}) == 1
    assert len({ds.SeriesInstanceUID for ds in files}) == 1
    instances = [ds.SOPInstanceUID for ds in files]
    assert len(set(instances)) == 3 and not {files[0].StudyInstanceUID, files[0].SeriesInstanceUID} & set(instances)
    assert [ds.InstanceNumber for ds in files] == [1, 2, 3]
    assert all(ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID for ds in files)
    again = DicomExporter().export(batches(), ["normal", "virus"], tmp_path / "again", PROVENANCE)
    other = pydicom.dcmread(again.parent / "normal/normal_000000.dcm")
    assert other.StudyInstanceUID != files[0].StudyInstanceUID  # new UIDs for every export


def test_marked_synthetic_and_nothing_but_constants(tmp_path):
    _, files = export(tmp_path, spacing_mm=0.25)
    ds = files[1]
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert (ds.PatientName.family_name, ds.PatientID, ds.PatientIdentityRemoved) == ("SYNTHETIC", "SYNTHETIC", "YES")
    assert (ds.ConversionType, ds.Modality, list(ds.ImageType)) == ("SYN", "OT", ["DERIVED", "SECONDARY"])
    assert ds.ImageComments == "SYNTHETIC - augkit acgan virus" and ds.BurnedInAnnotation == "NO"
    assert ds.ContentQualification == "RESEARCH"
    assert [float(v) for v in ds.PixelSpacing] == [0.25, 0.25]
    for elem in ds.iterall():
        if elem.VR in ("UI", "DA", "TM", "IS", "DS", "US", "UL", "OB", "OW"):
            continue
        values = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
        assert all(str(v) in CONSTANTS for v in values), (elem.keyword, elem.value)


def test_provenance_extras_never_reach_the_file(tmp_path):
    leaky = {**PROVENANCE, "patient": "Doe^Jane", "source": "/data/Doe_Jane/IM0001.dcm"}
    DicomExporter().export(batches(), ["normal", "virus"], tmp_path, leaky)
    raw = (tmp_path / "normal/normal_000000.dcm").read_bytes()
    assert b"Doe" not in raw and b"/data" not in raw


def test_multichannel_images_are_stored_gray(tmp_path):
    rgb = torch.stack([torch.full((4, 4), v) for v in (-1.0, 0.0, 1.0)])[None]  # mean 0 -> mid gray
    manifest = DicomExporter().export([(rgb, torch.tensor([0]), 0)], ["a"], tmp_path, {})
    ds = pydicom.dcmread(manifest.parent / "a/a_000000.dcm")
    assert ds.SamplesPerPixel == 1 and ds.PhotometricInterpretation == "MONOCHROME2"
    assert (ds.pixel_array == 128).all()


def test_options_are_validated():
    with pytest.raises(ValueError):
        DicomExporter(bits=12)
    with pytest.raises(ValueError):
        DicomExporter(modality="not a modality")


def test_registered_as_dicom():
    registry = augkit.get_plugin_manager(load_entry_points=False, extra=[dicom_exporter])
    assert registry.get("exporter", "dicom") is DicomExporter


def tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian/Ubuntu: apt-get install dicom3tools dcmtk)")
    return path


@pytest.mark.parametrize("options", [{}, {"bits": 16, "spacing_mm": 0.5}, {"body_part": "CHEST", "modality": "CR"}])
def test_dciodvfy_reports_no_errors(tmp_path, options):
    dciodvfy = tool("dciodvfy")
    export(tmp_path, **options)
    for path in [tmp_path / "normal/normal_000000.dcm", tmp_path / "virus/virus_000001.dcm"]:
        result = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, timeout=30)
        output = result.stdout + result.stderr
        assert "SCImage" in output, output  # it recognised the IOD
        assert not [line for line in output.splitlines() if line.startswith("Error")], output
        warnings = [line for line in output.splitlines() if line.startswith("Warning")]
        if "body_part" in options:
            assert not warnings, output
        else:  # Laterality is empty because the body part (paired or not) is unknown
            assert all("<Laterality>" in line for line in warnings), output


def test_dcmdump_reads_the_file(tmp_path):
    dcmdump = tool("dcmdump")
    export(tmp_path, bits=16)
    path = tmp_path / "virus/virus_000000.dcm"
    result = subprocess.run([dcmdump, str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "SecondaryCaptureImageStorage" in result.stdout and "[SYNTHETIC - augkit acgan virus]" in result.stdout
    assert "E:" not in result.stderr and "W:" not in result.stderr, result.stderr
