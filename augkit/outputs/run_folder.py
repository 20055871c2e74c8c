"""The run folder: every file name a run writes, atomic writes, warnings, the log, rank 0 only.

No stage spells a file name: it asks its :class:`RunFolder` (``folder.file(RunFolder.METRICS)``,
``folder.write_json(RunFolder.METRICS, ...)``). Under torchrun every rank holds a ``RunFolder``
of the same path; only rank 0's writes (``writer=True``), the others' writes do nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from augkit.outputs import files

log = logging.getLogger("augkit")


class FolderInUse(RuntimeError):
    """Another process holds the run folder's lock."""


class OutputFolderError(RuntimeError):
    """An output folder cannot be made (a file in the way, a read-only place)."""


def make_folder(path: Path, option: str = "--out", fix: str = "pass a folder you can write to") -> Path:
    """``path`` as a folder, with its parents; :class:`OutputFolderError` naming ``option`` when it cannot be made."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(f"{option} {path}: cannot create this folder ({exc.strerror or exc}); {fix}") from None
    return path


class RunFolder:
    """One run's (or one evaluation's) folder."""

    RECIPE = "recipe.yaml"
    ENVIRONMENT = "environment.json"
    DATA = "data.json"
    SPLITS = "splits.json"
    SKIPPED = "skipped.csv"
    PREVIEW = "preprocessing.png"
    LOSSES = "losses.csv"
    LOSSES_PLOT = "losses.png"
    SELECTION = "selection.json"
    CHECKPOINTS = "checkpoints"
    LAST = "checkpoints/last.pt"
    BEST = "checkpoints/best.pt"
    SAMPLES = "samples"
    SYNTHETIC = "synthetic"
    AUDIT = "audit.json"
    AUDIT_DIR = "audit"
    FLAGS = "audit/flags.csv"
    CLOSEST_PAIRS = "audit/closest_pairs.png"
    DISTANCES = "audit/distances.png"
    CLASSIFIER_LOSSES = "classifier_losses.csv"
    SYNTHETIC_SEEDS = "synthetic_seeds.json"  # an evaluation's pool: the run's batch seeds and any extra ones
    PREDICTIONS = "predictions.csv"  # every classifier's test-set probabilities (augkit.outputs.comparisons)
    CLASSIFIER_LOSSES_PLOT = "classifier_losses.png"
    CONFUSION_PLOT = "confusion_matrices.png"
    METRICS_PLOT = "metrics_by_regime.png"
    RATIO_PLOT = "ratio_sweep.png"
    METRICS = "metrics.json"
    METRICS_CSV = "metrics.csv"
    RESULTS = "results.md"
    REPORT_MD = "report.md"
    REPORT_HTML = "report.html"
    WARNINGS = "warnings.txt"
    TIMINGS = "timings.json"
    LOG = "run.log"
    EVALUATIONS = "evaluations"

    def __init__(self, path: Path | str, *, writer: bool = True):
        self.path = Path(path)
        self.writer = writer  # False on ranks other than 0: they read, never write
        self._board = None

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    LOCK = ".lock"

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder for this process while the block runs; ``FolderInUse`` if another process holds it
        (two ``augkit resume`` of one run would write the same files). The writer alone locks."""
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform
            yield
            return
        if not self.writer:
            yield
            return
        fd = os.open(self.path / self.LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderInUse(f"another augkit process is working in {self.path.name}: wait for it to finish "
                              "(or stop it) before resuming this run") from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def remove_stale_temporaries(self) -> int:
        """Delete the temporary files an interrupted atomic write left (``.<name>.*.tmp``); their count."""
        if not self.writer:
            return 0
        stale = [p for p in self.path.rglob(".*.tmp") if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)

    @classmethod
    def new(cls, out: Path | str, name: str) -> RunFolder:
        """A fresh folder ``out/<name>-<timestamp>[-k]``; never an existing one."""
        out = make_folder(Path(out))
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        for k in range(1, 1000):
            path = out / (f"{name}-{stamp}" + (f"-{k}" if k > 1 else ""))
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
        raise RuntimeError(f"could not create a new run folder in {out}")

    GENERATORS = "generators"  # generators/seed-<s>/: the extra generator trainings (evaluation.generator_seeds)

    def generator_seed(self, seed: int, *, create: bool = True) -> RunFolder:
        """The run folder of the generator trained with ``seed`` beside the run's own (created by the writer,
        unless it is only to be read: ``create=False``)."""
        sub = RunFolder(self.path / self.GENERATORS / f"seed-{seed}", writer=self.writer)
        if create and self.writer:
            sub.path.mkdir(parents=True, exist_ok=True)
        return sub

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self, name: str) -> bool:
        return (self.path / name).exists()

    def folder(self, name: str) -> Path:
        """``name`` as a folder, created (by the writer) if missing."""
        path = self.path / name
        if self.writer:
            path.mkdir(parents=True, exist_ok=True)
        return path

    # -- writes: atomic, and only by the writer -------------------------------------------

    def write_json(self, name: str, obj: Any) -> None:
        if self.writer:
            files.write_json(self.path / name, obj)

    def write_csv(self, name: str, rows: list[dict]) -> None:
        if self.writer:
            files.write_csv(rows, self.path / name)

    def write_text(self, name: str, text: str) -> None:
        if self.writer:
            files.atomic_write_text(self.path / name, text)

    def read_json(self, name: str, default: Any = None) -> Any:
        return files.read_json(self.path / name, default)

    def read_csv(self, name: str) -> list[dict]:
        return files.read_csv(self.path / name)

    # -- warnings a reviewer must see: logged, collected in warnings.txt, shown in results.md

    def board(self):
        """This folder's TensorBoard writer (``augkit.outputs.tensorboard``; a no-op without the package or
        on ranks other than 0), made on first use."""
        if self._board is None:
            from augkit.outputs.tensorboard import Board

            self._board = Board(self.path, enabled=self.writer)
        return self._board

    def close_board(self) -> None:
        if self._board is not None:
            self._board.close()

    def clear_warnings(self) -> None:
        """Forget earlier warnings: the stages regenerate them (a resumed run runs them again)."""
        if self.writer:
            (self.path / self.WARNINGS).unlink(missing_ok=True)

    def warn(self, message: str) -> None:
        log.warning(message)
        if self.writer:
            with open(self.path / self.WARNINGS, "a", encoding="utf-8") as f:
                f.write(message + "\n")

    def warnings(self) -> list[str]:
        path = self.path / self.WARNINGS
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    @contextmanager
    def logging_to(self) -> Iterator[None]:
        """Copy augkit's log lines (INFO and up) into ``run.log`` while the block runs (the writer only)."""
        if not self.writer:
            yield
            return
        handler = logging.FileHandler(self.path / self.LOG, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        previous = log.level
        if log.level == logging.NOTSET or log.level > logging.INFO:
            log.setLevel(logging.INFO)
        try:
            yield
        finally:
            log.removeHandler(handler)
            handler.close()
            log.setLevel(previous)
