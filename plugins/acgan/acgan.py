"""AC-GAN (Odena et al. 2017) as the paper trains it: RMSProp 1e-4, batch 32."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, field_validator
from torch import Tensor

import augkit
from augkit.data import atomic_save
from augkit_plugins.acgan.losses import discriminator_loss, generator_loss
from augkit_plugins.acgan.networks import Discriminator, Generator, base_size, init_weights


class ACGAN(augkit.Generator):
    """Auxiliary-classifier GAN: G(z, label) -> image; D(image) -> (real/fake, class)."""

    version = "1"

    class Options(augkit.Generator.Options):
        image_size: int = Field(112, description="output side: 7*2^k (the paper's 112) or 2^k")
        channels: Literal[1, 3] = Field(1, description="1 (grayscale) or 3 (the paper's RGB output)")
        width: int = Field(1024, ge=8, description="channels of the first 7x7 map (the paper's 1024); D mirrors it")
        latent_dim: int = Field(100, ge=1, description="noise vector size (the paper's 100)")
        embed_dim: int = Field(50, ge=1, description="label embedding size (the paper's 50)")
        dropout: float = Field(0.25, ge=0, lt=1, description="dropout after each discriminator block")
        iterations: int = Field(32000, ge=1, description="training iterations (the paper's 32,000)")
        batch_size: int = Field(32, ge=2, description="images per iteration (the paper's 32)")
        optimizer: Literal["rmsprop", "adam"] = Field("rmsprop", description="the paper uses RMSProp")
        lr_g: float = Field(1e-4, gt=0, description="generator learning rate")
        lr_d: float = Field(1e-4, gt=0, description="discriminator learning rate")
        log_every: int = Field(10, ge=1, description="iterations between log rows")

        @field_validator("image_size")
        @classmethod
        def _size(cls, v: int) -> int:
            base_size(v)  # raises with the allowed sizes
            return v

    def __init__(self, options: Options | None = None, **kwargs):
        super().__init__(options, **kwargs)
        self.classes: list[str] | None = None
        self.step = 0
        self.G: Generator | None = None

    # -- building -----------------------------------------------------------------------
    def _build(self, n_classes: int) -> None:
        o = self.options
        self.G = Generator(n_classes, o.image_size, o.channels, o.width, o.latent_dim, o.embed_dim)
        self.D = Discriminator(n_classes, o.image_size, o.channels, o.width, o.dropout)
        self.G.apply(init_weights)
        self.D.apply(init_weights)
        make = {
            "rmsprop": lambda params, lr: torch.optim.RMSprop(params, lr=lr),
            "adam": lambda params, lr: torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999)),
        }[o.optimizer]
        self.opt_g = make(self.G.parameters(), o.lr_g)
        self.opt_d = make(self.D.parameters(), o.lr_d)
        self.rng = torch.Generator().manual_seed(0)

    # -- training -----------------------------------------------------------------------
    def fit(self, train: augkit.LabeledImages, *, seed: int = 0) -> Iterator[dict[str, float]]:
        o = self.options
        expected = (o.channels, o.image_size, o.image_size)
        if tuple(train.images.shape[1:]) != expected:
            raise ValueError(f"acgan expects images of shape {expected}, got {tuple(train.images.shape[1:])}")
        if self.G is None:  # a fresh start; a loaded checkpoint resumes where it stopped
            torch.manual_seed(seed)
            self.classes = list(train.classes)
            self._build(len(self.classes))
            self.rng.manual_seed(seed)
        elif getattr(self, "_torch_rng", None) is not None:
            torch.set_rng_state(self._torch_rng)
            self._torch_rng = None
        G, D, rng = self.G, self.D, self.rng
        n_classes = len(self.classes)
        images, labels = train.images, train.labels
        G.train()
        D.train()
        started = time.perf_counter()
        while self.step < o.iterations:
            idx = torch.randint(len(images), (o.batch_size,), generator=rng)
            real, y_real = images[idx], labels[idx]
            z = torch.randn(o.batch_size, o.latent_dim, generator=rng)
            y_fake = torch.randint(n_classes, (o.batch_size,), generator=rng)
            fake = G(z, y_fake)

            # D: tell real from fake, and recognise the class of both
            d_loss = discriminator_loss(D(real), D(fake.detach()), y_real, y_fake)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()

            # G: fool D, and make the class recognisable
            out_fake = D(fake)
            g_loss = generator_loss(out_fake, y_fake)
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()

            self.step += 1
            row: dict[str, float] = {"step": self.step}
            if self.step % o.log_every == 0 or self.step == o.iterations:
                row.update(
                    d_loss=d_loss.item(),
                    g_loss=g_loss.item(),
                    class_acc=(out_fake[1].argmax(1) == y_fake).float().mean().item(),
                    sec_per_iter=(time.perf_counter() - started) / o.log_every,
                )
                started = time.perf_counter()
            yield row

    # -- sampling -----------------------------------------------------------------------
    @torch.inference_mode()
    def sample(self, labels: Tensor, *, seed: int) -> Tensor:
        if self.G is None:
            raise RuntimeError("acgan: fit() or load() a checkpoint before sampling")
        rng = torch.Generator().manual_seed(seed)
        z = torch.randn(len(labels), self.options.latent_dim, generator=rng)
        was_training = self.G.training
        self.G.eval()
        try:
            return self.G(z, labels.long()).float()
        finally:
            self.G.train(was_training)

    # -- checkpoints --------------------------------------------------------------------
    def save(self, path: Path) -> None:
        atomic_save(
            {
                "format": "augkit-acgan-1",
                "options": self.options.model_dump(mode="json"),
                "classes": self.classes,
                "step": self.step,
                "G": self.G.state_dict(),
                "D": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(),
                "rng": self.rng.get_state(),
                "torch_rng": torch.get_rng_state(),
            },
            path,
        )

    @classmethod
    def load(cls, path: Path) -> ACGAN:
        blob = torch.load(path, weights_only=True)
        if blob.get("format") != "augkit-acgan-1":
            raise ValueError(f"{path} is not an augkit AC-GAN checkpoint")
        self = cls(cls.Options.model_validate(blob["options"]))
        self.classes = blob["classes"]
        self._build(len(self.classes))
        self.G.load_state_dict(blob["G"])
        self.D.load_state_dict(blob["D"])
        self.opt_g.load_state_dict(blob["opt_g"])
        self.opt_d.load_state_dict(blob["opt_d"])
        self.rng.set_state(blob["rng"])
        self._torch_rng = blob["torch_rng"]  # dropout's stream, restored only when training resumes
        self.step = blob["step"]
        return self
