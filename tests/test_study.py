import numpy as np
import pytest
import torch

import augkit
from augkit.stages import study


def test_synthetic_needs_per_regime():
    regimes = ["real", "fake", "fake+real", "real+classic", "real+oversample", "fake+real@0.5", "fake+real@2"]
    needs = study.synthetic_needs(regimes, [10, 40, 5], per_class=None, multiplier=1.0, balance=False)
    assert needs["fake"] == needs["fake+real"] == needs["real+classic"] == [40, 40, 40]
    assert needs["fake+real@0.5"] == [9, 9, 9] and needs["fake+real@2"] == [37, 37, 37]
    assert "real" not in needs and "real+oversample" not in needs and needs["export"] == [40, 40, 40]
    balanced = study.synthetic_needs(regimes, [10, 40, 5], per_class=7, multiplier=1.0, balance=True)
    assert balanced["fake"] == [7, 7, 7] and balanced["fake+real"] == [30, 0, 35] == balanced["real+classic"]
    assert study.pool_counts(balanced, 3) == [37, 37, 37]


@pytest.fixture
def sets():
    train = augkit.LabeledImages(torch.rand(13, 1, 8, 8) * 2 - 1, torch.tensor([0] * 10 + [1] * 3), ["a", "b"])
    pool = augkit.LabeledImages(-torch.ones(20, 1, 8, 8), torch.tensor([0, 1] * 10), ["a", "b"])
    needs = study.synthetic_needs(
        ["fake", "fake+real", "real+classic", "fake+real@1"], train.counts(), per_class=None, multiplier=0.5, balance=True
    )
    return train, pool, needs


def test_regime_data_counts(sets):
    train, pool, needs = sets
    counts = {r: study.regime_data(r, train, pool, needs, seed=0).counts()
              for r in ("real", "fake", "fake+real", "real+classic", "real+oversample", "fake+real@1")}
    assert counts["real"] == [10, 3]
    assert counts["fake"] == [5, 5]  # 0.5 x the largest class, per class
    assert counts["fake+real"] == counts["real+classic"] == counts["real+oversample"] == [10, 10]  # balanced
    assert counts["fake+real@1"] == [10 + 6, 3 + 6]  # 13 real -> 13 synthetic, evenly spread (rounded)


def test_regimes_are_deterministic_and_classic_copies_are_new_images(sets):
    train, pool, needs = sets
    a = study.regime_data("real+classic", train, pool, needs, seed=1)
    b = study.regime_data("real+classic", train, pool, needs, seed=1)
    assert torch.equal(a.images, b.images)
    extra = a.images[len(train):]
    assert len(extra) == 7 and extra.min() >= -1 and extra.max() <= 1
    assert not any(torch.equal(e, t) for e in extra for t in train.images)


def test_summary_pools_one_confusion_matrix_and_compares_paired():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    runs, preds = {}, {}
    for regime, skill in (("real", 0.5), ("fake+real", 0.9)):
        for seed in range(3):
            proba = np.full((120, 3), 0.1)
            guess = np.where(rng.random(120) < skill, y, rng.integers(0, 3, 120))
            proba[np.arange(120), guess] = 0.8
            runs.setdefault(regime, []).append({"seed": seed, **study.run_metrics(y, proba, ["a", "b", "c"])})
            preds.setdefault(regime, []).append(guess)
    out = study.summarise(runs, preds, y, ["a", "b", "c"], seed=0)
    fr = out["fake+real"]
    assert np.sum(fr["confusion_matrix"]) == 3 * 120
    for name in ("accuracy", "precision", "recall", "f1"):  # the table shows what the intervals are about
        assert fr[name] == pytest.approx(np.mean([r[name] for r in runs["fake+real"]]))
    assert fr["f1"] == pytest.approx(fr["bootstrap"]["f1"]["estimate"])
    assert fr["f1"] <= (fr["precision"] + fr["recall"]) / 2 + 1e-12
    assert fr["vs_real"]["accuracy"]["difference"] > 0.2 and fr["vs_real"]["accuracy"]["p_value"] < 0.01
    assert "vs_real" not in out["real"]
    assert fr["seeds"]["accuracy"]["low"] <= fr["seeds"]["accuracy"]["mean"] <= fr["seeds"]["accuracy"]["high"]


def test_reviewer_warnings():
    metrics = {"regimes": {"real": {"accuracy": 0.6}, "fake": {"accuracy": 0.8}}}
    warnings = study.reviewer_warnings(metrics, [30, 5], ["normal", "virus"])
    assert any("only 35 images" in w for w in warnings)
    assert any("class virus has 5 test images" in w for w in warnings)
    assert any("fake-only beats real-only" in w for w in warnings)
