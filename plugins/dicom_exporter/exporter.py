"""DICOM exporter: one Secondary Capture Image (Part 10 file) per synthetic image, plus manifest.csv.

Every file is built from constants, the class name, the provenance's generator name and
version, fresh UIDs and the time of export. The exporter is handed sampled tensors only,
never a source image or its header, so nothing of any real patient can reach these files.
Each file says it is synthetic in several standard places, so that it is recognised as
such whichever one a system shows: PatientName and PatientID ``SYNTHETIC``,
PatientIdentityRemoved ``YES`` with a DeidentificationMethod, ConversionType ``SYN``
(synthetic image), ImageType ``DERIVED\\SECONDARY``, StudyDescription, SeriesDescription,
ImageComments and DerivationDescription; ContentQualification (SOP Common, so valid for
this IOD) is ``RESEARCH``, the nearest of its enumerated values (PRODUCT, RESEARCH, SERVICE).

One export is one Study with one Series; each image is one instance, numbered in the order
written (InstanceNumber 1, 2, ...). Pixels are MONOCHROME2 unsigned integers, the image's
[-1, 1] mapped to the full 8- or 16-bit range; a window covering that range is included.
Multi-channel images (the paper's 3-channel generator output is a repeated gray plane)
are stored as the mean of their channels.

Laterality (0020,0060) is required unless the body part is known to be unpaired: with no
``body_part`` option it is written empty (unknown; dciodvfy warns, correctly, that it is
empty); with ``body_part`` set (an unpaired part such as CHEST, HEAD or BRAIN) it is left
out. PixelSpacing is written only when ``spacing_mm`` is given: a synthetic image has no
physical size unless the caller asserts one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydicom
from pydantic import Field
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from torch import Tensor

import augkit

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
SYNTHETIC = "SYNTHETIC"
PERSON = "SYNTHETIC^"  # family name only; the caret keeps the PN in its current (not retired) form
CODE_STRING = r"^[A-Z0-9_ ]{1,16}$"  # DICOM's CS value representation
PYDICOM_3 = int(pydicom.__version__.split(".")[0]) >= 3


def to_uint(images: Tensor, bits: int) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W) unsigned integers of ``bits`` depth; channels averaged."""
    top = 2**bits - 1
    x = ((images.float().clamp(-1, 1).mean(dim=1) + 1) / 2 * top).round().numpy()
    return x.astype(np.uint16 if bits == 16 else np.uint8)


def lo(text: str) -> str:
    """A value for a Long String (LO) attribute: 64 characters at most, no backslash."""
    return text.replace("\\", "/")[:64]


class DicomExporter(augkit.Exporter):
    """Writes ``<out>/<class>/<class>_<n>.dcm`` and ``<out>/manifest.csv``."""

    suffix = ".dcm"

    class Options(augkit.Exporter.Options):
        modality: str = Field("OT", pattern=CODE_STRING, description="Modality (0008,0060); OT: other")
        bits: Literal[8, 16] = Field(8, description="bits per pixel")
        body_part: str | None = Field(
            None, pattern=CODE_STRING, description="BodyPartExamined (0018,0015), an unpaired part such as CHEST"
        )
        spacing_mm: float | None = Field(
            None, gt=0, description="PixelSpacing to record; None: no physical size is claimed"
        )

    def begin_export(self, provenance: dict[str, Any]) -> tuple[Dataset, dt.datetime]:
        """One Study with one Series per export, stamped with the time of export."""
        now = dt.datetime.now(dt.timezone.utc)
        return self.series(provenance, now), now

    def pixels(self, images: Tensor) -> np.ndarray:
        return to_uint(images, self.options.bits)

    def write_image(self, pixels: np.ndarray, path: Path, *, class_name: str, number: int,
                    shared: tuple[Dataset, dt.datetime], **_: Any) -> None:
        series, now = shared
        write(self.instance(series, pixels, class_name, number=number, now=now), path)

    @classmethod
    def read_image(cls, path: Path) -> np.ndarray:
        """(H, W) float32 in [0, 1]: the stored integers over their full range."""
        ds = pydicom.dcmread(path)
        return ds.pixel_array.astype(np.float32) / float(2 ** int(ds.BitsStored) - 1)

    def series(self, provenance: dict[str, Any], now: dt.datetime) -> Dataset:
        """The attributes every instance of one export shares: patient, study, series, equipment."""
        generator = str(provenance.get("generator") or "generator")
        version = str(provenance.get("generator_version") or "0")
        date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: class names may be any text
        ds.TimezoneOffsetFromUTC = "+0000"

        # Patient: type 2 attributes present; identity is a constant, never a person's
        ds.PatientName = PERSON
        ds.PatientID = SYNTHETIC
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = lo(f"SYNTHETIC image from augkit {generator}; no source patient data")

        # General Study
        ds.StudyInstanceUID = generate_uid()
        ds.StudyDate, ds.StudyTime = date, time
        ds.ReferringPhysicianName = ""
        ds.StudyID = SYNTHETIC
        ds.AccessionNumber = ""
        ds.StudyDescription = lo(f"{SYNTHETIC} - augkit")

        # General Series
        ds.Modality = self.options.modality
        ds.SeriesInstanceUID = generate_uid()
        ds.SeriesNumber = 1
        ds.SeriesDate, ds.SeriesTime = date, time
        ds.SeriesDescription = lo(f"{SYNTHETIC} - augkit {generator}")
        if self.options.body_part is None:
            ds.Laterality = ""  # type 2C: needed unless the body part is known to be unpaired; empty = unknown
        else:
            ds.BodyPartExamined = self.options.body_part

        # General Equipment and SC Equipment
        ds.Manufacturer = "augkit"
        ds.ManufacturerModelName = lo(generator)
        ds.SoftwareVersions = [lo(f"augkit {augkit.__version__}"), lo(f"{generator} {version}")]
        ds.ConversionType = "SYN"  # synthetic image
        ds.SecondaryCaptureDeviceManufacturer = "augkit"
        ds.SecondaryCaptureDeviceManufacturerModelName = lo(generator)
        ds.SecondaryCaptureDeviceSoftwareVersions = list(ds.SoftwareVersions)
        return ds

    def instance(
        self, series: Dataset, pixels: np.ndarray, class_name: str, *, number: int, now: dt.datetime
    ) -> Dataset:
        """One image: the series' attributes, the image's own and its pixels ((H, W) unsigned ints)."""
        bits = self.options.bits
        generator = series.ManufacturerModelName
        ds = Dataset()
        ds.update(series)
        date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")

        # SOP Common
        ds.SOPClassUID = SECONDARY_CAPTURE
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
        ds.ContentQualification = "RESEARCH"  # not clinical content; the standard has no "synthetic" value

        # General Image and SC Image
        ds.InstanceNumber = number
        ds.PatientOrientation = ""
        ds.ContentDate, ds.ContentTime = date, time
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.DerivationDescription = f"{SYNTHETIC}: sampled from a generative model (augkit {generator}), not acquired"
        ds.ImageComments = f"{SYNTHETIC} - augkit {generator} {class_name}"
        ds.BurnedInAnnotation = "NO"
        ds.DateOfSecondaryCapture, ds.TimeOfSecondaryCapture = date, time
        if self.options.spacing_mm is not None:
            ds.PixelSpacing = [self.options.spacing_mm, self.options.spacing_mm]

        # Image Pixel and VOI LUT (a window over the full range)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = pixels.shape
        ds.BitsAllocated = ds.BitsStored = bits
        ds.HighBit = bits - 1
        ds.PixelRepresentation = 0
        ds.WindowCenter = str(2 ** (bits - 1))
        ds.WindowWidth = str(2**bits)
        data = np.ascontiguousarray(pixels, dtype="<u2" if bits == 16 else np.uint8).tobytes()
        ds.PixelData = data + b"\0" * (len(data) % 2)  # values have even length
        ds["PixelData"].VR = "OW" if bits == 16 else "OB"
        return ds


def write(ds: Dataset, path: Path) -> None:
    """A DICOM Part 10 file (preamble, file meta) in explicit VR little endian."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationVersionName = lo(f"AUGKIT_{augkit.__version__}")[:16]
    ds.file_meta = meta
    if PYDICOM_3:
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
    else:  # pydicom 2.x
        ds.is_little_endian, ds.is_implicit_VR = True, False
        pydicom.dcmwrite(path, ds, write_like_original=False)
