"""Synthetic images batch after batch, each batch seeded: the same seed gives the same images, on 1 or N processes."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from augkit.compute import distributed
from augkit.extension.roles import Generator, LabeledImages, SyntheticBatch
from augkit.extension.sampling import sample_checked
from augkit.outputs.progress import Progress, no_progress
from augkit.stages import side_by_side


def generate_batches(generator: Generator, labels: torch.Tensor, *, seed: int, batch_size: int,
                     progress: Progress = no_progress, first: int = 0, shard: bool = False,
                     shape: tuple[int, ...] | None = None) -> Iterator[SyntheticBatch]:
    """Yield batch after batch: constant memory, same seed -> same images.

    Batch b (counting from ``first``) is generated with seed ``seed * 1_000_003 + b``.

    ``shard`` (every rank must call it, under torchrun): rank r generates batches r, r + N, r + 2N ...
    of N ranks, and every rank yields every batch, in order: the same batches, in the same order, as
    one process yields. Without a process group ``shard`` changes nothing.
    """
    starts = range(0, len(labels), batch_size)
    here = distributed.world() if shard else distributed.World()

    def make(k: int) -> SyntheticBatch:
        y = labels[starts[k] : starts[k] + batch_size]
        batch_seed = seed * 1_000_003 + first + k
        with side_by_side.full_speed():  # a head start's core back: the threads augkit evaluate samples with
            return SyntheticBatch.of((sample_checked(generator, y, seed=batch_seed, shape=shape), y, batch_seed))

    if here.size == 1:
        for k in progress(range(len(starts)), "sample", len(starts)):
            yield make(k)
        return
    rounds = range(0, len(starts), here.size)  # one batch per rank per round: memory stays N batches
    for r in progress(rounds, "sample", len(rounds)):
        k = r + here.rank
        for batch in distributed.all_gather(make(k) if k < len(starts) else None):
            if batch is not None:
                yield batch


def pool_of(batches: list[SyntheticBatch], train: LabeledImages) -> LabeledImages:
    """The batches as one labelled set in the training split's classes (empty, of the right shape, if none)."""
    if not batches:
        return LabeledImages(torch.empty((0, *train.images.shape[1:])), torch.empty(0, dtype=torch.long),
                             train.classes)
    return LabeledImages(torch.cat([b.images for b in batches]), torch.cat([b.labels for b in batches]),
                         train.classes)
