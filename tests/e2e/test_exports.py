"""A tiny recipe exports PNG, NIfTI and DICOM; MONAI's LoadImage reads all three; DICOM is valid."""

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

TINY = Path(__file__).parents[2] / "examples" / "tiny.yaml"
QUICK = ["--set", "evaluation.seeds=1", "--set", "evaluation.regimes=[real]", "--set", "evaluation.ratios=[]"]


@pytest.mark.parametrize("exporter, suffix", [("png", ".png"), ("nifti", ".nii.gz"), ("dicom", ".dcm")])
def test_tiny_recipe_exports_files_monai_can_read(exporter, suffix, tmp_path, cli):
    from monai.transforms import LoadImage

    result = cli("run", TINY, "--out", tmp_path, "--set", f"exporter.name={exporter}", *QUICK)
    synthetic = Path(result.stdout.strip().splitlines()[-1]) / "synthetic"
    rows = list(csv.DictReader(open(synthetic / "manifest.csv")))
    assert len(rows) == 36 and all(r["file"].endswith(suffix) for r in rows)
    assert all(r["checkpoint_sha256"] and r["recipe_sha256"] and r["generator"] == "acgan" for r in rows)
    image = LoadImage(image_only=True)(str(synthetic / rows[0]["file"]))
    assert 16 in image.shape and image.numel() == 16 * 16

    dciodvfy = shutil.which("dciodvfy")
    if exporter == "dicom" and dciodvfy:
        for row in rows[:3]:
            out = subprocess.run([dciodvfy, str(synthetic / row["file"])], capture_output=True, text=True)
            errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
            assert not errors, errors
