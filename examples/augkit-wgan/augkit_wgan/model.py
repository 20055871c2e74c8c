"""Conditional WGAN-GP (Gulrajani et al. 2017) with a projection critic (Miyato & Koyama 2018).

G(z, y): the label's embedding is concatenated to z, then a dense layer makes a 4x4 map that
transposed convolutions double up to the image size (batch norm and ReLU in between, tanh out).

D(x, y): strided convolutions with LeakyReLU and no normalisation (batch norm couples the
images of a batch, which breaks the per-image gradient penalty), down to a 4x4 map of
features h; the score is ``linear(h) + <embed(y), h>`` (projection conditioning: the label
picks a direction in feature space rather than being glued to the input).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, field_validator
from torch import Tensor, nn

import augkit
from augkit.outputs.files import atomic_save

FORMAT = "augkit-wgan-1"
BASE = 4  # side of the smallest feature map, in G and D


def check_image_size(image_size: int) -> int:
    """``image_size`` unchanged if it is a power of two >= 8, else a ValueError naming the allowed sizes.

    (The recipe's error message adds the value that came in.)
    """
    if image_size < 2 * BASE or image_size & (image_size - 1):
        raise ValueError("image_size must be a power of two >= 8: 8, 16, 32, 64, 128, ...")
    return image_size


def _widths(width: int, image_size: int) -> list[int]:
    # one entry per 2x resolution step from 4x4: widest at 4x4, halving (not below 8) towards the image
    n = (image_size // BASE).bit_length() - 1
    return [max(width // 2**i, 8) for i in range(n)]


class Generator(nn.Module):
    """(z (N, latent_dim), labels (N,)) -> images (N, channels, size, size) in [-1, 1]."""

    def __init__(self, n_classes: int, image_size: int, channels: int, width: int, latent_dim: int):
        super().__init__()
        widths = _widths(width, image_size)
        self.embed = nn.Embedding(n_classes, latent_dim)
        self.dense = nn.Sequential(
            nn.Linear(2 * latent_dim, widths[0] * BASE**2),
            nn.Unflatten(1, (widths[0], BASE, BASE)),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        )
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.up = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.up(self.dense(torch.cat([z, self.embed(y)], 1)))


class Critic(nn.Module):
    """(images (N, C, S, S), labels (N,)) -> scores (N,), unbounded; no normalisation layers."""

    def __init__(self, n_classes: int, image_size: int, channels: int, width: int):
        super().__init__()
        widths = _widths(width, image_size)[::-1]  # mirror of G: narrow at full resolution
        layers: list[nn.Module] = []
        for c_in, c_out in zip([channels, *widths], widths):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers, nn.Flatten())
        n_features = widths[-1] * BASE**2
        self.score = nn.Linear(n_features, 1)
        self.project = nn.Embedding(n_classes, n_features)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = self.features(x)
        return self.score(h).squeeze(1) + (self.project(y) * h).sum(1)


# -- losses ---------------------------------------------------------------------------------


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor, labels: Tensor, eps: Tensor) -> Tensor:
    """E[(||grad_x D(x, y)||_2 - 1)^2] at x = eps * real + (1 - eps) * fake; eps (N, 1, 1, 1) in [0, 1].

    Built with ``create_graph`` so that the penalty itself trains the critic.
    """
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x, labels).sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def critic_loss(critic: nn.Module, real: Tensor, fake: Tensor, labels: Tensor, eps: Tensor,
                gp_weight: float) -> tuple[Tensor, Tensor]:
    """(-(E D(real) - E D(fake)) + gp_weight * penalty, penalty): minimising it estimates the W-distance."""
    wasserstein = critic(real, labels).mean() - critic(fake, labels).mean()
    gp = gradient_penalty(critic, real, fake, labels, eps)
    return -wasserstein + gp_weight * gp, gp


def generator_loss(critic: nn.Module, fake: Tensor, labels: Tensor) -> Tensor:
    return -critic(fake, labels).mean()


# -- the plugin -----------------------------------------------------------------------------


class WGANGP(augkit.Generator):
    """Conditional Wasserstein GAN with gradient penalty: G(z, label) -> image; D(image, label) -> score."""

    version = "1"

    class Options(augkit.Generator.Options):
        image_size: int = Field(64, description="output side: a power of two >= 8")
        channels: Literal[1, 3] = Field(1, description="1 (grayscale) or 3 (RGB)")
        width: int = Field(64, ge=8, description="channels of G's 4x4 map (and D's last); halved per 2x resolution")
        latent_dim: int = Field(64, ge=1, description="noise vector size; the label embedding has the same size")
        iterations: int = Field(2000, ge=1, description="generator updates")
        batch_size: int = Field(32, ge=2, description="images per critic and generator step")
        n_critic: int = Field(5, ge=1, description="critic updates per generator update")
        gp_weight: float = Field(10.0, ge=0, description="weight of the gradient penalty (the paper's lambda)")
        lr: float = Field(1e-4, gt=0, description="Adam learning rate of both networks")
        betas: tuple[float, float] = Field((0.0, 0.9), description="Adam betas (the paper's 0, 0.9)")
        log_every: int = Field(10, ge=1, description="iterations between log rows with losses")

        @field_validator("image_size")
        @classmethod
        def _size(cls, v: int) -> int:
            return check_image_size(v)

        @field_validator("betas")
        @classmethod
        def _betas(cls, v: tuple[float, float]) -> tuple[float, float]:
            if not all(0 <= b < 1 for b in v):
                raise ValueError("both betas must lie in [0, 1)")
            return v

    def __init__(self, options: Options | None = None, **kwargs: Any):
        super().__init__(options, **kwargs)
        self._classes: list[str] = []
        self._step = 0  # generator updates done
        self.G: Generator | None = None

    # -- the role's properties: class names, steps done, steps in all -------------------
    @property
    def classes(self) -> list[str]:
        return list(self._classes)

    @property
    def steps_done(self) -> int:
        return self._step

    @property
    def total_steps(self) -> int:
        return self.options.iterations

    def _build(self, n_classes: int, seed: int) -> None:
        o = self.options
        with torch.random.fork_rng(devices=[]):  # seeded initial weights; the global RNG is left alone
            torch.manual_seed(seed)
            self.G = Generator(n_classes, o.image_size, o.channels, o.width, o.latent_dim)
            self.D = Critic(n_classes, o.image_size, o.channels, o.width)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=o.lr, betas=o.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr, betas=o.betas)
        self.rng = torch.Generator().manual_seed(seed)  # every random draw of training comes from here

    # -- training -----------------------------------------------------------------------
    def fit(self, train: augkit.LabeledImages, *, seed: int = 0) -> Iterator[dict[str, float]]:
        o = self.options
        expected = (o.channels, o.image_size, o.image_size)
        if tuple(train.images.shape[1:]) != expected:
            raise ValueError(f"wgan-gp expects images of shape {expected}, got {tuple(train.images.shape[1:])}")
        if self.G is None:  # a fresh start; a loaded checkpoint resumes where it stopped
            self._classes = list(train.classes)
            self._build(len(self._classes), seed)
        elif list(train.classes) != self._classes:
            raise ValueError(f"wgan-gp was trained on classes {self._classes}, not {list(train.classes)}")
        G, D, rng = self.G, self.D, self.rng
        n_classes = len(self._classes)
        images, labels = train.images, train.labels
        # class-balanced real batches: each image is drawn with probability inverse to its class's size
        counts = torch.bincount(labels, minlength=n_classes).clamp_min(1).float()
        weights = (1.0 / counts)[labels]
        G.train()
        D.train()
        while self._step < o.iterations:
            # D: n_critic steps towards the Wasserstein distance between real and fake, class by class
            for _ in range(o.n_critic):
                idx = torch.multinomial(weights, o.batch_size, replacement=True, generator=rng)
                real, y = images[idx], labels[idx]
                z = torch.randn(o.batch_size, o.latent_dim, generator=rng)
                eps = torch.rand(o.batch_size, 1, 1, 1, generator=rng)
                with torch.no_grad():
                    fake = G(z, y)  # the real batch's labels: the penalty interpolates within a class
                d_loss, gp = critic_loss(D, real, fake, y, eps, o.gp_weight)
                self.opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                self.opt_d.step()

            # G: raise the critic's score of fresh fakes, classes drawn uniformly
            z = torch.randn(o.batch_size, o.latent_dim, generator=rng)
            y_fake = torch.randint(n_classes, (o.batch_size,), generator=rng)
            g_loss = generator_loss(D, G(z, y_fake), y_fake)
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()

            self._step += 1
            row: dict[str, float] = {"step": self._step}
            if self._step % o.log_every == 0 or self._step == o.iterations:  # .item() syncs a GPU
                row.update(d_loss=d_loss.item(), g_loss=g_loss.item(), gp=gp.item())
            yield row

    # -- sampling -----------------------------------------------------------------------
    @torch.inference_mode()
    def sample(self, labels: Tensor, *, seed: int) -> Tensor:
        if self.G is None:
            raise RuntimeError("wgan-gp: fit() or load() a checkpoint before sampling")
        labels = labels.long()
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self._classes)):
            raise ValueError(f"wgan-gp: labels must lie in [0, {len(self._classes)}), got {labels.unique().tolist()}")
        rng = torch.Generator().manual_seed(seed)
        z = torch.randn(len(labels), self.options.latent_dim, generator=rng)
        was_training = self.G.training
        self.G.eval()  # batch norm's running statistics: an image does not depend on its batch
        try:
            return self.G(z, labels).float()
        finally:
            self.G.train(was_training)

    # -- checkpoints --------------------------------------------------------------------
    def save(self, path: Path) -> None:
        if self.G is None:
            raise RuntimeError("wgan-gp: nothing to save before fit()")
        atomic_save(
            {
                "format": FORMAT,
                "options": self.options.model_dump(mode="json"),
                "classes": self._classes,
                "step": self._step,
                "G": self.G.state_dict(),
                "D": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(),
                "rng": self.rng.get_state(),
            },
            path,
        )

    @classmethod
    def load(cls, path: Path, **overrides: Any) -> WGANGP:
        """Restore a checkpoint; ``overrides`` may change training options (e.g. ``iterations``)."""
        blob = torch.load(path, weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError(f"{path} is not an augkit-wgan checkpoint (format {FORMAT})")
        self = cls(cls.Options.model_validate({**blob["options"], **overrides}))
        self._classes = blob["classes"]
        self._build(len(self._classes), seed=0)  # every weight and state is overwritten below
        self.G.load_state_dict(blob["G"])
        self.D.load_state_dict(blob["D"])
        self.opt_g.load_state_dict(blob["opt_g"])
        self.opt_d.load_state_dict(blob["opt_d"])
        self.rng.set_state(blob["rng"])
        self._step = blob["step"]
        return self
