"""The classifier study: one classifier per regime and seed, scored on the real test split.

Regimes (training data; validation and test are always the real splits):

* ``real``: the real training split;
* ``fake``: synthetic images only (``synthetic`` in the recipe sets how many per class);
* ``fake+real``: both (with ``synthetic.balance``, just enough synthetic images to balance);
* ``real+classic``: real plus the same number of classically augmented copies of real images
  (shifts, small rotations and zooms, intensity): the baseline a reviewer asks for first;
* ``real+oversample``: real plus repeated minority images until the classes balance;
* ``fake+real+classic``: real plus the synthetic images of ``fake+real`` plus as many classic copies
  as ``real+classic`` adds: do synthetic images add anything on top of classical augmentation?
* ``fake+real@R`` (``evaluation.ratios``): real plus R x (real count) synthetic images,
  spread evenly over the classes.

Every regime shares the split, the test images and the classifier seeds. The comparisons (every
regime against ``real``, every synthetic regime against its matched controls) and their intervals
count the training runs and the test patients: :mod:`augkit.outputs.comparisons`.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from augkit.compute import distributed
from augkit.config import regimes as regime_table
from augkit.outputs import comparisons
from augkit.outputs import metrics as M
from augkit.outputs import stats
from augkit.outputs.comparisons import reviewer_warnings
from augkit.extension.roles import LabeledImages
from augkit.outputs.run_folder import RunFolder
from augkit.stages import side_by_side
from augkit.stages.reuse import n_trainings, workers_for

log = logging.getLogger("augkit")

SUMMARY_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "auc")


def synthetic_needs(regimes: list[str], train_counts: list[int], *, per_class: int | None, multiplier: float,
                    balance: bool) -> dict[str, list[int]]:
    """Synthetic (or classically augmented) images per class that each regime adds."""
    k, biggest = len(train_counts), max(train_counts)
    equal = [per_class if per_class is not None else max(1, round(multiplier * biggest))] * k
    added = [biggest - c for c in train_counts] if balance else equal
    needs = {"export": equal}  # what synthetic.per_class asks for is sampled and exported whatever the regimes
    for regime in regimes:
        spec, ratio = regime_table.parse(regime)
        if spec.synthetic == "per_class":
            needs[regime] = equal
        elif spec.synthetic == "added":
            needs[regime] = added
        elif spec.synthetic == "ratio":
            needs[regime] = [round(ratio * sum(train_counts) / k)] * k
    return needs


def recipe_needs(recipe, train: LabeledImages) -> dict[str, list[int]]:
    """:func:`synthetic_needs` for the recipe's regimes and synthetic settings on this training split."""
    spec = recipe.synthetic
    return synthetic_needs(recipe.evaluation.all_regimes(), train.counts(), per_class=spec.per_class,
                           multiplier=spec.multiplier, balance=spec.balance)


def pool_counts(needs: dict[str, list[int]], n_classes: int) -> list[int]:
    """Per class, the most any synthetic regime takes: sampled once, each regime takes a prefix."""
    synthetic = [v for r, v in needs.items() if r == "export" or not regime_table.parse(r)[0].classic]
    return [max((v[c] for v in synthetic), default=0) for c in range(n_classes)]


def take(pool: LabeledImages, counts: list[int]) -> LabeledImages:
    """The first ``counts[c]`` pool images of each class c."""
    index = torch.cat([torch.nonzero(pool.labels == c).flatten()[:n] for c, n in enumerate(counts)])
    return pool.subset(index)


def classic_augment(x: Tensor, rng: torch.Generator) -> Tensor:
    """Shift (+-6 %), rotate (+-10 degrees), zoom (0.9-1.1), +-10 % brightness and contrast."""
    n = len(x)
    u = lambda *shape: 2 * torch.rand(*shape, generator=rng) - 1  # noqa: E731  uniform in [-1, 1]
    angle = u(n) * math.pi / 18
    scale = 1 + 0.1 * u(n)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, 0.06 * u(n)], 1), torch.stack([sin, cos, 0.06 * u(n)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x + 1, grid, padding_mode="zeros", align_corners=False) - 1  # background stays -1
    return (out * (1 + 0.1 * u(n, 1, 1, 1)) + 0.1 * u(n, 1, 1, 1)).clamp(-1, 1)


def regime_data(regime: str, train: LabeledImages, pool: LabeledImages, needs: dict[str, list[int]], seed: int
                ) -> LabeledImages:
    """A regime's training set, from its entry in augkit.config.regimes: the real split (oversampled or not),
    then what it adds, ``needs[regime]`` per class: the pool's first synthetic images or classic copies of real ones."""
    spec, _ = regime_table.parse(regime)
    rng = torch.Generator().manual_seed(seed)
    parts = [_oversampled(train, rng) if spec.oversample else train] if spec.uses_real else []
    if spec.synthetic != "none":
        parts.append(_classic_copies(train, needs[regime], rng) if spec.classic
                     else _relabel(take(pool, needs[regime]), train.classes))
    if spec.also_classic:
        parts.append(_classic_copies(train, needs[regime], rng))
    return parts[0] if len(parts) == 1 else LabeledImages.concat(parts)


def _classic_copies(train: LabeledImages, counts: list[int], rng: torch.Generator) -> LabeledImages:
    """``counts[c]`` classically augmented copies of random class-c training images."""
    picks = [torch.nonzero(train.labels == c).flatten() for c in range(len(train.classes))]
    index = torch.cat([p[torch.randint(len(p), (n,), generator=rng)] for p, n in zip(picks, counts) if n])
    return LabeledImages(classic_augment(train.images[index], rng), train.labels[index], train.classes)


def _oversampled(train: LabeledImages, rng: torch.Generator) -> LabeledImages:
    """The training images plus random minority images repeated until every class has the largest's count."""
    counts = train.counts()
    picks = [torch.nonzero(train.labels == c).flatten() for c in range(len(counts))]
    extra = [p[torch.randint(len(p), (max(counts) - len(p),), generator=rng)] for p in picks if len(p)]
    return train.subset(torch.cat([torch.arange(len(train)), *extra]))


def _relabel(data: LabeledImages, classes: list[str]) -> LabeledImages:
    return LabeledImages(data.images, data.labels, classes)


def run_metrics(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict:
    pred = proba.argmax(1)
    out = M.from_confusion(M.confusion_matrix(y_true, pred, len(classes)), classes)
    out["auc"] = stats.roc_auc_ovr(y_true, proba)["macro"]
    return out


def summarise(runs: dict[str, list[dict]], predictions: comparisons.Predictions, *, seed: int, n_boot: int = 2000
              ) -> dict:
    """Per regime: means of the per-run metrics, their spread over runs, and intervals; plus the comparisons.

    Every run's metrics come from that run's one confusion matrix; a regime's figure is their
    mean over runs (so macro F1 <= (macro precision + macro recall) / 2 still holds), and
    ``confusion_matrix`` is the sum of the runs' matrices, for display. ``interval`` (accuracy, F1)
    counts training runs and test patients (``augkit.outputs.comparisons``), as do the comparisons.
    Returns ``{"regimes", "comparisons", "verdict", "not_covered"}``.
    """
    classes = predictions.classes
    support = np.bincount(predictions.labels, minlength=len(classes))
    analysis = comparisons.analyse(predictions, n_boot=n_boot, seed=seed)
    out = {}
    for regime, rs in runs.items():
        pooled = np.sum([r["confusion_matrix"] for r in rs], axis=0)
        summary = M.from_confusion(pooled, classes)
        for name in ("accuracy", "balanced_accuracy", "precision", "recall", "f1"):
            summary[name] = float(np.mean([r[name] for r in rs]))
        for c, (name, per_class) in enumerate(summary["per_class"].items()):
            for key in ("precision", "recall", "f1"):
                per_class[key] = float(np.mean([r["per_class"][name][key] for r in rs]))
            per_class["support"] = int(support[c])  # test images of the class (the pooled matrix counts every run)
        summary["seeds"] = {
            name: stats.mean_ci([r[name] for r in rs], bounds=(0.0, 1.0))
            for name in SUMMARY_METRICS
            if all(r[name] is not None for r in rs)
        }
        summary["interval"] = analysis["intervals"][regime]
        summary["runs"] = rs
        out[regime] = summary
    return {"regimes": out, **{k: analysis[k] for k in ("comparisons", "verdict", "not_covered")}}


def distribute_mode(resolved, n_jobs: int, world_size: int) -> str:
    """How ``world_size`` processes share ``n_jobs`` classifier trainings: "jobs" or "ddp" (see EvaluationSpec).

    ``auto`` picks ddp only when there are fewer trainings than processes and the classifier can
    train over them with its options. Raises ``DistributedError`` before any work when ``ddp`` is
    asked of a classifier that cannot do it, or with options it refuses.
    """
    chosen = resolved.recipe.evaluation.distribute
    cls = resolved.plugins["classifier"][0]
    able = cls.supports_distributed
    if world_size == 1:
        return "jobs"
    if chosen == "ddp" and not able:
        raise distributed.DistributedError(
            f"evaluation.distribute: ddp, but the {resolved.recipe.classifier.name!r} classifier cannot train over "
            "several processes (its supports_distributed is False): use jobs or auto")
    if chosen == "ddp":
        resolved.build("classifier").check_distributed(world_size)
    if chosen != "auto":
        return chosen
    if not able or n_jobs >= world_size:
        return "jobs"
    try:
        resolved.build("classifier").check_distributed(world_size)
    except distributed.DistributedError as exc:
        log.info("classifier trainings each on one process (evaluation.distribute auto): %s", exc)
        return "jobs"
    return "ddp"


def study_mode(resolved, world_size: int) -> str:
    """How the recipe's study shares its (regime, seed) trainings over ``world_size`` processes: jobs or ddp."""
    return distribute_mode(resolved, n_trainings(resolved), world_size)


def budget(resolved, train: LabeledImages) -> int | None:
    """Optimizer steps every regime's classifier trains for (``evaluation.budget: steps``), or None (epochs).

    The steps the classifier's own epochs take on the real training split; the recipe's validation
    refuses a step budget for a classifier that cannot train to one.
    """
    if resolved.recipe.evaluation.budget == "epochs":
        return None
    return resolved.build("classifier").budget_steps(len(train))


def _name(regime: str, g: int | None, seed: int, generators: int) -> str:
    """A training's name in progress bars, logs and TensorBoard: ``fake+real s1``, ``fake+real g1000 s1``."""
    return f"{regime} s{seed}" if g is None or generators == 1 else f"{regime} g{g} s{seed}"


def _patients(groups: list[str] | None) -> list[str] | None:
    """Test patients numbered in order of first appearance (``t1``, ``t2``, ...): the analysis needs which
    images share a patient, never who; the numbers are the same in every process, unlike the salted ids."""
    if groups is None:
        return None
    number: dict[str, int] = {}
    return [f"t{number.setdefault(g, len(number) + 1)}" for g in groups]


def job_list(regimes: list[str], generators: list, seeds: list[int]) -> list[tuple[str, object, int]]:
    """The study's trainings in order: (regime, generator key or None for real-data regimes, seed)."""
    return [(regime, g, seed) for regime in regimes
            for g in (generators if regime_table.uses_synthetic(regime) else [None]) for seed in seeds]


def evaluate(resolved, train: LabeledImages, val: LabeledImages, test: LabeledImages,
             pool: LabeledImages | dict[int, LabeledImages], needs: dict[str, list[int]], folder: RunFolder | Path,
             progress, *, regimes: list[str], seeds: list[int], trained: dict | None = None,
             head=None) -> dict | None:
    """Train one classifier per (regime, seed); write classifier_losses.csv and predictions.csv; return
    metrics.json's content.

    ``pool``: the synthetic pool, or one per generator seed (``evaluation.generator_seeds``): every
    regime with synthetic images then trains its seeds on each generator's pool.
    ``trained`` maps (regime, seed) to (classifier, its training rows) already trained exactly
    as that run would train it (the audit's real-data classifier): it is scored, not retrained.
    ``head`` (a :class:`augkit.stages.head_start.HeadStart`): the real-data trainings it began before
    the study; the study adds the others to its workers.

    Under torchrun (``evaluation.distribute``, see :func:`distribute_mode`) either the trainings,
    each independent and seeded, are dealt out to the ranks (training i to rank i mod N), each
    training on its own ("jobs": the metrics of one process), or every rank takes part in every
    training, with DDP ("ddp"); the ``trained`` ones, which only rank 0 holds, are not retrained.
    Rank 0 gathers and scores; it returns the metrics and writes the files, the other ranks return None.
    In one process, the trainings run ``evaluation.workers`` at a time in processes of one thread
    each (:mod:`augkit.stages.side_by_side`) under one progress bar.
    """
    trained = trained or {}
    evaluation = resolved.recipe.evaluation
    folder = folder if isinstance(folder, RunFolder) else RunFolder(folder)
    from augkit.outputs import report  # plotting stays out of the import path of library users

    pools = pool if isinstance(pool, dict) else {None: pool}
    here = distributed.world()
    y_true = test.labels.numpy()
    steps = budget(resolved, train)
    jobs = job_list(regimes, list(pools), seeds)
    if head is not None and any(jobs[j] != key for j, key in head.jobs.items()):
        raise ValueError(f"the head start trained {sorted(head.jobs.values())}, not this study's jobs")
    mode = distribute_mode(resolved, len(jobs), here.size)
    if mode == "ddp":
        mine = range(len(jobs))
        held = set(distributed.broadcast(sorted(trained)))  # every rank skips what rank 0 already holds
        together = contextlib.nullcontext
        log.info("the %d classifier trainings each run over all %d processes (DDP)", len(jobs), here.size)
    else:
        mine, held, together = distributed.shard(len(jobs)), set(), distributed.alone
    datasets: dict[tuple, LabeledImages] = {}
    done: dict[int, tuple[dict, np.ndarray, list[dict]]] = {}  # job -> (run, probabilities, curve rows)

    def data(j: int) -> LabeledImages:
        regime, g, _ = jobs[j]
        if (regime, g) not in datasets:
            datasets[regime, g] = regime_data(regime, train, pools[g] if g in pools else next(iter(pools.values())),
                                              needs, seed=seeds[0])
        return datasets[regime, g]

    def scored(j: int, proba: np.ndarray, rows: list[dict]) -> None:
        regime, g, seed = jobs[j]
        run = {"seed": seed, **({} if g is None else {"generator_seed": g}), "train_images": len(data(j)),
               **run_metrics(y_true, proba, test.classes)}
        done[j] = (run, proba, [{"regime": regime, **({} if g is None else {"generator_seed": g}), "seed": seed, **row}
                                for row in rows])
        log.info("%s: accuracy %.3f, macro F1 %.3f", _name(regime, g, seed, len(pools)), run["accuracy"], run["f1"])

    board = folder.board() if here.size == 1 else None  # several processes: rank 0 writes after the gather
    to_train = []
    for j in mine:
        regime, g, seed = jobs[j]
        if (regime, seed) in held and not here.main:
            continue
        classifier, rows = trained.get((regime, seed), (None, [])) if g is None else (None, [])
        if classifier is None:
            to_train.append(j)
            continue
        log.info("%s, seed %d: the audit's classifier (same data, options and seed)", regime, seed)
        for row in rows if board is not None else ():  # its curves beside the others' (classifier_losses.csv has them)
            board.scalars(f"classifier/{_name(regime, g, seed, len(pools)).replace(' ', '/')}", row, row["step"])
        scored(j, classifier.predict_proba(test.images).float().numpy(), rows)
    cls, options = resolved.plugins["classifier"]
    workers = workers_for(resolved, len(to_train)) if head is None else head.pool.workers
    if workers == 1 and to_train and here.size == 1 and side_by_side.worker_count(
            evaluation.workers, cls(options), len(to_train)) > 1:
        log.info("classifier trainings one at a time: the %s classifier cannot be sent to other processes", cls.__name__)
    if workers > 1:
        log.info("%d classifier trainings, %d side by side (evaluation.workers)%s", len(to_train), workers,
                 "" if head is None else f", {len(head.jobs)} of them started beside the {head.when}")
        # synthetic-only regimes last: a network fitted to synthetic images soon stops improving on real validation
        # images, so they often stop early (fake, 12 of 20 epochs, in the 600-image study), and short trainings then
        # fill the last round instead of one long one training alone; the order changes no training's numbers
        last = sorted(to_train, key=lambda j: not regime_table.parse(jobs[j][0])[0].uses_real)
        trainings = [side_by_side.Training(j, data(j), jobs[j][2]) for j in last]
        epochs = cls(options).total_epochs
        events = side_by_side.train(cls, options, trainings, val, test.images, steps, workers,
                                    pool=None if head is None else head.pool)
        tag = lambda j: _name(*jobs[j], len(pools)).replace(" ", "/")  # noqa: E731
        for row in progress(side_by_side.live(events, epochs, board, tag), f"classifiers x{workers}",
                            len(to_train) * epochs):
            if "done" in row:
                scored(row["done"], *row["result"])
    for j in to_train if workers == 1 else []:
        regime, g, seed = jobs[j]
        classifier, rows, name = resolved.build("classifier"), [], _name(regime, g, seed, len(pools))
        fit = classifier.fit(data(j), val, seed=seed) if steps is None else classifier.fit(data(j), val, seed=seed,
                                                                                           steps=steps)
        with together():
            for row in progress(fit, name, classifier.total_epochs):
                rows.append(row)
                if board is not None:
                    board.scalars(f"classifier/{name.replace(' ', '/')}", row, row["step"])
        if not here.main and mode == "ddp":
            continue  # rank 0 holds the same weights and scores them
        scored(j, classifier.predict_proba(test.images).float().numpy(), rows)
    parts = distributed.gather(done)
    if parts is None:
        return None
    for part in parts:
        done.update(part)
    runs: dict[str, list[dict]] = {}
    predictions = comparisons.Predictions(list(test.classes), y_true, _patients(test.groups))
    curves = []
    for j, (regime, g, seed) in enumerate(jobs):
        run, proba, rows = done[j]
        runs.setdefault(regime, []).append(run)
        predictions.runs.setdefault(regime, []).append(comparisons.Run(seed, proba, g))
        curves += rows
        if here.size > 1:  # trained on other ranks too: rank 0 writes every curve now, as one process did live
            tag = _name(regime, g, seed, len(pools)).replace(" ", "/")
            for row in rows:  # the fit's own numbers, not the regime and seeds the curve rows are labelled with
                folder.board().scalars(f"classifier/{tag}", {k: v for k, v in row.items()
                                                              if k not in ("seed", "generator_seed")}, row["step"])
    folder.write_csv(RunFolder.CLASSIFIER_LOSSES, curves)
    folder.write_csv(RunFolder.PREDICTIONS, comparisons.write_predictions(predictions))
    metrics = {
        "classes": list(test.classes),
        "test_counts": test.counts(),
        "seeds": seeds,
        "generator_seeds": [g for g in pools if g is not None],
        "budget": {"mode": evaluation.budget, "steps": steps},
        **summarise(runs, predictions, seed=seeds[0], n_boot=evaluation.bootstrap),
    }
    metrics["warnings"] = reviewer_warnings(metrics, test.counts(), test.classes)
    report.plot_study(metrics, curves, folder.path)
    return metrics
