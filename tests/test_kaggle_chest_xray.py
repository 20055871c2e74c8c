"""kaggle-chest-xray on a tiny fixture in the Kaggle layout (generated images, no patient data)."""

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
import augkit_plugins.kaggle_chest_xray
from augkit_plugins.kaggle_chest_xray import KaggleChestXray

# split -> folder -> file names; sizes and modes vary as in the real data set
LAYOUT = {
    "train": {
        "NORMAL": ["IM-0115-0001.jpeg", "IM-0115-0002.jpeg", "NORMAL2-IM-1427-0001.jpeg"],
        "PNEUMONIA": ["person1_bacteria_1.jpeg", "person1_bacteria_2.jpeg", "person3_virus_16.jpeg", "person12_bacteria_57.jpeg"],
    },
    "val": {"NORMAL": ["NORMAL2-IM-1430-0001.jpeg"], "PNEUMONIA": ["person20_virus_51.jpeg"]},
    "test": {"NORMAL": ["IM-0001-0001.jpeg"], "PNEUMONIA": ["person100_bacteria_478.jpeg", "person101_virus_187.jpeg"]},
}


def write_jpeg(path: Path, size=(24, 20), mode="L", seed=0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path, "JPEG")


@pytest.fixture
def kaggle(tmp_path) -> Path:
    """``tmp_path/download/chest_xray`` as the Kaggle zip unpacks, junk included."""
    root = tmp_path / "download" / "chest_xray"
    for i, (split, folders) in enumerate((s, f) for s, f in LAYOUT.items()):
        for folder, names in folders.items():
            for j, name in enumerate(names):
                mode = "RGB" if name == "IM-0001-0001.jpeg" else "L"
                write_jpeg(root / split / folder / name, size=(24 + j, 20 + i), mode=mode, seed=10 * i + j)
    # what the zip also contains, none of which may be read
    write_jpeg(root / "chest_xray" / "train" / "NORMAL" / "IM-9999-0001.jpeg")  # the nested duplicate
    write_jpeg(root.parent / "__MACOSX" / "chest_xray" / "train" / "NORMAL" / "IM-8888-0001.jpeg")
    (root / "train" / "NORMAL" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "train" / "PNEUMONIA" / "._person1_bacteria_1.jpeg").write_bytes(b"\0\5\26\7 resource fork")
    (root / "train" / "NORMAL" / "notes.txt").write_text("not an image")
    return root


def test_counts_per_class_and_split_three_classes(kaggle):
    source = KaggleChestXray(root=kaggle)
    assert source.classes == ["normal", "bacteria", "virus"]
    samples = list(source.samples())
    assert len(samples) == 12
    counts = Counter((s.meta["source_split"], source.classes[s.label]) for s in samples)
    assert counts == {
        ("train", "normal"): 3, ("train", "bacteria"): 3, ("train", "virus"): 1,
        ("val", "normal"): 1, ("val", "virus"): 1,
        ("test", "normal"): 1, ("test", "bacteria"): 1, ("test", "virus"): 1,
    }  # fmt: skip


def test_two_class_option(kaggle):
    source = KaggleChestXray(root=kaggle, classes="two")
    assert source.classes == ["normal", "pneumonia"]
    assert Counter(s.label for s in source.samples()) == {0: 5, 1: 7}


def test_patient_ids_from_file_names(kaggle):
    groups = {s.group for s in KaggleChestXray(root=kaggle).samples()}
    assert groups == {
        "IM-0115", "NORMAL2-IM-1427", "NORMAL2-IM-1430", "IM-0001",
        "person1", "person3", "person12", "person20", "person100", "person101",
    }  # fmt: skip
    by_patient = Counter(s.group for s in KaggleChestXray(root=kaggle).samples())
    assert by_patient["person1"] == 2 and by_patient["IM-0115"] == 2


def test_splits_option_reads_only_those_folders(kaggle):
    samples = list(KaggleChestXray(root=kaggle, splits=["test", "val", "test"]).samples())
    assert {s.meta["source_split"] for s in samples} == {"val", "test"} and len(samples) == 5
    assert KaggleChestXray(root=kaggle, splits=["test", "val"]).options.splits == ["val", "test"]


def test_root_may_be_the_parent_of_chest_xray(kaggle):
    inner = [(s.key, s.label, s.group) for s in KaggleChestXray(root=kaggle).samples()]
    outer = [(s.key, s.label, s.group) for s in KaggleChestXray(root=kaggle.parent).samples()]
    assert inner == outer


def test_keys_hide_file_names_unless_revealed(kaggle):
    hidden = list(KaggleChestXray(root=kaggle).samples())
    assert len({s.key for s in hidden}) == len(hidden)
    for s in hidden:
        cls, digest = s.key.split("/")
        assert cls in ("normal", "bacteria", "virus") and len(digest) == 12
        assert "person" not in s.key and "IM-" not in s.key
    shown = {s.key for s in KaggleChestXray(root=kaggle, reveal_file_names=True).samples()}
    assert "train/PNEUMONIA/person1_bacteria_1.jpeg" in shown
    assert "train/NORMAL/NORMAL2-IM-1427-0001.jpeg" in shown


def test_images_load_as_plain_arrays_and_loaders_pickle(kaggle):
    for s in KaggleChestXray(root=kaggle).samples():
        image = pickle.loads(pickle.dumps(s)).load()  # the core sends whole samples to workers
        assert type(image) is np.ndarray and image.dtype == np.uint8
        assert image.ndim == 2 or image.shape[2] == 3
    rgb = next(s for s in KaggleChestXray(root=kaggle, reveal_file_names=True).samples() if "IM-0001" in s.key)
    assert rgb.load().shape == (22, 24, 3)


def test_pneumonia_file_without_type_is_skipped_naming_the_rule(kaggle, caplog):
    write_jpeg(kaggle / "train" / "PNEUMONIA" / "person7_0003.jpeg")
    samples = list(KaggleChestXray(root=kaggle).samples())
    bad = [s for s in samples if s.key.startswith("pneumonia/")]
    assert len(bad) == 1 and bad[0].group == "person7"
    with pytest.raises(ValueError, match="neither 'bacteria' nor 'virus'.*classes: two") as info:
        bad[0].load()
    assert "person7" not in str(info.value)
    two = [s for s in KaggleChestXray(root=kaggle, classes="two").samples() if s.group == "person7"]
    assert two[0].load().shape == (20, 24)


def test_bad_files_are_ignored_or_refused_by_load(kaggle, caplog):
    folder = kaggle / "train" / "NORMAL"
    (folder / "IM-0200-0001.jpeg").write_bytes(b"")
    (folder / "IM-0201-0001.jpeg").write_text("this is a text file")
    data = (folder / "IM-0115-0001.jpeg").read_bytes()
    (folder / "IM-0202-0001.jpeg").write_bytes(data[: len(data) // 2])
    Image.new("L", (1, 1)).save(folder / "IM-0203-0001.jpeg", "JPEG")
    samples = {s.group: s for s in KaggleChestXray(root=kaggle).samples()}
    assert len(samples) == 14  # 10 patients + 4 bad; hidden files and notes.txt not even listed
    for patient, message in [
        ("IM-0200", "file is empty"),
        ("IM-0201", "not a readable JPEG/PNG"),
        ("IM-0202", "not a readable JPEG/PNG.*truncated"),
        ("IM-0203", "1x1 pixels; at least 8x8"),
    ]:
        with pytest.raises(ValueError, match=message) as info:
            samples[patient].load()
        assert patient not in str(info.value)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_empty_class_folder_warns_and_empty_data_set_is_an_error(kaggle, caplog, tmp_path):
    for f in (kaggle / "val" / "NORMAL").iterdir():
        f.unlink()
    with caplog.at_level(logging.WARNING, logger="augkit"):
        samples = list(KaggleChestXray(root=kaggle).samples())
    assert len(samples) == 11 and "val/NORMAL has no images" in caplog.text

    empty = tmp_path / "empty" / "chest_xray"
    (empty / "train" / "NORMAL").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"no images under .*expected chest_xray/\{train,val,test\}"):
        list(KaggleChestXray(root=empty).samples())
    with pytest.raises(ValueError, match="has no train/, val/ or test/ folder"):
        list(KaggleChestXray(root=tmp_path / "empty" / "chest_xray" / "train").samples())


def test_options_are_validated(kaggle, tmp_path):
    with pytest.raises(ValidationError, match="does not exist; give the Kaggle 'chest_xray' folder"):
        KaggleChestXray(root=tmp_path / "nope")
    with pytest.raises(ValidationError, match="is a file, not a folder"):
        KaggleChestXray(root=kaggle / "train" / "NORMAL" / "notes.txt")
    for bad in ({"classes": "four"}, {"splits": ["training"]}, {"splits": []}, {"colour": True}):
        with pytest.raises(ValidationError):
            KaggleChestXray(root=kaggle, **bad)
    with pytest.raises(ValidationError, match="frozen"):
        KaggleChestXray(root=kaggle).options.classes = "two"


def test_fingerprint_follows_content_and_options(kaggle):
    before = KaggleChestXray(root=kaggle).fingerprint()
    assert KaggleChestXray(root=kaggle.parent).fingerprint() == before  # same files, same data
    assert KaggleChestXray(root=kaggle, classes="two").fingerprint() != before
    write_jpeg(kaggle / "test" / "NORMAL" / "IM-0001-0001.jpeg", seed=99)
    assert KaggleChestXray(root=kaggle).fingerprint() != before


def test_registered_through_the_plugin_hook():
    registry = augkit.get_plugin_manager(load_entry_points=False, extra=[augkit_plugins.kaggle_chest_xray])
    assert registry.get("dataset", "kaggle-chest-xray") is KaggleChestXray
