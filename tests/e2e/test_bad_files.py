"""A data folder with broken files: each is skipped by name and reason; strict mode stops."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

pytestmark = pytest.mark.e2e


@pytest.fixture
def messy(tmp_path, circle_images):
    root = circle_images(tmp_path / "brain", {"yes": 16, "no": 8})
    (root / "yes" / "empty.jpeg").write_bytes(b"")
    good = (root / "yes" / "scan00.png").read_bytes()
    Image.open(root / "yes" / "scan00.png").save(root / "yes" / "whole.jpeg")
    (root / "yes" / "truncated.jpeg").write_bytes((root / "yes" / "whole.jpeg").read_bytes()[:200])
    (root / "yes" / "whole.jpeg").unlink()
    (root / "no" / "notes.jpeg").write_text("this is a text file")
    (root / "no" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(root / "no" / "dot.png")
    assert good
    return root


def recipe_file(tmp_path, root, **extra):
    recipe = yaml.safe_load((Path(__file__).parents[2] / "examples" / "tiny.yaml").read_text())
    recipe["dataset"] = {"name": "image-folder", "options": {"root": str(root), "reveal_file_names": True}}
    recipe["preprocessor"] = {"name": "paper", "options": {"modality": "mri"}}
    recipe.update(extra)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_bad_files_are_skipped_listed_and_reported(messy, tmp_path, cli):
    result = cli("run", recipe_file(tmp_path, messy, preview=4), "--out", tmp_path / "runs")
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    skipped = (run_dir / "skipped.csv").read_text()
    for name in ("empty.jpeg", "truncated.jpeg", "notes.jpeg", "dot.png"):
        assert name in skipped, name
    assert ".DS_Store" not in skipped and len(skipped.strip().splitlines()) == 1 + 4
    assert "Skipped files: 4 (listed with reasons in skipped.csv)" in (run_dir / "results.md").read_text()
    assert "1x1" in skipped
    assert (run_dir / "preprocessing.png").exists()


def test_strict_mode_stops_at_the_first_bad_file(messy, tmp_path, cli):
    result = cli("run", recipe_file(tmp_path, messy, strict=True), "--out", tmp_path / "runs", expect=2)
    assert "strict mode stops at the first bad image" in result.output


def test_folder_without_images_is_a_clear_error(tmp_path, cli):
    (tmp_path / "empty" / "yes").mkdir(parents=True)
    (tmp_path / "empty" / "no").mkdir(parents=True)
    result = cli("run", recipe_file(tmp_path, tmp_path / "empty"), "--out", tmp_path / "runs", expect=2)
    assert "error:" in result.output and "empty" in result.output
