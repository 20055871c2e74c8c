"""`augkit data`: what augkit makes of a recipe's data, before any training, as text and as JSON."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

pytestmark = pytest.mark.e2e


@pytest.fixture
def recipe(tmp_path, circle_images):
    root = circle_images(tmp_path / "data", {"yes": 10, "no": 5}, n=12, size=32)
    (root / "covid").mkdir()  # an empty class folder, as in a held-out Kaggle-layout set
    (root / "yes" / "broken.png").write_bytes(b"not a png")
    (root / "no" / "empty.png").write_bytes(b"")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "no" / "black.png")  # a failed export: kept, named
    recipe = yaml.safe_load((Path(__file__).parents[2] / "examples" / "tiny.yaml").read_text())
    recipe["dataset"] = {"name": "image-folder", "options": {"root": str(root)}}
    recipe["preprocessor"] = {"name": "paper", "options": {"modality": "mri"}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_data_prints_counts_skipped_files_and_warnings(recipe, tmp_path, cli):
    out = tmp_path / "runs"
    text = cli("data", recipe, "--out", out).stdout
    assert "25 images, 2 classes" in text and "train" in text and "test" in text
    assert "Skipped files: 2" in text and "not a PNG image" in text and "file is empty" in text
    assert "class folder 'covid' has no images" in text and "left out class covid" in text
    assert "the test split has only" in text  # what a reviewer would say, before any training
    assert "1 image is blank after preprocessing (one value in every pixel): " in text
    assert str(tmp_path / "data") not in text
    preview = out / "tiny-preview.png"
    assert preview.is_file() and f"Preview (raw beside preprocessed): {preview}" in text
    # the cache is filled: a run after it reads it
    assert list((out / ".cache").glob("*.pt"))


def test_data_json_is_for_scripts(recipe, tmp_path, cli):
    summary = json.loads(cli("data", recipe, "--out", tmp_path / "runs", "--json", "--no-preview").stdout)
    assert summary["classes"] == ["no", "yes"] and summary["images"] == 25 and summary["blank"] == 1
    assert sum(s["images"] for s in summary["splits"].values()) == 25
    assert all(s["patients"] >= 1 for s in summary["splits"].values())
    assert sorted(r["reason"].split(":")[0] for r in summary["skipped_files"]) == ["ValueError", "ValueError"]
    assert all(r["sample"].count("/") == 1 for r in summary["skipped_files"])  # keys, not paths
    assert any("covid" in w for w in summary["warnings"]) and summary["preview"] is None
    assert not (tmp_path / "runs" / "tiny-preview.png").exists()


def test_a_preview_never_replaces_a_file_and_must_be_a_png(recipe, tmp_path, cli):
    mine = tmp_path / "mine.png"
    mine.write_text("user file")
    text = cli("data", recipe, "--out", tmp_path / "runs", "--preview", mine, expect=2).output
    assert "exists: augkit writes only new files" in text and mine.read_text() == "user file"
    folder = tmp_path / "previews"
    folder.mkdir()
    assert "exists" in cli("data", recipe, "--out", tmp_path / "runs", "--preview", folder, expect=2).output
    assert "name a .png file" in cli("data", recipe, "--out", tmp_path / "runs", "--preview", folder / "p",
                                     expect=2).output
    cli("data", recipe, "--out", tmp_path / "runs", "--preview", folder / "new" / "p.png")
    assert (folder / "new" / "p.png").is_file()


def test_a_misspelt_label_map_folder_is_named_when_the_data_fails(recipe, tmp_path, cli):
    text = cli("data", recipe, "--out", tmp_path / "runs", "--no-preview",
               "--set", 'dataset.options.label_map={"yes": tumour, "nope": no_tumour}', expect=2).output
    assert "only tumour has usable images (no_tumour: none)" in text
    assert "label_map names folder 'nope', which is not under root" in text and "Traceback" not in text
