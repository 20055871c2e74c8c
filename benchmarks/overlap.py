"""Would the study finish sooner if the generator trained on one core while real-data classifiers train on the other?

    python benchmarks/overlap.py [--recipe benchmarks/study_600.yaml] [--steps 60]

The real, real+classic and real+oversample trainings (9 of the 600-image study's 15) do not need
the generator, so a run could train them on one core while the generator trains on the other,
instead of training the generator on every core first. Whether that pays depends on how much the
generator gains from its second thread. Measured with the recipe's generator and classifier
options on random images of the recipe's size, each in a fresh process: the generator's seconds
per iteration on every core alone (baseline, as a run trains it today), then on one thread while
a one-thread classifier trains beside it, and the classifier's seconds per step beside it.

With G2 the generator stage on every core and G1 on one thread, and C the study's classifier work
in one-thread seconds, today's schedule takes G2 + C / 2 and the overlapped one (G1 + C) / 2 (as
long as the real-data trainings fill G1), so it saves G2 - G1 / 2: it pays only where the second
thread gives the generator less than 2x. When they take R < G1 one-thread seconds, the worker then
waits and the saving is R / 2 - (G1 - G2). The script prints the measured G1 / G2, R (from the
recipe's regimes, seeds, epochs and training split) and the saving against the default. A run does this with ``evaluation.head_start: generator``
(docs/evaluation.md); the default, ``audit``, starts them only beside the audit, which costs the
generator nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from pathlib import Path

import yaml

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--recipe", default="benchmarks/study_600.yaml")
parser.add_argument("--steps", type=int, default=60, help="timed generator iterations")
args = parser.parse_args()
RECIPE = yaml.safe_load(Path(args.recipe).read_text())
SIZE = RECIPE["image_size"]


def random_set(seed: int):
    """380 random images of the recipe's size in 3 classes (the 600-image study's training split)."""
    import torch

    import augkit

    g = torch.Generator().manual_seed(seed)
    return augkit.LabeledImages(torch.rand(380, 1, SIZE, SIZE, generator=g) * 2 - 1, torch.arange(380) % 3,
                                ["a", "b", "c"])


def generator_seconds(threads: int, steps: int) -> float:
    """Seconds per iteration of the recipe's generator after 5 warm-up iterations."""
    import torch

    import augkit

    torch.set_num_threads(threads)
    spec = RECIPE["generator"]
    options = {**spec.get("options", {}), "image_size": SIZE, "iterations": 10**6, "log_every": 10**6}
    rows = augkit.build("generator", spec["name"], **options).fit(random_set(1), seed=0)
    for _ in range(5):
        next(rows)
    start = time.perf_counter()
    for _ in range(steps):
        next(rows)
    return (time.perf_counter() - start) / steps


def classifier_seconds(stop) -> float:
    """Seconds per step of a one-thread classifier training (the recipe's options) until ``stop`` is set."""
    import torch

    import augkit

    torch.set_num_threads(1)
    spec = RECIPE["classifier"]
    train = random_set(0)
    options = {**spec.get("options", {}), "image_size": SIZE, "epochs": 10**6, "min_epochs": 10**6,
               "patience": 10**6}
    clf = augkit.build("classifier", spec["name"], **options)
    epochs = clf.fit(train, train.subset(torch.arange(16)), seed=0)
    next(epochs)  # warm-up epoch
    steps_per_epoch = -(-len(train.labels) // clf.options.batch_size)
    start, done = time.perf_counter(), 0
    while not stop.is_set():
        next(epochs)
        done += steps_per_epoch
    return (time.perf_counter() - start) / max(done, 1)


def real_data_seconds(step_seconds: float) -> float:
    """R: one-thread seconds of the trainings a head start takes (the real-data regimes' seeds, less the audit's
    stand-in), each the classifier's epochs over the recipe's training split (its phantom counts, else 380)."""
    import augkit
    from augkit.config import regimes as regime_table

    recipe = augkit.load_recipe(args.recipe).recipe
    counts = (RECIPE["dataset"].get("options") or {}).get("counts")
    train = round(sum(counts.values()) * (1 - recipe.split.val - recipe.split.test)) if counts else 380
    options = augkit.build("classifier", recipe.classifier.name, **recipe.classifier.options).options
    steps = options.epochs * -(-train // options.batch_size)
    regimes = recipe.evaluation.all_regimes()
    trainings = recipe.evaluation.seeds * sum(not regime_table.uses_synthetic(r) for r in regimes)
    return (trainings - ("real" in regimes and recipe.audit.enabled)) * steps * step_seconds


if __name__ == "__main__":
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    iterations = RECIPE["generator"].get("options", {}).get("iterations", 0)
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:  # baseline: the generator alone on every core, as a run trains it
        g2 = pool.apply(generator_seconds, (cores, args.steps))
    with context.Manager() as manager, context.Pool(2) as pool:
        stop = manager.Event()
        beside = pool.apply_async(classifier_seconds, (stop,))
        time.sleep(20)  # the classifier past its set-up and warm-up epoch
        g1 = pool.apply(generator_seconds, (1, args.steps))
        stop.set()
        c1 = beside.get()
    print(f"{args.recipe}: generator {RECIPE['generator']['name']}, {cores} cores")
    print(f"  generator alone, {cores} threads (baseline): {g2:.3f} s/iteration")
    print(f"  generator on 1 thread beside a 1-thread classifier: {g1:.3f} s/iteration   G1 / G2 = {g1 / g2:.2f}")
    print(f"  classifier on 1 thread beside it: {c1:.3f} s/step")
    if iterations:
        real_work = real_data_seconds(c1)
        G1, G2 = g1 * iterations, g2 * iterations
        print(f"  for {iterations} iterations: G2 {G2:.0f} s, G1 {G1:.0f} s; the real-data trainings a head start "
              f"can take: about {real_work:.0f} one-thread seconds")
        print(f"  evaluation.head_start: generator would save about min(R, G1) / 2 - (G1 - G2) = "
              f"{min(real_work, G1) / 2 - (G1 - G2):+.0f} s against audit (checkpoint scoring not counted; "
              "negative: keep the default)")
