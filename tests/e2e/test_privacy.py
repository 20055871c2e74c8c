"""No patient identifier from a DICOM header or a file name reaches anything augkit writes."""

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.e2e

IDENTIFIERS = [b"DOE", b"JANE", b"MRN-99", b"19450101"]


def write_dicom_tree(root: Path) -> None:
    from augkit_plugins.dicom.testing import write_dicom

    yy, xx = np.mgrid[:32, :32]
    for label, radius in (("effusion", 12), ("clear", 6)):
        for p in range(10):
            for k in range(2):
                img = ((np.hypot(yy - 16, xx - 16) < radius + k) * 180 + 20 + p).astype(np.uint16)
                folder = root / label / f"DOE_JANE{p}" / "study1"  # patient names in folder and file names
                folder.mkdir(parents=True, exist_ok=True)
                write_dicom(
                    folder / f"MRN-9988{p:02d}_{k}",  # no .dcm extension, as many PACS exports
                    img,
                    Modality="CR",
                    PatientName=f"DOE^JANE{p}",
                    PatientID=f"MRN-9988{p:02d}",
                    PatientBirthDate="19450101",
                )


def test_patient_identifiers_never_reach_outputs(tmp_path, cli):
    data = tmp_path / "export"
    write_dicom_tree(data)
    recipe = yaml.safe_load((Path(__file__).parents[2] / "examples" / "tiny.yaml").read_text())
    recipe["dataset"] = {"name": "dicom", "options": {"root": str(data), "labels_from": "folders"}}
    recipe["cache_dir"] = str(tmp_path / "out" / ".cache")
    path = tmp_path / "dicom.yaml"
    path.write_text(yaml.safe_dump(recipe))

    result = cli("run", path, "--out", tmp_path / "out")
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert (run_dir / "metrics.json").exists()

    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(written) > 20
    for p in written:
        blob = p.read_bytes()
        if p.suffix == ".html":  # embedded PNGs: their base64 can spell DOE by chance; their pixels carry no text
            blob = re.sub(rb"data:image/png;base64,[A-Za-z0-9+/=]+", b"", blob)
        for ident in IDENTIFIERS:
            assert ident not in blob, f"{ident!r} found in {p.relative_to(tmp_path)}"
    for ident in IDENTIFIERS:
        assert ident.decode() not in result.output  # nor on the console
