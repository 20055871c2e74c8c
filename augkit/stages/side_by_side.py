"""Classifier trainings side by side: ``evaluation.workers`` processes of one thread each.

A small network's training step does not use two cores well: at 56 px, EfficientNetV2-B0 trains
1.3-1.4x more images per second as two one-thread processes than as one two-thread process
(docs/benchmarks.md). The study's (regime, seed) trainings are independent and seeded one by
one, so they can run at the same time; a training's numbers do not depend on which process ran
it or on what ran beside it, only on its seed, its data and the one thread.

Workers are forked where the platform can (as torch's DataLoader workers are; spawn would run a
user's unguarded script again in every worker), set one thread before any work, receive the
validation and test images once, and report every epoch's row back as it happens, so the
progress bar and TensorBoard follow the trainings live.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue as queues
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np
import torch

from augkit.compute import distributed
from augkit.extension.roles import Classifier, LabeledImages

log = logging.getLogger("augkit")


@dataclass
class Training:
    """One classifier training: its index in the study's job list, its training data and seed."""

    job: int
    data: LabeledImages
    seed: int


def cores() -> int:
    """CPU cores this process may use."""
    return distributed.cores()


def worker_count(setting: int | str, classifier: Classifier, trainings: int) -> int:
    """Processes for ``trainings`` trainings: the recipe's number, or auto (one per core on the CPU, 1 on a GPU)."""
    if setting != "auto":
        return max(1, min(int(setting), trainings))
    if getattr(classifier, "device", torch.device("cpu")).type != "cpu":
        return 1
    return max(1, min(cores(), trainings))


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """This process computes on ``n`` threads inside the block (None: unchanged), as a worker does on one."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_shared: dict = {}


def _init(rows, cls, options, val: LabeledImages, test_images: torch.Tensor, steps: int | None) -> None:
    torch.set_num_threads(1)
    _shared.update(rows=rows, cls=cls, options=options, val=val, test=test_images, steps=steps)


def _train(job: int, data: LabeledImages, seed: int) -> tuple[int, np.ndarray, list[dict]]:
    s = _shared
    classifier = s["cls"](s["options"])
    fit = classifier.fit(data, s["val"], seed=seed) if s["steps"] is None else classifier.fit(
        data, s["val"], seed=seed, steps=s["steps"])
    rows = []
    for row in fit:
        rows.append(row)
        s["rows"].put((job, row))
    return job, classifier.predict_proba(s["test"]).float().numpy(), rows


def train(cls: type[Classifier], options, trainings: list[Training], val: LabeledImages, test_images: torch.Tensor,
          steps: int | None, workers: int) -> Iterator[tuple[str, int, object]]:
    """Train every one of ``trainings`` in ``workers`` processes; yield ``("row", job, row)`` for every epoch's
    row as it arrives and ``("done", job, (probabilities on test_images, rows))`` when a training ends."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    rows = context.Queue()
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init,
                                 initargs=(rows, cls, options, val, test_images, steps)) as pool:
            pending: set[Future] = {pool.submit(_train, t.job, t.data, t.seed) for t in trainings}
            while pending:
                yield from _drain(rows)
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in finished:
                    job, proba, job_rows = future.result()
                    yield "done", job, (proba, job_rows)
        yield from _drain(rows)  # rows still in the queue when the last training ended (the workers have exited)
    except BrokenProcessPool as exc:
        raise RuntimeError(
            "a process training classifiers side by side died (killed for using too much memory?): set "
            "evaluation.workers: 1 to train one at a time in this process") from exc
    finally:
        rows.close()
        rows.join_thread()


def _drain(rows) -> Iterator[tuple[str, int, dict]]:
    while True:
        try:
            job, row = rows.get_nowait()
        except queues.Empty:
            return
        yield "row", job, row


def live(events, epochs: int, board, tag) -> Iterator[tuple[str, int, object]]:
    """:func:`train`'s events as one progress: every row advances the bar (``step``: epochs done over all
    trainings; a training that stops early counts its unused epochs when it ends) and goes to TensorBoard
    (``board``, or None) under ``classifier/<tag(job)>``."""
    finished, latest, ended = 0, {}, set()
    for event, j, item in events:
        if event == "row":
            if j not in ended:  # a row can arrive after its training's end: the bar has counted it then
                latest[j] = item["step"]
            if board is not None:
                board.scalars(f"classifier/{tag(j)}", item, item["step"])
            yield event, j, {**{k: v for k, v in item.items() if k != "step"},
                             "step": finished * epochs + sum(latest.values())}
        else:
            finished += 1
            ended.add(j)
            latest.pop(j, None)
            yield event, j, item
