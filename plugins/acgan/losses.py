"""AC-GAN losses: an adversarial term plus an auxiliary classification term for both players.

``bce`` is the paper's (sigmoid real/fake head); ``hinge`` is the hinge loss of SAGAN /
BigGAN, often steadier on small data. One-sided label smoothing (Salimans et al. 2016)
lowers only the real target, so D is never rewarded for overconfidence on real images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def adversarial_d(rf_real: Tensor, rf_fake: Tensor, kind: str, smoothing: float) -> Tensor:
    if kind == "hinge":
        return F.relu(1 - rf_real).mean() + F.relu(1 + rf_fake).mean()
    real_target = torch.full_like(rf_real, 1.0 - smoothing)
    return F.binary_cross_entropy_with_logits(rf_real, real_target) + F.binary_cross_entropy_with_logits(
        rf_fake, torch.zeros_like(rf_fake)
    )


def adversarial_g(rf_fake: Tensor, kind: str) -> Tensor:
    if kind == "hinge":
        return -rf_fake.mean()
    return F.binary_cross_entropy_with_logits(rf_fake, torch.ones_like(rf_fake))


def discriminator_loss(
    real: tuple[Tensor, Tensor],
    fake: tuple[Tensor, Tensor],
    y_real: Tensor,
    y_fake: Tensor,
    kind: str = "bce",
    smoothing: float = 0.0,
) -> Tensor:
    (rf_real, cls_real), (rf_fake, cls_fake) = real, fake
    auxiliary = F.cross_entropy(cls_real, y_real) + F.cross_entropy(cls_fake, y_fake)
    return adversarial_d(rf_real, rf_fake, kind, smoothing) + auxiliary


def generator_loss(fake: tuple[Tensor, Tensor], y_fake: Tensor, kind: str = "bce") -> Tensor:
    rf_fake, cls_fake = fake
    return adversarial_g(rf_fake, kind) + F.cross_entropy(cls_fake, y_fake)
