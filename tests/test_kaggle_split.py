"""The Kaggle layout through the real loading, preprocessing and splitting: no patient leaks."""

import logging

import numpy as np
import pytest
from test_kaggle_chest_xray import write_jpeg

import augkit
from augkit.stages.data import load_and_preprocess
from augkit.stages.splits import split_by_patient, split_keeping_source_test
from augkit_plugins.kaggle_chest_xray import KaggleChestXray


@pytest.fixture
def kaggle(tmp_path):
    root = tmp_path / "chest_xray"
    rng = np.random.default_rng(0)
    n = 0
    for split, patients in (("train", range(0, 40)), ("test", range(40, 52))):
        for p in patients:
            for k in range(int(rng.integers(1, 4))):
                kind = ("normal", "bacteria", "virus")[p % 3]
                if kind == "normal":
                    path = root / split / "NORMAL" / f"IM-{p:04d}-{k + 1:04d}.jpeg"
                else:
                    path = root / split / "PNEUMONIA" / f"person{p}_{kind}_{k}.jpeg"
                write_jpeg(path, size=(40, 36), seed=n)
                n += 1
    # the real data set has patients in both its train and test folders; so does this fixture
    write_jpeg(root / "test" / "PNEUMONIA" / "person1_bacteria_9.jpeg", size=(40, 36), seed=999)
    return root


def loaded(root):
    source = KaggleChestXray(root=root)
    raw_groups = [s.group for s in source.samples()]
    result = load_and_preprocess(
        source, augkit.build("preprocessor", "paper", image_size=16), source_name="k", prep_name="p", cache_dir=None
    )
    assert not result.skipped and len(result.data) == len(raw_groups)
    return result, raw_groups


def test_resplit_never_shares_a_patient(kaggle):
    result, raw = loaded(kaggle)
    for seed in range(5):
        split = split_by_patient(result.data.labels.tolist(), result.data.groups, val=0.15, test=0.2, seed=seed)
        parts = [{raw[i] for i in ix} for ix in (split.train, split.val, split.test)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert "person1" in set().union(*parts)


def test_source_split_keeps_kaggle_test_and_reports_its_leak(kaggle, caplog):
    result, raw = loaded(kaggle)
    with caplog.at_level(logging.WARNING, logger="augkit"):
        split = split_keeping_source_test(
            result.data.labels.tolist(), result.data.groups, result.sources, val=0.2, seed=0
        )
    assert sorted(split.test.tolist()) == [i for i, s in enumerate(result.sources) if s == "test"]
    assert not {raw[i] for i in split.train} & {raw[i] for i in split.val}
    assert "puts 1 patient(s) in both test and train/val" in caplog.text
    assert "person1" not in caplog.text  # the leak is counted, the patient not named
