"""Train / val / test splits that never put one patient in two splits."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from augkit.stages.data import DataError

log = logging.getLogger("augkit")


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # indices into the full set
    val: np.ndarray
    test: np.ndarray


def _assign(labels: np.ndarray, groups: Sequence[str], fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Indices of each part; every patient lands in exactly one part.

    Patients are visited in a seeded random order, largest first, and each goes to the part
    whose class quotas it helps fill most; so class proportions match as closely as whole
    patients allow. Patients are taken in order of first appearance, so the result never
    depends on how ids are spelt or hashed.
    """
    n_classes = int(labels.max()) + 1
    first: dict[str, int] = {}
    inverse = np.array([first.setdefault(g, len(first)) for g in groups], dtype=int)
    per_group = np.zeros((len(first), n_classes))
    np.add.at(per_group, (inverse, labels), 1)
    order = np.random.default_rng(seed).permutation(len(first))
    order = order[np.argsort(-per_group[order].sum(1), kind="stable")]

    target = np.asarray(fractions)[:, None] * per_group.sum(0)[None, :]  # (parts, K)
    filled = np.zeros_like(target)
    assign = np.empty(len(first), dtype=int)
    for g in order:
        need = ((target - filled) / np.maximum(target, 1e-9)) @ per_group[g]
        assign[g] = s = int(np.argmax(need))
        filled[s] += per_group[g]
    return [np.flatnonzero(assign[inverse] == s) for s in range(len(fractions))]


def _check(parts: Sequence[np.ndarray], n_patients: int, hint: str) -> None:
    for name, ix in zip(("train", "val", "test"), parts):
        if len(ix) == 0:
            raise DataError(f"the {name} split is empty: {n_patients} patients are too few; {hint}")


def split_by_patient(labels: Iterable[int], groups: Sequence[str], *, val: float, test: float, seed: int) -> Split:
    """Stratified split of patients into train / val / test by the given fractions."""
    labels = np.asarray(list(labels))
    if len(labels) != len(groups):
        raise ValueError(f"{len(labels)} labels but {len(groups)} groups")
    if val + test >= 1:
        raise DataError(f"split.val + split.test = {val + test:g} leaves nothing to train on; keep it below 1")
    parts = _assign(labels, groups, [1.0 - val - test, val, test], seed)
    _check(parts, len(set(groups)), f"add data or change split.val={val:g} / split.test={test:g}")
    return Split(*parts)


def split_keeping_source_test(
    labels: Iterable[int], groups: Sequence[str], sources: Sequence[str | None], *, val: float, seed: int
) -> Split:
    """Keep the dataset's own test split; carve validation out of the rest, by patient.

    A patient found in both the dataset's test split and the rest is a leak in the dataset
    itself: it is reported (the rest is kept, so results stay comparable with the literature).
    """
    labels = np.asarray(list(labels))
    if not any(s == "test" for s in sources):
        raise DataError(
            "split.mode: source needs a dataset that records its own test split (kaggle-chest-xray does); "
            "this one does not: use split.mode: patients"
        )
    is_test = np.array([s == "test" for s in sources])
    test = np.flatnonzero(is_test)
    rest = np.flatnonzero(~is_test)
    shared = {groups[i] for i in test} & {groups[i] for i in rest}
    if shared:
        log.warning("the dataset's own split puts %d patient(s) in both test and train/val", len(shared))
    train_part, val_part = _assign(labels[rest], [groups[i] for i in rest], [1.0 - val, val], seed)
    parts = [rest[train_part], rest[val_part], test]
    _check(parts, len(set(groups)), f"add data or change split.val={val:g}")
    return Split(*parts)
