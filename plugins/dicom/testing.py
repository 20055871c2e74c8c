"""Writing small, synthetic DICOM files for tests: ``write_dicom(path, array, **header)``.

For tests of this plugin and end-to-end tests elsewhere (e.g. that a patient's name never
reaches a run folder). Nothing here is patient data: every value is the caller's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

SOP_CLASSES = {  # storage SOP class per modality; anything else is secondary capture
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "CR": "1.2.840.10008.5.1.4.1.1.1",
}
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
BITS = {np.dtype(np.uint8): (8, 0), np.dtype(np.uint16): (16, 0), np.dtype(np.int16): (16, 1)}


def write_dicom(path: str | Path, array: np.ndarray, **header) -> Path:
    """Write a grayscale DICOM Part 10 file (128-byte preamble, ``DICM``, explicit VR little endian).

    ``array``: (rows, columns), or (frames, rows, columns) for a multi-frame file; uint8,
    uint16 or int16. ``header``: DICOM keywords and values, e.g. ``Modality="CT"``,
    ``PatientID="MRN-1"``, ``RescaleSlope=2``, ``PhotometricInterpretation="MONOCHROME1"``,
    ``WindowCenter=40``. UIDs not given are generated, so each file is its own series unless
    the caller passes one ``SeriesInstanceUID`` to several files.
    """
    array = np.ascontiguousarray(array)
    if array.dtype not in BITS:
        raise TypeError(f"pixel dtype must be uint8, uint16 or int16, got {array.dtype}")
    if array.ndim not in (2, 3):
        raise ValueError(f"array must be (rows, columns) or (frames, rows, columns), got shape {array.shape}")
    unknown = [k for k in header if tag_for_keyword(k) is None]
    if unknown:
        raise ValueError(f"not DICOM keywords: {unknown}")
    bits, signed = BITS[array.dtype]
    modality = str(header.get("Modality", "OT"))
    sop_class = SOP_CLASSES.get(modality, SECONDARY_CAPTURE)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = header.get("SOPInstanceUID") or generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    path = Path(path)
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName = ""
    ds.PatientID = ""
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.InstanceNumber = 1
    ds.Rows, ds.Columns = array.shape[-2:]
    if array.ndim == 3:
        ds.NumberOfFrames = array.shape[0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = signed
    for keyword, value in header.items():
        setattr(ds, keyword, value)
    ds.PixelData = array.tobytes()

    path.parent.mkdir(parents=True, exist_ok=True)
    if int(pydicom.__version__.split(".")[0]) >= 3:
        ds.save_as(path, enforce_file_format=True)
    else:  # pydicom 2.x
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(path, write_like_original=False)
    return path
