"""Stage: train the generator on the training split, with checkpoints, and choose the checkpoint to sample from.

At every checkpoint a judge trained on real images scores the generator (augkit.stages.selection);
the best checkpoint (``selection.rank``: never one with a collapsed class when there is one
without) is kept as ``best.pt`` beside ``last.pt`` (which resumes). Under torchrun
every rank trains (the generator synchronises itself); rank 0 alone scores, checkpoints and
writes, and tells the others which checkpoint to sample from.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from augkit.compute import distributed
from augkit.config.recipe import ResolvedRecipe
from augkit.extension.roles import Generator, LabeledImages
from augkit.extension.sampling import check_classes, sample_checked
from augkit.outputs import report
from augkit.outputs.progress import Progress
from augkit.outputs.run_folder import RunFolder
from augkit.stages.selection import TRUSTED_JUDGE, Scorer, rank, train_judge, warnings_for, worst_diversity

log = logging.getLogger("augkit")


@dataclass
class History:
    """What training has logged so far: loss rows (losses.csv) and checkpoint scores (selection.json)."""

    rows: list[dict] = field(default_factory=list)
    scores: list[dict] = field(default_factory=list)
    judge_accuracy: float | None = None

    def selection(self, **extra) -> dict:
        return {"judge_val_accuracy": self.judge_accuracy, "scores": self.scores, **extra}


def train_generator(resolved: ResolvedRecipe, train: LabeledImages, val: LabeledImages, folder: RunFolder,
                    progress: Progress, *, resume: bool = False) -> tuple[Generator, Path]:
    """Train with checkpoints; at each, score the generator and keep the best. Returns (generator, checkpoint)."""
    recipe = resolved.recipe
    here = distributed.world()
    generator, history = _start(resolved, folder, resume=resume)
    scorer = _judge(resolved, train, val, folder, history) if recipe.selection.enabled and here.main else None
    checkpoint = Checkpointer(folder, generator, scorer, history, classes=train.classes, seed=recipe.seed,
                              shape=train.image_shape)
    if here.main:
        folder.folder(RunFolder.SAMPLES)
    step = 0
    for row in progress(generator.fit(train, seed=recipe.seed), "train generator", generator.total_steps):
        step = row.get("step", step + 1)
        if len(row) > 1:  # rows with more than the step carry measurements
            history.rows.append(row)
        if step % recipe.checkpoint_every == 0 and here.main:
            checkpoint(step)
    if step % recipe.checkpoint_every and here.main:
        checkpoint(step)
    return _choose(resolved.plugins["generator"][0], generator, folder, history)


class CheckpointError(ValueError):
    """A checkpoint its generator cannot load: cut short, damaged, or another plugin's."""


def load_generator(cls: type[Generator], path: Path, name: str, **changed) -> Generator:
    """``cls.load(path)``; a file it cannot load raises :class:`CheckpointError` naming the file and why.

    torch's pickle-protocol UserWarning about a file it refuses is left out: the error says why."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        try:
            loaded = cls.load(path, **changed)
        except Exception as exc:
            text = str(exc).strip()
            first = text.splitlines()[0] if text else ""
            if "weights only" in first.lower() or "weights_only" in first:
                # torch goes on to suggest weights_only=False, which runs whatever code the file holds: never
                first = "it holds more than tensors and plain values, and augkit loads nothing else (docs/privacy.md)"
            raise CheckpointError(f"{path}: cannot be loaded by the {name!r} generator ({type(exc).__name__}"
                                  f"{': ' + first if first else ''}): a file cut short or damaged, or another "
                                  "generator's checkpoint") from exc
    return loaded


def _start(resolved: ResolvedRecipe, folder: RunFolder, *, resume: bool) -> tuple[Generator, History]:
    """A new generator, or (resuming) the last checkpoint with the history logged up to it."""
    cls, options = resolved.plugins["generator"]
    folder.folder(RunFolder.CHECKPOINTS)
    last = folder.file(RunFolder.LAST)
    if not (resume and last.exists()):
        return cls(options), History()
    try:
        generator = load_generator(cls, last, resolved.recipe.generator.name)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}; resuming needs the last.pt this run wrote: without it, start the run again "
                              "(augkit run)") from exc.__cause__
    done = generator.steps_done
    history = History(
        rows=[r for r in folder.read_csv(RunFolder.LOSSES) if r["step"] <= done],
        scores=[s for s in folder.read_json(RunFolder.SELECTION, {}).get("scores", []) if s["step"] <= done],
    )
    log.info("generator resumes at step %d from %s", done, last)
    return generator, history


def _judge(resolved: ResolvedRecipe, train: LabeledImages, val: LabeledImages, folder: RunFolder,
           history: History) -> Scorer:
    """Train the judge on real images; its balanced accuracy on real validation images says whether to trust it."""
    recipe = resolved.recipe
    judge, history.judge_accuracy = train_judge(train, val, seed=recipe.seed, steps=recipe.selection.judge_steps)
    log.info("judge (a small CNN on real training data) recognises %.0f%% of real validation images (balanced)",
             100 * history.judge_accuracy)
    trusted = history.judge_accuracy >= TRUSTED_JUDGE
    if not trusted:
        folder.warn(f"the judge recognises only {100 * history.judge_accuracy:.0f}% of real validation images: its "
                    "scores are reported but do not pick the checkpoint (the latest without a collapsed class or near "
                    "copies is used)")
    return Scorer(judge, train, per_class=recipe.selection.per_class, seed=recipe.seed + 1, trusted=trusted,
                  heldout=val)


class Checkpointer:
    """At a checkpoint step: score (``best.pt`` when best so far), draw a grid, write the logs, save ``last.pt``.

    ``last.pt`` is the commit point, written last: a kill before it resumes from the previous
    checkpoint, whose logs are cut back to its step and whose later steps (scores, ``best.pt``
    included) are computed again, identically; a kill after it finds every file of the step written.
    """

    def __init__(self, folder: RunFolder, generator: Generator, scorer: Scorer | None, history: History, *,
                 classes: list[str], seed: int, shape: tuple[int, ...] | None = None):
        self.folder, self.generator, self.scorer, self.history = folder, generator, scorer, history
        self.classes, self.seed, self.shape = classes, seed, shape
        self.grid_labels = torch.arange(len(classes)).repeat_interleave(8)
        self.logged = max((s["step"] for s in history.scores), default=0)  # rows already in TensorBoard

    def __call__(self, step: int) -> None:
        folder, history = self.folder, self.history
        check_classes(self.generator, self.classes)
        board = folder.board()
        if self.scorer is not None:
            score = {"step": step, **self.scorer(self.generator)}
            if not history.scores or rank(score) > max(rank(s) for s in history.scores):
                self.generator.save(folder.file(RunFolder.BEST))
            history.scores.append(score)
            board.scalars("selection", score, step)
        grid = sample_checked(self.generator, self.grid_labels, seed=self.seed, shape=self.shape, finite=False)
        grid = torch.nan_to_num(grid)  # a diverged checkpoint's grid, drawn (its score says it diverged)
        report.image_grid(grid, folder.file(f"{RunFolder.SAMPLES}/iter_{step:06d}.png"),
                          title=f"iteration {step}: rows of 8 per class ({', '.join(self.classes)})")
        board.grid("generator/samples (rows of 8 per class)", grid, step)
        for row in history.rows:
            if self.logged < row["step"] <= step:
                board.scalars("generator", row, row["step"])
        self.logged = step
        folder.write_csv(RunFolder.LOSSES, history.rows)
        folder.write_json(RunFolder.SELECTION, history.selection())
        self.generator.save(folder.file(RunFolder.LAST))


def _choose(cls: type[Generator], generator: Generator, folder: RunFolder, history: History
            ) -> tuple[Generator, Path]:
    """The best checkpoint by ``selection.rank`` (with an untrusted judge, the latest clean one);
    the last without scores; every rank gets rank 0's choice."""
    best, last = folder.file(RunFolder.BEST), folder.file(RunFolder.LAST)
    if not distributed.world().main:  # rank 0 has written the checkpoints: sample from the one it chose
        return (cls.load(best), best) if distributed.broadcast(None) else (generator, last)
    report.plot_losses(history.rows, folder.file(RunFolder.LOSSES_PLOT), title="generator training")
    scores = history.scores
    for warning in warnings_for(scores):
        folder.warn(warning)
    chosen = max(scores, key=rank) if scores else None
    used = best if chosen is not None else last
    folder.write_json(RunFolder.SELECTION, history.selection(used=used.name))  # augkit evaluate samples from it
    distributed.broadcast(chosen is not None)
    if chosen is None:
        return generator, last
    log.info("using the checkpoint of iteration %d: conditional accuracy %.2f, diversity %.2f (worst class %.2f; "
             "MS-SSIM of layouts, x real), %d near copies", chosen["step"], chosen["conditional_accuracy"],
             chosen["diversity"], worst_diversity(chosen), chosen.get("near_copies") or 0)
    return cls.load(best), best


def checkpoint_used(folder: RunFolder) -> Path:
    """The checkpoint a finished run sampled from (``selection.json``'s ``used``; else best, else last)."""
    used = folder.read_json(RunFolder.SELECTION, {}).get("used")
    if used:
        return folder.file(f"{RunFolder.CHECKPOINTS}/{used}")
    best = folder.file(RunFolder.BEST)
    return best if best.exists() else folder.file(RunFolder.LAST)
