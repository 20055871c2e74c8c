"""image-folder: class-per-folder trees, label_map, class_order, patient_regex, bad files."""

from __future__ import annotations

import logging
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

import augkit
import augkit_plugins.image_folder
from augkit_plugins.image_folder import ImageFolder


def write_image(path: Path, size=(16, 12), mode="L", fmt=None, seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        array = rng.integers(0, 65536, (size[1], size[0]), dtype=np.uint16)
        Image.fromarray(array).save(path, fmt)
        return path
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], len(mode))
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path, fmt)
    return path


@pytest.fixture
def brain(tmp_path) -> Path:
    """The Kaggle brain tumour layout (yes/ no/) plus a nested folder, other formats and junk."""
    root = tmp_path / "brain_tumor_dataset"
    for i, name in enumerate(["pat01_a.jpg", "pat01_b.jpg", "pat02_a.png"]):
        write_image(root / "yes" / name, seed=i)
    write_image(root / "yes" / "extra" / "pat03_a.tif", mode="RGB")
    for i, name in enumerate(["pat04_a.jpeg", "pat05_a.bmp", "pat05_b.png"]):
        write_image(root / "no" / name, seed=10 + i)
    write_image(root / "no" / "pat06_a.png", mode="I;16")  # 16-bit PNG
    write_image(root / "pred" / "pat07_a.jpg")
    (root / "yes" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "yes" / "._pat01_a.jpg").write_bytes(b"\0\5\26\7")
    (root / ".hidden_class").mkdir()
    write_image(root / ".hidden_class" / "x.png")
    (root / "no" / "README.md").write_text("not an image")
    (root / "top_level.jpg").write_bytes(b"files in root belong to no class")
    return root


def test_every_folder_is_a_class_by_default(brain):
    source = ImageFolder(root=brain)
    assert source.classes == ["no", "pred", "yes"]
    samples = list(source.samples())
    assert Counter(source.classes[s.label] for s in samples) == {"yes": 4, "no": 4, "pred": 1}
    assert len({s.group for s in samples}) == 9  # no regex: every file its own patient


def test_label_map_merges_and_ignores_folders(brain, caplog):
    with caplog.at_level(logging.INFO, logger="augkit"):
        source = ImageFolder(root=brain, label_map={"yes": "tumor", "pred": "tumor", "no": "no_tumor"})
        samples = list(source.samples())
    assert source.classes == ["no_tumor", "tumor"]
    assert Counter(source.classes[s.label] for s in samples) == {"tumor": 5, "no_tumor": 4}

    with caplog.at_level(logging.INFO, logger="augkit"):
        source = ImageFolder(root=brain, label_map={"yes": "tumor", "no": "no_tumor"}, class_order=["tumor", "no_tumor"])
        samples = list(source.samples())
    assert source.classes == ["tumor", "no_tumor"]
    assert Counter(s.label for s in samples) == {0: 4, 1: 4}
    assert "folder 'pred' is not in label_map" in caplog.text


def test_patient_regex_groups_files(brain, caplog):
    samples = list(ImageFolder(root=brain, patient_regex=r"^(?P<patient>pat\d+)_").samples())
    assert Counter(s.group for s in samples) == {
        "pat01": 2, "pat02": 1, "pat03": 1, "pat04": 1, "pat05": 2, "pat06": 1, "pat07": 1,
    }  # fmt: skip
    assert {s.group for s in ImageFolder(root=brain, patient_regex=r"(pat\d+)").samples()} >= {"pat01", "pat05"}
    write_image(brain / "no" / "anonymous.png")
    with caplog.at_level(logging.WARNING, logger="augkit"):
        groups = [s.group for s in ImageFolder(root=brain, patient_regex=r"^(pat\d+)_").samples()]
    assert "no/anonymous.png" in groups and "matched no patient in 1 file names" in caplog.text
    assert "anonymous" not in caplog.text


def test_images_load_with_their_dtype_and_pickle(brain):
    shapes = {}
    for s in ImageFolder(root=brain, reveal_file_names=True).samples():
        image = pickle.loads(pickle.dumps(s)).load()  # the core sends whole samples to workers
        assert type(image) is np.ndarray
        shapes[s.key] = (image.shape, image.dtype)
    assert shapes["yes/extra/pat03_a.tif"] == ((12, 16, 3), np.uint8)
    assert shapes["no/pat06_a.png"] == ((12, 16), np.uint16)
    assert shapes["no/pat05_a.bmp"] == ((12, 16), np.uint8)


def test_keys_are_hashed_unless_revealed(brain):
    keys = [s.key for s in ImageFolder(root=brain).samples()]
    assert all(len(k.split("/")[1]) == 12 and "pat" not in k for k in keys) and len(set(keys)) == len(keys)
    assert "yes/pat01_a.jpg" in {s.key for s in ImageFolder(root=brain, reveal_file_names=True).samples()}


def test_bad_files_are_ignored_or_refused_by_load(tmp_path, caplog):
    root = tmp_path / "data"
    write_image(root / "a" / "good.png")
    write_image(root / "a" / "good_rgba.png", mode="RGBA")
    (root / "a" / "empty.jpg").write_bytes(b"")
    (root / "a" / "text.jpeg").write_text("hello, I am not a JPEG")
    write_image(root / "a" / "full.jpg", size=(64, 64))
    (root / "a" / "truncated.jpg").write_bytes((root / "a" / "full.jpg").read_bytes()[:200])
    (root / "a" / "full.jpg").unlink()
    write_image(root / "a" / "dot.png", size=(1, 1))
    write_image(root / "a" / "strip.png", size=(100, 4))
    for hidden in (".DS_Store", "._good.png", ".hidden.png"):
        (root / "a" / hidden).write_bytes(b"\0\5\26\7")
    (root / "b").mkdir()  # an empty class folder
    with caplog.at_level(logging.INFO, logger="augkit"):
        source = ImageFolder(root=root, reveal_file_names=True)
        samples = {s.key: s for s in source.samples()}
    assert source.classes == ["a", "b"]  # the empty class is still listed
    listed = ["dot.png", "empty.jpg", "good.png", "good_rgba.png", "strip.png", "text.jpeg", "truncated.jpg"]
    assert sorted(samples) == [f"a/{name}" for name in listed]
    assert samples["a/good_rgba.png"].load().shape == (12, 16, 3)
    for name, message in [
        ("empty.jpg", r"file is empty \(0 bytes\)"),
        ("text.jpeg", "not a readable JPEG/PNG/BMP/TIFF image: the file is not a JPEG image, as its extension says"),
        ("truncated.jpg", "not a readable JPEG/PNG/BMP/TIFF image: .*truncated"),
        ("dot.png", "image is 1x1 pixels; at least 8x8 is needed"),
        ("strip.png", "image is 100x4 pixels"),
    ]:
        with pytest.raises(ValueError, match=message) as info:
            samples[f"a/{name}"].load()
        assert name not in str(info.value) and str(root) not in str(info.value)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["image-folder: class folder 'b' has no images"]


def test_no_usable_files_is_a_clear_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / ".DS_Store").write_bytes(b"x")
    (tmp_path / "b" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no images in .*expected ROOT/<class folder>/\*\*/\*\.\{jpg"):
        list(ImageFolder(root=tmp_path).samples())
    write_image(tmp_path / "c" / "x.png")
    with pytest.raises(ValueError, match=r"after label_map"):
        list(ImageFolder(root=tmp_path, label_map={"a": "x"}).samples())


def test_options_are_validated(brain, tmp_path):
    with pytest.raises(ValidationError, match="does not exist; give the folder"):
        ImageFolder(root=tmp_path / "missing")
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        ImageFolder(root=brain, patient_regex="pat(")
    with pytest.raises(ValidationError, match="needs a group"):
        ImageFolder(root=brain, patient_regex=r"pat\d+")
    with pytest.raises(ValidationError, match="must name exactly the classes of label_map"):
        ImageFolder(root=brain, label_map={"yes": "tumor", "no": "no_tumor"}, class_order=["tumor"])
    with pytest.raises(ValidationError, match="each class once"):
        ImageFolder(root=brain, class_order=["yes", "yes"])
    with pytest.raises(ValidationError, match="label_map is empty"):
        ImageFolder(root=brain, label_map={})
    with pytest.raises(ValueError, match=r"labels \['pred'\] are not in class_order"):
        _ = ImageFolder(root=brain, class_order=["yes", "no"]).classes


def test_fingerprint_follows_content(brain):
    source = ImageFolder(root=brain)
    before = source.fingerprint()
    assert source.fingerprint() == before
    write_image(brain / "no" / "pat04_a.jpeg", seed=42)
    assert source.fingerprint() != before
    after = source.fingerprint()
    (brain / "yes" / ".DS_Store").write_bytes(b"changed, but hidden")
    assert source.fingerprint() == after
    assert ImageFolder(root=brain, reveal_file_names=True).fingerprint() != after


def test_registered_through_the_plugin_hook():
    registry = augkit.get_plugin_manager(load_entry_points=False, extra=[augkit_plugins.image_folder])
    assert registry.get("dataset", "image-folder") is ImageFolder
