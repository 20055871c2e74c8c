"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image D sees.

D sees real and fake images through the same random transformations, in both the D and the
G step, so it cannot memorise a small training set and G is not taught to reproduce the
augmentations. Policies suited to grayscale radiographs: ``translation``, ``cutout``,
``brightness`` and ``contrast`` (no saturation or hue). Images are in [-1, 1] with -1 as the
background, so translated-in borders and cut-out squares are filled with -1.

``share=(rank, ranks)``: ``x`` is one rank's equal share of a global batch (distributed
training). Each augmentation then draws its random parameters for the whole global batch
and applies the rank's slice of them: the same parameters, image for image, as a single
process augmenting the whole batch, and the same random stream afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def diff_augment(x: Tensor, policy: Sequence[str], rng: torch.Generator, share: tuple[int, int] = (0, 1)) -> Tensor:
    for name in policy:
        x = AUGMENTATIONS[name](x, rng, share=share)
    return x


def _mine(draw: Tensor, share: tuple[int, int], device) -> Tensor:
    """This rank's slice of parameters drawn for the whole global batch."""
    rank, ranks = share
    n = len(draw) // ranks
    return draw[rank * n : (rank + 1) * n].to(device)


def _uniform(n: int, rng: torch.Generator, device, share: tuple[int, int] = (0, 1)) -> Tensor:
    return _mine(torch.rand(n * share[1], 1, 1, 1, generator=rng), share, device)


def brightness(x: Tensor, rng: torch.Generator, share: tuple[int, int] = (0, 1)) -> Tensor:
    return x + (_uniform(len(x), rng, x.device, share) - 0.5) * 0.5


def contrast(x: Tensor, rng: torch.Generator, share: tuple[int, int] = (0, 1)) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(len(x), rng, x.device, share) + 0.5) + mean


def translation(x: Tensor, rng: torch.Generator, ratio: float = 0.125, share: tuple[int, int] = (0, 1)) -> Tensor:
    n, _, h, w = x.shape
    sy, sx = max(int(h * ratio), 1), max(int(w * ratio), 1)
    dy = _mine(torch.randint(-sy, sy + 1, (n * share[1],), generator=rng), share, x.device)
    dx = _mine(torch.randint(-sx, sx + 1, (n * share[1],), generator=rng), share, x.device)
    # integer shifts through index arithmetic: differentiable in x, exact, no interpolation
    rows = torch.arange(h, device=x.device)[None, :] - dy[:, None]  # (N, H)
    cols = torch.arange(w, device=x.device)[None, :] - dx[:, None]  # (N, W)
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    batch = torch.arange(n, device=x.device)[:, None, None]
    shifted = x.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return torch.where(valid[:, None], shifted, torch.full_like(shifted, -1.0))


def cutout(x: Tensor, rng: torch.Generator, ratio: float = 0.5, share: tuple[int, int] = (0, 1)) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = max(int(h * ratio + 0.5), 1), max(int(w * ratio + 0.5), 1)
    cy = _mine(torch.randint(0, h + (1 - ch % 2), (n * share[1],), generator=rng), share, x.device)
    cx = _mine(torch.randint(0, w + (1 - cw % 2), (n * share[1],), generator=rng), share, x.device)
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_y = ((ys - cy[:, None]).abs() <= ch // 2)[:, :, None]
    in_x = ((xs - cx[:, None]).abs() <= cw // 2)[:, None, :]
    return torch.where((in_y & in_x)[:, None], torch.full_like(x, -1.0), x)


AUGMENTATIONS = {"translation": translation, "cutout": cutout, "brightness": brightness, "contrast": contrast}
