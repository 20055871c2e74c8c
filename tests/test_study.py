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
        ["fake", "fake+real", "real+classic", "fake+real+classic", "fake+real@1"], train.counts(), per_class=None,
        multiplier=0.5, balance=True
    )
    return train, pool, needs


def test_regime_data_counts(sets):
    train, pool, needs = sets
    counts = {r: study.regime_data(r, train, pool, needs, seed=0).counts()
              for r in ("real", "fake", "fake+real", "real+classic", "real+oversample", "fake+real+classic",
                        "fake+real@1")}
    assert counts["real"] == [10, 3]
    assert counts["fake"] == [5, 5]  # 0.5 x the largest class, per class
    assert counts["fake+real"] == counts["real+classic"] == counts["real+oversample"] == [10, 10]  # balanced
    assert counts["fake+real@1"] == [10 + 6, 3 + 6]  # 13 real -> 13 synthetic, evenly spread (rounded)
    # the synthetic images of fake+real and the classic copies of real+classic
    both = study.regime_data("fake+real+classic", train, pool, needs, seed=0)
    assert both.counts() == [10, 3 + 7 + 7]
    assert (both.images[13:20] == -1).all() and not (both.images[20:] == -1).all()


def test_regimes_are_deterministic_and_classic_copies_are_new_images(sets):
    train, pool, needs = sets
    a = study.regime_data("real+classic", train, pool, needs, seed=1)
    b = study.regime_data("real+classic", train, pool, needs, seed=1)
    assert torch.equal(a.images, b.images)
    extra = a.images[len(train):]
    assert len(extra) == 7 and extra.min() >= -1 and extra.max() <= 1
    assert not any(torch.equal(e, t) for e in extra for t in train.images)


def _predictions(skills: dict[str, float], n: int = 120, seeds: int = 3, groups=None):
    from augkit.outputs import comparisons

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    runs = {}
    p = comparisons.Predictions(["a", "b", "c"], y, groups)
    for regime, skill in skills.items():
        for seed in range(seeds):
            proba = np.full((n, 3), 0.1)
            guess = np.where(rng.random(n) < skill, y, rng.integers(0, 3, n))
            proba[np.arange(n), guess] = 0.8
            runs.setdefault(regime, []).append({"seed": seed, **study.run_metrics(y, proba, ["a", "b", "c"])})
            p.runs.setdefault(regime, []).append(comparisons.Run(seed, proba))
    return runs, p


def test_summary_pools_one_confusion_matrix_and_compares_with_real():
    runs, p = _predictions({"real": 0.5, "fake+real": 0.9})
    out = study.summarise(runs, p, seed=0)
    fr = out["regimes"]["fake+real"]
    assert np.sum(fr["confusion_matrix"]) == 3 * 120
    for name in ("accuracy", "precision", "recall", "f1"):  # the table shows what the intervals are about
        assert fr[name] == pytest.approx(np.mean([r[name] for r in runs["fake+real"]]))
    assert fr["f1"] == pytest.approx(fr["interval"]["f1"]["estimate"])
    assert fr["interval"]["f1"]["low"] <= fr["f1"] <= fr["interval"]["f1"]["high"]
    assert fr["f1"] <= (fr["precision"] + fr["recall"]) / 2 + 1e-12
    [row] = out["comparisons"]
    assert (row["regime"], row["reference"]) == ("fake+real", "real")
    assert row["accuracy"]["estimate"] > 0.2 and row["accuracy"]["p_holm"] < 0.05
    assert out["verdict"] == [study.comparisons.sentence(row)]
    assert "evidence that synthetic images help beyond the real images alone" in out["verdict"][0]


def test_per_class_support_counts_test_images_not_runs():
    runs, p = _predictions({"real": 0.7}, seeds=3)
    out = study.summarise(runs, p, seed=0)["regimes"]["real"]
    assert [c["support"] for c in out["per_class"].values()] == np.bincount(p.labels, minlength=3).tolist()
    assert np.sum(out["confusion_matrix"]) == 3 * len(p.labels)  # the display matrix sums the runs


def test_every_synthetic_regime_is_compared_with_its_matched_controls_holm_adjusted():
    skills = {"real": 0.7, "fake": 0.6, "fake+real": 0.72, "real+classic": 0.72, "real+oversample": 0.7,
              "fake+real+classic": 0.73}
    runs, p = _predictions(skills, seeds=3)
    out = study.summarise(runs, p, seed=0, n_boot=300)
    pairs = [(r["regime"], r["reference"]) for r in out["comparisons"]]
    assert pairs == [("fake", "real"), ("fake+real", "real"), ("real+classic", "real"), ("real+oversample", "real"),
                     ("fake+real+classic", "real"), ("fake+real", "real+classic"), ("fake+real", "real+oversample"),
                     ("fake+real+classic", "real+classic")]
    raw = [r["f1"]["p_value"] for r in out["comparisons"]]
    assert [r["f1"]["p_holm"] for r in out["comparisons"]] == pytest.approx(study.stats.holm(raw))
    assert all(r["f1"]["p_holm"] >= r["f1"]["p_value"] for r in out["comparisons"])
    # the verdict: one line per augmentation comparison; near-equal skills read as inconclusive
    assert len(out["verdict"]) == 5
    line = next(v for v in out["verdict"] if v.startswith("fake+real vs real+classic"))
    assert "Holm p " in line and "95 % CI" in line
    assert out["verdict"].index(line) < out["verdict"].index(next(v for v in out["verdict"] if " vs real:" in v))
    assert line.endswith("no evidence that synthetic images help beyond classical augmentation (inconclusive).")
    assert out["not_covered"] == [study.comparisons.not_covered(3, 0, True)[0]]


def test_reviewer_warnings():
    metrics = {"regimes": {"real": {"accuracy": 0.6}, "fake": {"accuracy": 0.8}}}
    warnings = study.reviewer_warnings(metrics, [30, 5], ["normal", "virus"])
    assert any("only 35 images" in w for w in warnings)
    assert any("class virus has 5 test images" in w for w in warnings)
    assert any("fake-only beats real-only" in w for w in warnings)
    assert not any("at chance" in w for w in warnings)


def test_a_study_whose_real_only_classifiers_learnt_nothing_says_so():
    """The quickstart's real-only classifiers once answered "normal" for nearly every image (balanced accuracy
    0.33 for 3 classes) and the study only said "inconclusive": the reviewer names the cause."""
    at_chance = {"regimes": {"real": {"accuracy": 0.45, "balanced_accuracy": 0.333}}}
    warnings = study.reviewer_warnings(at_chance, [30, 30, 6], ["normal", "bacteria", "virus"])
    assert any("real-only classifiers are at chance: balanced accuracy 0.33, chance 0.33 for 3 classes" in w
               for w in warnings)
    learnt = {"regimes": {"real": {"accuracy": 0.8, "balanced_accuracy": 0.72}}}
    assert not any("at chance" in w for w in study.reviewer_warnings(learnt, [30, 30, 6], ["normal", "bacteria",
                                                                                            "virus"]))
    # fake-only beating classifiers at chance is no sign of leakage: the warning says what it does mean
    both = {"regimes": {"real": {"accuracy": 0.47, "balanced_accuracy": 0.34},
                        "fake": {"accuracy": 0.55, "balanced_accuracy": 0.45}}}
    said = study.reviewer_warnings(both, [30, 30, 6], ["normal", "bacteria", "virus"])
    assert any("fake-only beats real-only, whose classifiers are at chance" in w for w in said)
    assert not any("leakage between" in w for w in said)
    beaten = {"regimes": {"real": {"accuracy": 0.7, "balanced_accuracy": 0.65},
                          "fake": {"accuracy": 0.8, "balanced_accuracy": 0.75}}}
    said = study.reviewer_warnings(beaten, [30, 30, 6], ["normal", "bacteria", "virus"])
    assert any("fake-only beats real-only: check for leakage between" in w for w in said)
    two_classes = {"regimes": {"real": {"accuracy": 0.6, "balanced_accuracy": 0.53}}}
    assert any("chance 0.50 for 2 classes" in w for w in study.reviewer_warnings(two_classes, [50, 50], ["a", "b"]))
