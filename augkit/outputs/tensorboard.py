"""TensorBoard event files in every run folder (``<run>/tensorboard/``), for watching a run as it trains.

Optional: with the ``tensorboard`` package installed (``pip install 'augkit[tensorboard]'``) a run
writes the generator's losses and sample grids at each checkpoint, its selection scores, every
classifier's train / validation curves (per regime and seed) and the audit's scalars;
``tensorboard --logdir runs/`` shows them. Without it, one note in the log and nothing else.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("augkit")
FOLDER = "tensorboard"


class Board:
    """One run folder's event writer; every method does nothing when TensorBoard is not installed."""

    _noted = False

    def __init__(self, path: Path, enabled: bool = True):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            if not Board._noted:
                log.info("no TensorBoard event files: the tensorboard package is not installed "
                         "(pip install 'augkit[tensorboard]')")
                Board._noted = True
            return
        self.writer = SummaryWriter(str(Path(path) / FOLDER), flush_secs=10)

    def scalars(self, prefix: str, row: dict, step: int) -> None:
        """Every number of ``row`` (but its step) as ``prefix/<key>`` at ``step``."""
        if self.writer is None:
            return
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{key}", float(value), step)

    def grid(self, tag: str, images: torch.Tensor, step: int, columns: int = 8) -> None:
        """(N, C, H, W) in [-1, 1] as one image."""
        if self.writer is None:
            return
        from torchvision.utils import make_grid

        self.writer.add_image(tag, make_grid((images.float().clamp(-1, 1) + 1) / 2, nrow=columns), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
