"""AC-GAN losses: an adversarial term plus an auxiliary classification term for both players.

``bce`` is the paper's (sigmoid real/fake head); ``hinge`` is the hinge loss of SAGAN /
BigGAN, often steadier on small data. One-sided label smoothing (Salimans et al. 2016)
lowers only the real target, so D is never rewarded for overconfidence on real images.

The class term is the paper's cross-entropy of D's class head, or ``d2d-ce``, the
data-to-data cross-entropy of ReACGAN (Kang et al. 2021): D embeds each image on the unit
sphere and is pulled towards its class's proxy and pushed from images of other classes in the
batch, with margins, so the gradients of easy samples vanish instead of growing. D's class
term on generated images (``fake_class_loss``) is the paper's AC-GAN; StudioGAN's
maintainers drop it, as ReACGAN does: a D that learns to classify bad fakes teaches G to draw
the class's easiest look.
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


def d2d_ce(embed: Tensor, proxies: Tensor, labels: Tensor, temperature: float = 0.5, margin: float = 0.98) -> Tensor:
    """ReACGAN's data-to-data cross-entropy of unit ``embed`` (N, E) against unit class ``proxies`` (K, E).

    Per image i: ``-log(e^{-a_i} / (e^{-a_i} + sum_j e^{r_ij}))`` over the batch's images j of
    another class, with attraction ``a_i = max(0, margin - f_i . v_{y_i}) / temperature`` and
    repulsion ``r_ij = max(0, f_i . f_j + margin - 1) / temperature``.
    """
    attraction = F.relu(margin - (embed * proxies[labels]).sum(1)) / temperature
    repulsion = F.relu(embed @ embed.T + margin - 1) / temperature
    other = labels[:, None] != labels[None, :]  # same-class images are no negatives (and i is not its own)
    terms = torch.cat([-attraction[:, None], repulsion.masked_fill(~other, float("-inf"))], 1)
    return (attraction + torch.logsumexp(terms.float(), 1)).mean()


def class_loss(cls: Tensor, labels: Tensor, proxies: Tensor | None) -> Tensor:
    """The class term: cross-entropy of class logits, or with ``proxies`` D2D-CE of unit embeddings."""
    return F.cross_entropy(cls, labels) if proxies is None else d2d_ce(cls, proxies, labels)


def discriminator_loss(
    real: tuple[Tensor, Tensor],
    fake: tuple[Tensor, Tensor],
    y_real: Tensor,
    y_fake: Tensor,
    kind: str = "bce",
    smoothing: float = 0.0,
    *,
    fake_class: bool = True,
    proxies: Tensor | None = None,
) -> Tensor:
    (rf_real, cls_real), (rf_fake, cls_fake) = real, fake
    auxiliary = class_loss(cls_real, y_real, proxies)
    if fake_class:
        auxiliary = auxiliary + class_loss(cls_fake, y_fake, proxies)
    return adversarial_d(rf_real, rf_fake, kind, smoothing) + auxiliary


def generator_loss(fake: tuple[Tensor, Tensor], y_fake: Tensor, kind: str = "bce", *,
                   proxies: Tensor | None = None) -> Tensor:
    rf_fake, cls_fake = fake
    return adversarial_g(rf_fake, kind) + class_loss(cls_fake, y_fake, proxies)
