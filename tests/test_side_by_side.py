"""Classifier trainings side by side (evaluation.workers): the numbers of one thread, live progress."""

from __future__ import annotations

import csv

import pytest
import torch

import augkit
from augkit.stages import side_by_side
from test_distributed import REGIMES, SEEDS, study_inputs


def _study(out_dir, workers: int, progress=None):
    from augkit.outputs.progress import no_progress
    from augkit.stages import study

    resolved, train, val, test, pool, needs = study_inputs(f"evaluation.workers={workers}")
    return study.evaluate(resolved, train, val, test, pool, needs, out_dir, progress or no_progress,
                          regimes=REGIMES, seeds=SEEDS)


def _probabilities(folder) -> list[list[str]]:
    with open(folder / "predictions.csv") as f:
        return list(csv.reader(f))


def test_two_workers_give_the_numbers_one_thread_gives(tmp_path, monkeypatch):
    shown = []

    def progress(iterable, description="", total=None):
        for item in iterable:
            shown.append((description, total, item))
            yield item

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each worker runs on
    try:
        alone = _study(tmp_path / "alone", 1)
    finally:
        torch.set_num_threads(threads)
    together = _study(tmp_path / "together", 2, progress)
    assert _probabilities(tmp_path / "alone") == _probabilities(tmp_path / "together")
    assert alone["regimes"] == together["regimes"]
    with open(tmp_path / "together" / "classifier_losses.csv") as f:
        curves = list(csv.DictReader(f))
    assert {(r["regime"], r["seed"]) for r in curves} == {(r, str(s)) for r in REGIMES for s in SEEDS}
    # one bar for all trainings, fed live: a row per epoch of every training, then each training's end
    assert {d for d, _, _ in shown} == {"classifiers x2"}
    rows = [item for _, _, (event, _, item) in shown if event == "row"]
    assert len(rows) == len(curves) and sum(e == "done" for _, _, (e, _, _) in shown) == len(REGIMES) * len(SEEDS)
    steps = [r["step"] for r in rows]
    assert steps == sorted(steps) and steps[-1] <= shown[0][1]


def test_worker_count():
    cpu = augkit.build("classifier", "efficientnetv2", device="cpu")
    assert side_by_side.worker_count(3, cpu, 10) == 3
    assert side_by_side.worker_count(3, cpu, 2) == 2  # never more processes than trainings
    assert side_by_side.worker_count("auto", cpu, 10) == side_by_side.cores()
    assert side_by_side.worker_count("auto", type("OnGpu", (), {"device": torch.device("cuda")})(), 10) == 1


def test_workers_is_checked():
    with pytest.raises(augkit.RecipeError, match="workers"):
        augkit.load_recipe({"dataset": {"name": "chest-phantom"}, "image_size": 16, "evaluation": {"workers": 0}})
