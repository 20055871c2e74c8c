"""Simulated classifier studies with known truth, to check the study's statistics (docs/evaluation.md).

A study here is what augkit's classifier study produces: per regime, one predicted-label vector per
training run on one test split whose images come from patients. The simulation has the three sources
of variation a real study has: the test patients (each with a difficulty shared by their images, and
one class), the images, and the training run (a shift of the model's skill, plus which images it
happens to get wrong). Two regimes with the same ``skill`` are a null study; a positive
``difference`` makes regime ``a`` better by that much on the logit scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StudyShape:
    """The simulated study's size and noise. Defaults: a 3-class test split of ~620 images in 200
    patients, models near 80 % accuracy whose accuracy varies ~2.5 % between training runs."""

    patients: int = 200
    images_per_patient: float = 3.1  # mean (1 + Poisson)
    classes: int = 3
    seeds: int = 3
    skill: float = 1.6  # logit of a typical image being classified correctly
    patient_sd: float = 1.0  # difficulty shared by a patient's images
    image_sd: float = 0.7
    model_sd: float = 0.17  # training run: shift of skill (logit); ~2.5 % accuracy
    run_image_sd: float = 0.8  # training run x image: which images this run happens to get wrong


def test_split(rng: np.random.Generator, shape: StudyShape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, patient of each image, difficulty of each image) of one simulated test split."""
    sizes = 1 + rng.poisson(shape.images_per_patient - 1, size=shape.patients)
    groups = np.repeat(np.arange(shape.patients), sizes)
    labels = rng.integers(0, shape.classes, size=shape.patients)[groups]
    difficulty = rng.normal(0, shape.patient_sd, shape.patients)[groups] + rng.normal(0, shape.image_sd, len(groups))
    return labels, groups, difficulty


def runs(rng: np.random.Generator, shape: StudyShape, labels: np.ndarray, difficulty: np.ndarray, *,
         difference: float = 0.0) -> list[np.ndarray]:
    """``shape.seeds`` training runs' predicted labels on the split; ``difference`` added to their skill."""
    out = []
    for _ in range(shape.seeds):
        shift = shape.skill + difference + rng.normal(0, shape.model_sd)
        logit = shift - difficulty + rng.normal(0, shape.run_image_sd, len(labels))
        correct = rng.random(len(labels)) < 1 / (1 + np.exp(-logit))
        wrong = (labels + rng.integers(1, shape.classes, len(labels))) % shape.classes
        out.append(np.where(correct, labels, wrong))
    return out


def study(rng: np.random.Generator, shape: StudyShape, difference: float = 0.0):
    """(labels, groups, a's runs, b's runs): one simulated two-regime study on a fresh test split."""
    labels, groups, difficulty = test_split(rng, shape)
    return labels, groups, runs(rng, shape, labels, difficulty, difference=difference), runs(rng, shape, labels, difficulty)


def p_value(labels: np.ndarray, groups: np.ndarray, a: list[np.ndarray], b: list[np.ndarray], metric, *,
            n_boot: int = 200, seed: int = 0, pooled: bool = True) -> float:
    """The p-value augkit's study gives ``a`` against ``b``: ``augkit.outputs.stats.compare``, with the
    training variance pooled over the two regimes as ``augkit.outputs.comparisons`` pools it over a study's."""
    from augkit.outputs import stats

    pool = None
    if pooled:
        scores = [np.array([metric(labels, p) for p in runs]) for runs in (a, b)]
        pool = {stats.RUN_UNITS: stats.pooled_variance(scores)}
    return stats.compare(labels, a, b, metric, groups=groups, n_boot=n_boot, seed=seed, pool=pool)["p_value"]
