"""AC-GAN losses: a real/fake term plus an auxiliary classification term for both players."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def discriminator_loss(real: tuple[Tensor, Tensor], fake: tuple[Tensor, Tensor], y_real: Tensor, y_fake: Tensor) -> Tensor:
    (rf_real, cls_real), (rf_fake, cls_fake) = real, fake
    adversarial = F.binary_cross_entropy_with_logits(rf_real, torch.ones_like(rf_real)) + F.binary_cross_entropy_with_logits(
        rf_fake, torch.zeros_like(rf_fake)
    )
    auxiliary = F.cross_entropy(cls_real, y_real) + F.cross_entropy(cls_fake, y_fake)
    return adversarial + auxiliary


def generator_loss(fake: tuple[Tensor, Tensor], y_fake: Tensor) -> Tensor:
    rf_fake, cls_fake = fake
    return F.binary_cross_entropy_with_logits(rf_fake, torch.ones_like(rf_fake)) + F.cross_entropy(cls_fake, y_fake)
