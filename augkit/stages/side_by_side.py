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

import collections
import contextlib
import ctypes
import logging
import multiprocessing
import os
import queue as queues
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
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


_lowered: list[tuple[Pool, int]] = []  # (a head start's pool, this process's threads before it took a core)


@contextlib.contextmanager
def beside(pool: Pool, n: int) -> Iterator[None]:
    """This process on ``n`` threads while ``pool``'s workers train beside it (a head start)."""
    _lowered.append((pool, torch.get_num_threads()))
    try:
        with threads(n):
            yield
    finally:
        _lowered.pop()


def _running(pid: int) -> bool:
    """Whether Linux shows the process neither stopped nor ended (False where there is no /proc to ask)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("T", "t", "Z", "X")


@contextlib.contextmanager
def full_speed() -> Iterator[None]:
    """Sample synthetic images on the threads this process had before a head start took a core, its workers
    stopped meanwhile. ``augkit evaluate`` and ``augkit generate`` sample on every core, and a generator
    can round differently on fewer threads: the run's images must be the ones they make again."""
    if not _lowered:
        yield
        return
    pool, full = _lowered[0]
    pool.pause()
    try:
        with threads(full):
            yield
    finally:
        pool.resume()


_shared: dict = {}


def _init(rows, cls, options, val: LabeledImages, test_images: torch.Tensor, steps: int | None, parent: int) -> None:
    _exit_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the run, which stops the workers itself
    torch.set_num_threads(1)
    _shared.update(rows=rows, cls=cls, options=options, val=val, test=test_images, steps=steps)


def _exit_with(parent: int) -> None:
    """End this worker when the run's process ends, however it ends (a kill leaves no worker training on).

    Linux: the kernel sends SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG); elsewhere the
    executor's own shutdown is all there is."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the call
        os._exit(1)


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


class Pool:
    """One-thread worker processes that train :class:`Training` s, at most ``slots`` at a time.

    The study's real-data trainings need no synthetic image, so they can start before the study
    (:func:`augkit.stages.head_start.head_start`): none, then one slot while this process trains the
    generator or audits on the other cores, every worker once the study begins. ``add`` queues trainings, ``slots``
    changes how many may run, ``events`` yields what the trainings report until every one has
    ended, then shuts the workers down. A dispatcher thread starts queued trainings as slots free
    up and collects every epoch's row as it arrives (so none waits in a full pipe).
    """

    def __init__(self, cls: type[Classifier], options, val: LabeledImages, test_images: torch.Tensor,
                 steps: int | None, workers: int, *, slots: int | None = None):
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self._rows = context.Queue()
        self._executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_init,
                                             initargs=(self._rows, cls, options, val, test_images, steps, os.getpid()))
        self.workers, self._slots = workers, workers if slots is None else slots
        self._executor.submit(int).result()  # the workers fork now, from this thread, not later from the dispatcher
        self._lock = threading.Lock()
        self._queued: collections.deque[Training] = collections.deque()
        self._running: dict[Future, int] = {}
        self._events: collections.deque = collections.deque()  # ("row", job, row) and ("done", job, result)
        self._jobs: set[int] = set()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.ended = 0  # trainings that have ended (reported or not)
        self._dispatcher = threading.Thread(target=self._dispatch, name="augkit-side-by-side", daemon=True)
        self._dispatcher.start()

    @property
    def jobs(self) -> set[int]:
        """The jobs added so far (queued, training or done)."""
        return set(self._jobs)

    def add(self, trainings: list[Training]) -> None:
        with self._lock:
            self._queued.extend(trainings)
            self._jobs.update(t.job for t in trainings)

    def slots(self, n: int) -> None:
        """At most ``n`` trainings at once from now on (at most the workers)."""
        with self._lock:
            self._slots = max(0, min(n, self.workers))

    def pause(self) -> None:
        """Stop the workers where they are (SIGSTOP; nothing where the platform has no such signal).

        A signal is delivered when the kernel next schedules its process, so this waits (a second at most)
        until Linux shows every worker stopped: the caller then has the cores to itself."""
        if self._stop.is_set() or not hasattr(signal, "SIGSTOP"):
            return
        self._signal(signal.SIGSTOP)
        deadline = time.monotonic() + 1.0
        while any(_running(pid) for pid in self.pids) and time.monotonic() < deadline:
            time.sleep(0.001)

    def resume(self) -> None:
        self._signal(getattr(signal, "SIGCONT", None))

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids."""
        return list(getattr(self._executor, "_processes", None) or {})

    def _signal(self, number) -> None:
        if number is None or self._stop.is_set():
            return
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, number)

    def _dispatch(self) -> None:
        try:
            while not self._stop.is_set():
                self._collect(timeout=0.1)
                with self._lock:
                    for future in [f for f in self._running if f.done()]:
                        job = self._running.pop(future)
                        self._events.append(("done", job, future))
                        self.ended += 1
                    while self._queued and len(self._running) < self._slots:
                        t = self._queued.popleft()
                        self._running[self._executor.submit(_train, t.job, t.data, t.seed)] = t.job
            self._collect(timeout=None)
        except BaseException as exc:  # noqa: BLE001  events() raises it in the caller's thread
            self._error = exc

    def _collect(self, timeout: float | None) -> None:
        """Move the rows the workers sent into the event list (``timeout`` None: those already sent, then return)."""
        while True:
            try:
                job, row = self._rows.get(timeout=timeout) if timeout else self._rows.get_nowait()
            except queues.Empty:
                return
            self._events.append(("row", job, row))
            timeout = None  # after the first row, take what is there without waiting

    def events(self) -> Iterator[tuple[str, int, object]]:
        """``("row", job, row)`` for every epoch's row and ``("done", job, (probabilities, rows))`` when a
        training ends, until every added training has ended; then the workers stop. Use the pool as a
        context manager: leaving it on an error (or an abandoned iteration) stops the workers at once."""
        left = set(self._jobs)
        while left:
            if not self._events:
                if not self._dispatcher.is_alive():
                    if isinstance(self._error, BrokenProcessPool):
                        raise _broken() from self._error
                    raise RuntimeError(f"classifier trainings side by side stopped: {self._error!r}") from self._error
                time.sleep(0.05)
                continue
            event, job, item = self._events.popleft()
            if event == "done":
                job, proba, rows = _result(item)
                left.discard(job)
                item = (proba, rows)
            yield event, job, item
        self.close()
        while self._events:  # rows still in the queue when the last training ended (the workers have exited)
            yield self._events.popleft()

    def close(self, *, cancel: bool = False) -> None:
        """Stop the workers: after the running trainings end, or at once (``cancel``: a run that failed)."""
        if self._stop.is_set():
            return
        with self._lock:
            self._queued.clear()
        if cancel:
            for process in list(getattr(self._executor, "_processes", {}).values()):
                process.terminate()  # a running training would otherwise finish first
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._stop.set()
        self._dispatcher.join()
        self._rows.close()
        self._rows.join_thread()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, kind, *_) -> None:
        self.close(cancel=kind is not None)


def _result(future: Future) -> tuple[int, np.ndarray, list[dict]]:
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise _broken() from exc


def _broken() -> RuntimeError:
    return RuntimeError("a process training classifiers side by side died (killed for using too much memory?): set "
                        "evaluation.workers: 1 to train one at a time in this process")


def train(cls: type[Classifier], options, trainings: list[Training], val: LabeledImages, test_images: torch.Tensor,
          steps: int | None, workers: int, *, pool: Pool | None = None) -> Iterator[tuple[str, int, object]]:
    """Train every one of ``trainings`` in ``workers`` processes; yield ``("row", job, row)`` for every epoch's
    row as it arrives and ``("done", job, (probabilities on test_images, rows))`` when a training ends.

    ``pool``: a :class:`Pool` already training some of the study's jobs (started before the study);
    it gets the other trainings and every worker."""
    pool = pool or Pool(cls, options, val, test_images, steps, workers)
    with pool:
        pool.add([t for t in trainings if t.job not in pool.jobs])
        pool.slots(workers)
        yield from pool.events()


def live(events, epochs: int, board, tag) -> Iterator[dict]:
    """:func:`train`'s events as one progress: every row advances the bar (``step``: epochs done over all
    trainings; a training that stops early counts its unused epochs when it ends) and goes to TensorBoard
    (``board``, or None) under ``classifier/<tag(job)>``. Yields the rows, and for each training's end
    ``{"step": ..., "done": job, "result": what train's "done" event carried}``: every item a row with
    ``step``, so the bar counts epochs, never events."""
    finished, latest, ended = 0, {}, set()
    for event, j, item in events:
        if event == "row":
            if j not in ended:  # a row can arrive after its training's end: the bar has counted it then
                latest[j] = item["step"]
            if board is not None:
                board.scalars(f"classifier/{tag(j)}", item, item["step"])
            yield {**{k: v for k, v in item.items() if k != "step"}, "step": finished * epochs + sum(latest.values())}
        else:
            finished += 1
            ended.add(j)
            latest.pop(j, None)
            yield {"step": finished * epochs + sum(latest.values()), "done": j, "result": item}
