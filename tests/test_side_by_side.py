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
    rows = [item for _, _, item in shown if "done" not in item]
    assert len(rows) == len(curves) and sum("done" in item for _, _, item in shown) == len(REGIMES) * len(SEEDS)
    # the bar counts epochs, never events: it ends full, not past its total (it read 133/126 when ends counted)
    steps = [item["step"] for _, _, item in shown]
    assert steps == sorted(steps) and steps[-1] == shown[0][1]


def test_worker_count():
    cpu = augkit.build("classifier", "efficientnetv2", device="cpu")
    assert side_by_side.worker_count(3, cpu, 10) == 3
    assert side_by_side.worker_count(3, cpu, 2) == 2  # never more processes than trainings
    assert side_by_side.worker_count("auto", cpu, 10) == side_by_side.cores()
    assert side_by_side.worker_count("auto", type("OnGpu", (), {"device": torch.device("cuda")})(), 10) == 1


def test_workers_is_checked():
    with pytest.raises(augkit.RecipeError, match="workers"):
        augkit.load_recipe({"dataset": {"name": "chest-phantom"}, "image_size": 16, "evaluation": {"workers": 0}})


def _reuse_inputs(regimes: list[str]):
    from test_distributed import study_inputs as inputs

    return inputs(f"evaluation.regimes={regimes}", "evaluation.ratios=[]", "evaluation.seeds=1", "evaluation.workers=2")


@pytest.mark.parametrize("regimes, stands_in", [(["real", "fake", "fake+real"], True),  # 2 left: one round
                                                (["real", "fake"], False)])             # 1 left: no round saved
def test_the_audits_classifier_stands_in_side_by_side_only_as_a_worker_would_train_it(tmp_path, regimes, stands_in):
    """Side by side, the audit's real classifier trains on one thread, as a worker, when standing in for
    ("real", 0) saves the study a round; the study with it gives the numbers ``augkit evaluate`` gives."""
    from augkit.outputs.progress import no_progress
    from augkit.stages import reuse, study

    resolved, train, val, test, pool, needs = _reuse_inputs(regimes)
    classifier = resolved.build("classifier")
    assert reuse.audit_threads(resolved, classifier) == (1 if stands_in else None)
    other = augkit.build("classifier", "efficientnetv2", variant="test_efficientnet", epochs=3)
    assert reuse.audit_threads(resolved, other) is None  # not the study's training: never stands in
    with side_by_side.threads(reuse.audit_threads(resolved, classifier)):
        rows = list(classifier.fit(train, val, seed=0))
    trained = reuse.reusable(resolved, (classifier, rows), 0)
    assert bool(trained) == stands_in
    kw = dict(regimes=resolved.recipe.evaluation.all_regimes(), seeds=[0])
    run = study.evaluate(resolved, train, val, test, pool, needs, tmp_path / "run", no_progress, trained=trained, **kw)
    evaluate = study.evaluate(resolved, train, val, test, pool, needs, tmp_path / "evaluate", no_progress, **kw)
    assert _probabilities(tmp_path / "run") == _probabilities(tmp_path / "evaluate")
    assert run["regimes"] == evaluate["regimes"]


@pytest.fixture
def every_core():
    """This process on one thread per core, as a run starts: a pytest-xdist worker runs on one, where lowering the
    count by a core for a worker beside it could not show on 2 cores."""
    with side_by_side.threads(side_by_side.cores()):
        yield


def test_threads_restores_the_count(every_core):
    before = torch.get_num_threads()
    with side_by_side.threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with side_by_side.threads(None):
        assert torch.get_num_threads() == before


@pytest.mark.skipif(side_by_side.cores() < 2, reason="a head start needs a core beside the run's own work")
@pytest.mark.parametrize("when", ["generator", "audit"])
def test_a_head_start_gives_the_study_the_numbers_it_would_train_itself(tmp_path, when, every_core):
    """evaluation.head_start: the real-data trainings begin in one worker before the study (from the generator or
    from the audit on, this process on one core fewer); the study then reports exactly what it reports training
    them itself, as ``augkit evaluate`` does."""
    import time

    from augkit.outputs.progress import no_progress
    from augkit.stages import head_start, study

    settings = ("evaluation.workers=2", f"evaluation.regimes={REGIMES}", "evaluation.ratios=[]",
                f"evaluation.seeds={len(SEEDS)}", f"evaluation.head_start={when}")
    resolved, train, val, test, pool, _ = study_inputs(*settings, "audit.enabled=false")
    needs = study.recipe_needs(resolved.recipe, train)
    kw = dict(regimes=REGIMES, seeds=SEEDS)
    every = torch.get_num_threads()
    with head_start.head_start(resolved, train, val, test, SEEDS) as head:
        assert sorted(head.jobs.values()) == [(r, None, s) for r in ("real", "real+classic") for s in SEEDS]
        with head_start.during(head, "generator"):  # the generator keeps every core unless the head start begins there
            assert torch.get_num_threads() == (side_by_side.cores() - 1 if when == "generator" else every)
        with head_start.during(head, "audit"):
            assert torch.get_num_threads() == side_by_side.cores() - 1
            deadline = time.monotonic() + 120
            while not head.pool.ended and time.monotonic() < deadline:  # the study has not begun: it trains already
                time.sleep(0.1)
            assert head.pool.ended
        started = study.evaluate(resolved, train, val, test, pool, needs, tmp_path / "run", no_progress, head=head,
                                 **kw)
    alone = study.evaluate(resolved, train, val, test, pool, needs, tmp_path / "evaluate", no_progress, **kw)
    assert _probabilities(tmp_path / "run") == _probabilities(tmp_path / "evaluate")
    assert started["regimes"] == alone["regimes"]
    # the audit's classifier stands in for ("real", first seed): the head start leaves that one to it
    audited, *_ = study_inputs(*settings)
    with head_start.head_start(audited, train, val, test, SEEDS) as head:
        assert ("real", None, SEEDS[0]) not in head.jobs.values() and len(head.jobs) == 3
    # none (YAML's false too), or one training at a time: no head start
    for off in ("evaluation.head_start=none", "evaluation.head_start=false", "evaluation.workers=1"):
        with head_start.head_start(study_inputs(*settings, off)[0], train, val, test, SEEDS) as head:
            assert head is None


@pytest.mark.skipif(side_by_side.cores() < 2, reason="a head start needs a core beside the run's own work")
def test_synthetic_images_are_sampled_on_every_core_beside_a_head_start(tmp_path, every_core):
    """A thread count can change a generator's rounding, and ``augkit evaluate`` / ``generate`` sample on every
    core: beside a head start the pool is still sampled on every core, its workers stopped meanwhile."""
    from pathlib import Path

    from augkit.stages import head_start
    from augkit.stages.batches import generate_batches

    resolved, train, val, test, *_ = study_inputs("evaluation.workers=2", "evaluation.head_start=generator",
                                                   "audit.enabled=false")
    every, seen = torch.get_num_threads(), []

    class Recording:
        def sample(self, labels, *, seed):
            states = [Path(f"/proc/{pid}/stat").read_text().split()[2] for pid in head.pool.pids
                      if Path(f"/proc/{pid}/stat").exists()]
            seen.append((torch.get_num_threads(), states))
            return torch.zeros(len(labels), 1, 16, 16)

    with head_start.head_start(resolved, train, val, test, SEEDS) as head, head_start.during(head, "generator"):
        assert torch.get_num_threads() == side_by_side.cores() - 1  # the generator trains beside the worker
        batches = list(generate_batches(Recording(), torch.arange(3).repeat(4), seed=0, batch_size=4))
        assert torch.get_num_threads() == side_by_side.cores() - 1
    assert len(batches) == 3 and [n for n, _ in seen] == [every] * 3
    assert all(state in ("T", "t") for _, states in seen for state in states)  # stopped while sampling (Linux)
