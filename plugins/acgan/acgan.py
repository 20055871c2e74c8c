"""AC-GAN (Odena et al. 2017): the paper's generator, plus the tricks that make it work on small data."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, field_validator, model_validator
from torch import Tensor

import augkit
from augkit.compute import accel
from augkit.compute import distributed
from augkit.outputs.files import atomic_save
from augkit_plugins.acgan.diffaugment import diff_augment
from augkit_plugins.acgan.losses import discriminator_loss, generator_loss
from augkit_plugins.acgan.networks import Discriminator, Generator, base_size, init_weights
from augkit.compute.sync_batchnorm import synchronise

# The paper's sections 3.3 / 3.4, exactly: what `preset: paper` pins.
PAPER = {
    "image_size": 112,
    "channels": 3,
    "width": 1024,
    "latent_dim": 100,
    "embed_dim": 50,
    "iterations": 32000,
    "batch_size": 32,
    "optimizer": "rmsprop",
    "lr_g": 1e-4,
    "lr_d": 1e-4,
    "diffaugment": [],
    "label_smoothing": 0.0,
    "spectral_norm": False,
    "spectral_norm_g": False,
    "fake_class_loss": True,
    "class_loss": "ce",
    "mode_seeking": 0.0,
    "loss": "bce",
    "ema": None,
    "balanced_batches": False,
}
FORMAT = "augkit-acgan-2"
# what the networks' tensors depend on: a checkpoint cannot load with other values
FIXED = ("image_size", "channels", "width", "latent_dim", "embed_dim", "spectral_norm", "spectral_norm_g",
         "class_loss", "ema")  # ema: whether there is an EMA generator; its decay may change


class ACGAN(augkit.Generator):
    """Auxiliary-classifier GAN: G(z, label) -> image; D(image) -> (real/fake, class)."""

    # 3: faster dropout masks, bf16 by default where supported; 4: the EMA's own BN statistics, Keras' RMSprop
    version = "4"
    supports_distributed = True  # fit() trains with DDP under torchrun (docs/distributed.md)

    class Options(augkit.Generator.Options):
        preset: Literal["paper"] | None = Field(
            None, description="`paper`: the paper's architecture and training exactly (112 px RGB, no small-data tricks)"
        )
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
        # small-data training
        diffaugment: list[Literal["translation", "cutout", "brightness", "contrast"]] = Field(
            default_factory=lambda: ["translation", "cutout", "brightness", "contrast"],
            description="DiffAugment policies applied to every image D sees, real and fake; [] turns it off",
        )
        label_smoothing: float = Field(0.1, ge=0, lt=0.5, description="one-sided: D's real target is 1 - this")
        spectral_norm: bool = Field(False, description="spectral norm on D's layers (replaces D's batch norm)")
        spectral_norm_g: bool = Field(False, description="spectral norm on G's layers too (beside its batch norm)")
        fake_class_loss: bool = Field(
            True, description="D's class loss on generated images too (the paper's AC-GAN); false: on real images only, "
            "StudioGAN's remedy for AC-GAN's collapse")
        mode_seeking: float = Field(
            0.0, ge=0, description="weight of the mode-seeking term (Mao et al. 2019): G is penalised when two noise "
            "vectors of one class give alike images; 0: off")
        class_loss: Literal["ce", "d2d-ce"] = Field(
            "ce", description="class term of D and G: ce (the paper's cross-entropy) or d2d-ce (ReACGAN's "
            "data-to-data cross-entropy on unit embeddings, with class proxies)")
        loss: Literal["bce", "hinge"] = Field("bce", description="adversarial loss: the paper's bce, or hinge")
        ema: float | None = Field(0.999, gt=0, lt=1, description="decay of the moving average of G used for sampling")
        ema_statistics: Literal["own", "live"] = Field(
            "own", description="batch-norm statistics the moving average samples with: own (recomputed for its "
            "weights over 16 seeded batches before it samples, BigGAN's standing statistics) or live (the training "
            "G's running statistics, as before)")
        balanced_batches: bool = Field(True, description="draw training batches with equal class frequencies")
        # speed (see docs/benchmarks.md)
        precision: accel.Precision = Field(
            "auto", description="bf16 autocast (with channels-last memory) or fp32; auto: bf16 where the CPU or GPU "
            "supports it"
        )
        device: accel.Device = Field("auto", description="auto: the GPU if there is one")
        compile: bool = Field(False, description="torch.compile G and D (on this project's CPU it was slower)")

        @model_validator(mode="before")
        @classmethod
        def _paper_preset(cls, data: Any) -> Any:
            if not isinstance(data, dict) or data.get("preset") != "paper":
                return data
            data = dict(data)
            for key, value in PAPER.items():
                if key in data and data[key] != value:
                    raise ValueError(f"preset paper fixes {key} to {value!r} (got {data[key]!r}); drop one of them")
                data[key] = value
            return data

        @field_validator("image_size")
        @classmethod
        def _size(cls, v: int) -> int:
            base_size(v)  # raises with the allowed sizes
            return v

        @model_validator(mode="after")
        def _consistent(self):
            if self.loss == "hinge" and self.label_smoothing:
                raise ValueError("label_smoothing applies to the bce loss only; set it to 0 with loss: hinge")
            return self

    def __init__(self, options: Options | None = None, **kwargs):
        super().__init__(options, **kwargs)
        self._classes: list[str] = []
        self.step = 0  # iterations done (the checkpoint's "step"), read through steps_done
        self.G: Generator | None = None
        self._torch_rng: Tensor | None = None
        self._cuda_rng: Tensor | None = None
        self._stale = True  # the moving average's batch-norm statistics are not yet its own

    @property
    def classes(self) -> list[str]:
        return list(self._classes)

    @property
    def steps_done(self) -> int:
        return self.step

    @property
    def total_steps(self) -> int:
        return self.options.iterations

    # -- building -----------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return accel.resolve_device(self.options.device)

    @property
    def precision(self) -> str:
        # bf16 paid at every shape measured on CPU: 1.4x at 56 px / width 128, ~2.4x at the paper's shape
        return accel.resolve_precision(self.options.precision, self.device)

    def _autocast(self):
        return accel.autocast(self.device, self.precision)

    def _layout(self, x: Tensor) -> Tensor:
        """bf16 convolutions run fastest on channels-last tensors (oneDNN, cuDNN); fp32 ones gained nothing."""
        return x.contiguous(memory_format=torch.channels_last) if self.precision == "bf16" else x

    def _build(self, n_classes: int) -> None:
        o = self.options
        self.G = Generator(n_classes, o.image_size, o.channels, o.width, o.latent_dim, o.embed_dim, o.spectral_norm_g)
        self.D = Discriminator(n_classes, o.image_size, o.channels, o.width, o.dropout, o.spectral_norm,
                               class_embedding=min(512, 4 * o.width) if o.class_loss == "d2d-ce" else None)
        self.G.apply(init_weights)
        self.D.apply(init_weights)
        memory = torch.channels_last if self.precision == "bf16" else torch.contiguous_format
        self.G.to(self.device, memory_format=memory)
        self.D.to(self.device, memory_format=memory)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if o.ema else None
        fused = {"foreach": True} if self.device.type == "cuda" else {}
        make = {
            # Keras' RMSprop (rho 0.9, epsilon 1e-7), the paper's framework; torch's defaults are 0.99 and 1e-8
            "rmsprop": lambda params, lr: torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7, **fused),
            "adam": lambda params, lr: torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999), **fused),
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
        here = distributed.world()
        if here.size > 1:
            self.check_distributed(here.size)
        if self.G is None:  # a fresh start; a loaded checkpoint resumes where it stopped
            torch.manual_seed(seed)
            self._classes = list(train.classes)
            self._build(len(self._classes))
            self.rng.manual_seed(seed)
        elif self._torch_rng is not None:
            torch.set_rng_state(self._torch_rng)  # dropout's stream, as it was at the checkpoint
            if self._cuda_rng is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(self._cuda_rng)
            self._torch_rng = self._cuda_rng = None
        G, D, rng, dev = self.G, self.D, self.rng, self.device
        if here.size > 1:
            G, D = self._distribute()
        D_plain = D.module if here.size > 1 else D  # the G step: D's weights are frozen, DDP has nothing to do
        if o.compile:
            G, D = torch.compile(G), torch.compile(D)
            D_plain = D
        n_classes = len(self._classes)
        images, labels = train.images.to(dev), train.labels  # served from memory: no decoding in the loop
        # balanced batches draw each image with probability inverse to its class's size
        counts = torch.bincount(labels, minlength=n_classes).clamp_min(1).float()
        weights = (1.0 / counts)[labels] if o.balanced_batches else torch.ones(len(labels))
        share = (here.rank, here.size)
        augment = (lambda x: diff_augment(x, o.diffaugment, rng, share)) if o.diffaugment else (lambda x: x)
        # Every rank draws the whole global batch from the same stream and keeps its own slice:
        # together the ranks see exactly the batch a single process draws.
        mine = slice(here.rank * (o.batch_size // here.size), (here.rank + 1) * (o.batch_size // here.size))
        # dropout masks (torch's default stream): different on every rank, fixed by (seed, step, rank)
        reseed = (lambda: torch.manual_seed(_dropout_seed(seed, self.step, here.rank))) if here.size > 1 else None
        G.train()
        D.train()
        started = time.perf_counter()
        while self.step < o.iterations:
            if reseed:
                reseed()
            idx = torch.multinomial(weights, o.batch_size, replacement=True, generator=rng)[mine]
            real, y_real = self._layout(images[idx.to(dev)]), labels[idx].to(dev)
            z = torch.randn(o.batch_size, o.latent_dim, generator=rng)[mine].to(dev)
            y_fake = torch.randint(n_classes, (o.batch_size,), generator=rng)[mine].to(dev)
            if o.mode_seeking:  # pairs (i, i + half) of one class, two noise vectors
                half = len(y_fake) // 2
                y_fake = torch.cat([y_fake[:half], y_fake[:half], y_fake[2 * half:]])
            with self._autocast():
                fake = G(z, y_fake)

                # D: tell real from fake, and recognise the class of both
                out_real, out_fake_d = D(augment(real)), D(augment(fake.detach()))
                d_loss = discriminator_loss(out_real, out_fake_d, y_real, y_fake, o.loss, o.label_smoothing,
                                            fake_class=o.fake_class_loss, proxies=D_plain.unit_proxies())
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()

            # G: fool D, and make the class recognisable. D's weight gradients are not needed
            # here: freezing D skips a third of D's backward work and changes no result.
            D_plain.requires_grad_(False)
            with self._autocast():
                out_fake = D_plain(augment(fake))
                g_loss = generator_loss(out_fake, y_fake, o.loss, proxies=D_plain.unit_proxies())
                if o.mode_seeking:
                    g_loss = g_loss + o.mode_seeking * _mode_seeking(fake, z)
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
            D_plain.requires_grad_(True)
            if self.G_ema is not None:
                _ema_update(self.G_ema, G, min(o.ema, (1 + self.step) / (10 + self.step)),
                            buffers=o.ema_statistics == "live")
                self._stale = True

            self.step += 1
            row: dict[str, float] = {"step": self.step}
            if self.step % o.log_every == 0 or self.step == o.iterations:  # .item() syncs a GPU
                measured = torch.stack([
                    d_loss.detach().float(),
                    g_loss.detach().float(),
                    (out_real[0] > 0).float().mean(),
                    (out_fake_d[0] < 0).float().mean(),
                    (D_plain.class_logits(out_real[1]).argmax(1) == y_real).float().mean(),
                    (D_plain.class_logits(out_fake[1]).argmax(1) == y_fake).float().mean(),
                ])
                # ranks hold equal shares of the batch: the mean over ranks is the global batch's value
                row.update(zip(LOGGED, distributed.all_reduce_mean(measured).tolist()))
                row["sec_per_iter"] = (time.perf_counter() - started) / o.log_every
                started = time.perf_counter()
            yield row

    def check_distributed(self, world_size: int) -> None:
        o = self.options
        if o.batch_size % world_size:
            raise distributed.DistributedError(
                f"generator.options.batch_size {o.batch_size} is not divisible by the {world_size} processes: "
                f"batch_size is the global batch, split evenly over the processes (docs/distributed.md)")
        if o.compile:
            raise distributed.DistributedError("generator.options.compile: true is not supported in a distributed "
                                               "run; set it to false")
        if o.mode_seeking:
            raise distributed.DistributedError("generator.options.mode_seeking pairs images within one process's "
                                               "batch, which several processes would split: set it to 0 under torchrun")

    def _distribute(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """G and D with batch norm over the global batch, wrapped in DDP (gradients averaged over ranks)."""
        dev = self.device
        # Synchronised batch norm gives every rank the same running statistics, so DDP need not
        # broadcast buffers before each of the three forward passes per step.
        return (distributed.ddp(synchronise(self.G, dev), dev, sync_buffers=False),
                distributed.ddp(synchronise(self.D, dev), dev, sync_buffers=False))

    # -- sampling -----------------------------------------------------------------------
    @torch.inference_mode()
    def sample(self, labels: Tensor, *, seed: int) -> Tensor:
        if self.G is None:
            raise RuntimeError("acgan: fit() or load() a checkpoint before sampling")
        net = self.G_ema if self.G_ema is not None else self.G
        if net is self.G_ema and self.options.ema_statistics == "own" and self._stale:
            self._standing_statistics()
        rng = torch.Generator().manual_seed(seed)  # on the CPU: the same z on every device
        z = torch.randn(len(labels), self.options.latent_dim, generator=rng).to(self.device)
        was_training = net.training
        net.eval()
        try:
            with self._autocast():
                out = net(z, labels.long().to(self.device))
            return out.float().cpu().contiguous()
        finally:
            net.train(was_training)

    @torch.inference_mode()
    def _standing_statistics(self, batches: int = 16) -> None:
        """The moving average's batch-norm statistics, recomputed for its own weights: the plain mean of the
        batch statistics over ``batches`` seeded batches of G's training distribution (z, uniform labels).
        A function of the weights alone, so a resumed run and a loaded checkpoint sample the same images."""
        net, o = self.G_ema, self.options
        norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        rng = torch.Generator().manual_seed(0)
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
        net.train()
        try:
            with self._autocast():
                for _ in range(batches):
                    z = torch.randn(o.batch_size, o.latent_dim, generator=rng).to(self.device)
                    y = torch.randint(len(self._classes), (o.batch_size,), generator=rng).to(self.device)
                    net(z, y)
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
            net.eval()
        self._stale = False

    # -- checkpoints --------------------------------------------------------------------
    def save(self, path: Path) -> None:
        atomic_save(
            {
                "format": FORMAT,
                "options": self.options.model_dump(mode="json", exclude={"preset"}),
                "classes": self._classes,
                "step": self.step,
                "G": self.G.state_dict(),
                "G_ema": None if self.G_ema is None else self.G_ema.state_dict(),
                "D": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(),
                "rng": self.rng.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state() if self.device.type == "cuda" else None,
            },
            path,
        )

    @classmethod
    def load(cls, path: Path, **overrides: Any) -> ACGAN:
        """Restore a checkpoint; ``overrides`` may change training options (e.g. ``iterations``)."""
        blob = torch.load(path, weights_only=True, map_location="cpu")
        if blob.get("format") != FORMAT:
            raise ValueError(f"{path} is not an augkit AC-GAN checkpoint (format {FORMAT})")
        cls.refuse_fixed(path, blob["options"], overrides, FIXED,
                         same=lambda k, a, b: (a is None) == (b is None) if k == "ema" else a == b)
        self = cls(cls.Options.model_validate({**blob["options"], **overrides}))
        self._classes = blob["classes"]
        self._build(len(self._classes))
        self.G.load_state_dict(blob["G"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(blob["G_ema"])
        self.D.load_state_dict(blob["D"])
        self.opt_g.load_state_dict(blob["opt_g"])
        self.opt_d.load_state_dict(blob["opt_d"])
        self.rng.set_state(blob["rng"])
        self._torch_rng = blob["torch_rng"]  # restored only when training resumes
        self._cuda_rng = blob.get("cuda_rng")
        self.step = blob["step"]
        return self


LOGGED = ("d_loss", "g_loss", "d_real_acc", "d_fake_acc", "aux_acc_real", "aux_acc_fake")


def _dropout_seed(seed: int, step: int, rank: int) -> int:
    """Distributed training reseeds dropout at every step: masks differ between ranks, and a resumed run
    draws the same ones as an uninterrupted run (whatever the checkpoint's own RNG state)."""
    return (seed * 1_000_003 + step) * 65_536 + rank


def _mode_seeking(fake: Tensor, z: Tensor) -> Tensor:
    """Mao et al.'s term for pairs (i, i + half) of one class: 1 / (image distance / noise distance)."""
    half = len(fake) // 2
    images = (fake[:half] - fake[half:2 * half]).float().abs().mean((1, 2, 3))
    noise = (z[:half] - z[half:2 * half]).float().abs().mean(1)
    return 1.0 / ((images / noise).mean() + 1e-5)


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float, buffers: bool) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)
    if buffers:  # ema_statistics: live: batch-norm statistics follow G directly
        for e, b in zip(ema.buffers(), model.buffers()):
            e.copy_(b)


