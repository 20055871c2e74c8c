"""A class-conditional diffusion model on MONAI: ``DiffusionModelUNet`` with class embeddings.

Training: the UNet learns to denoise real images at random noise levels, told the class, except
for a ``label_dropout`` share of images told the "null" class (classifier-free guidance, Ho &
Salimans 2022). Two objectives from MONAI's schedulers:

* ``rflow`` (the default): rectified flow (MONAI's ``RFlowScheduler``, as in MAISI): the image
  at time t is ``(1 - t) x0 + t noise``, the UNet predicts the velocity ``x0 - noise``, noise
  levels drawn logit-normal (Esser et al. 2024); sampling takes ``sampling_steps`` Heun steps (or Euler).
* ``ddpm``: the DDPM noise-prediction objective (``DDPMScheduler``, linear betas, uniform
  timesteps); sampling is deterministic DDIM (``DDIMScheduler``, eta 0) in ``sampling_steps`` steps.

Sampling mixes the class-conditional and unconditional predictions with ``guidance``
(1: conditional only, no second pass), at the noise levels in ``guidance_interval``. An exponential moving average of the weights samples.
Every random draw of training (batch, noise, noise level, dropped labels) comes from one seeded
generator saved in the checkpoint, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor

import augkit
from augkit.compute import accel
from augkit.compute import distributed
from augkit.outputs.files import atomic_save

FORMAT = "augkit-diffusion-1"
# what the trained weights are made for: a loaded checkpoint keeps them
FIXED = ("image_size", "channels", "widths", "attention", "res_blocks", "head_channels", "norm_groups", "objective",
         "train_timesteps", "ema")


class Diffusion(augkit.Generator):
    """Class-conditional diffusion: a MONAI UNet denoises images, told their class."""

    version = "1"
    supports_distributed = True  # fit() trains with DDP under torchrun, like the AC-GAN

    class Options(augkit.Generator.Options):
        image_size: int = Field(56, ge=8, description="output side; divisible by 2 for each level below the first")
        channels: Literal[1, 3] = Field(1, description="1 (grayscale) or 3 (RGB output)")
        widths: list[int] = Field(
            default_factory=lambda: [16, 32, 64, 64], min_length=2,
            description="UNet channels per level (MONAI's `channels`), each a multiple of norm_groups; the CPU size "
            "[16, 32, 64, 64]; a GPU at 112-128 px: [64, 128, 256, 256]")
        attention: list[bool] = Field(
            default_factory=lambda: [False, False, False, True],
            description="self-attention at each level (one entry per width)")
        res_blocks: int = Field(1, ge=1, description="residual blocks per level (MONAI's `num_res_blocks`)")
        head_channels: int = Field(32, ge=1, description="channels per attention head")
        norm_groups: int = Field(16, ge=1, description="group-norm groups")
        objective: Literal["rflow", "ddpm"] = Field(
            "rflow", description="rflow (rectified flow, Heun or Euler sampling) or ddpm (noise prediction, DDIM sampling)")
        train_timesteps: int = Field(1000, ge=100, le=2048, description="the noise schedule's steps in training")
        noise_levels: Literal["logit-normal", "uniform"] = Field(
            "logit-normal", description="rflow: how training draws noise levels; logit-normal (Esser et al. 2024) "
            "rarely draws the highest levels, where the layout is decided (1.4 % above 0.9), uniform (MONAI's "
            "RFlowScheduler default) draws every level equally often. ddpm: always uniform")
        sampling_steps: int = Field(16, ge=1, description="denoising steps per sample (rflow: Euler or Heun steps, "
                                    "ddpm: DDIM steps)")
        sampler: Literal["euler", "heun"] | None = Field(
            None, description="rflow: heun (second order: a second pass at the next level corrects each step but "
            "the last, 2 x steps - 1 passes) or euler (one pass per step); unset: heun (ddpm samples with DDIM). Few "
            "Euler steps draw less varied images: 8 Heun steps were as varied as 64 Euler ones at the cost of 16 "
            "(docs/generators.md)")
        sampling_shift: float = Field(
            1.0, gt=0, description="rflow: where the sampling steps fall; above 1 they crowd the noisiest levels, "
            "where the layout is drawn (t -> s t / (1 + (s - 1) t), Esser et al. 2024; MONAI's timestep transform); "
            "1: evenly spaced")
        guidance: float = Field(2.0, ge=1, description="classifier-free guidance scale; 1: conditional only (one "
                                "network pass per step instead of two)")
        guidance_interval: tuple[float, float] = Field(
            (0.0, 1.0), description="the noise levels where guidance applies, as shares of the schedule (0: the "
            "clean image, 1: pure noise); elsewhere one conditional pass. Guidance at the highest levels, where the "
            "layout is drawn, costs diversity (Kynkaanniemi et al. 2024); [0, 1]: every step")
        label_dropout: float = Field(0.1, ge=0, lt=1, description="share of training images shown the null class "
                                     "(what guidance needs; 0 turns guidance off: set guidance 1)")
        iterations: int = Field(3000, ge=1, description="training iterations")
        batch_size: int = Field(16, ge=2, description="images per iteration (16: what every 3,000-step figure in "
                                "docs/generators.md was measured with; on a GPU raise it, as its recipes do)")
        lr: float = Field(2e-4, gt=0, description="AdamW learning rate")
        warmup: int = Field(100, ge=0, description="iterations of linear learning-rate warm-up")
        grad_clip: float | None = Field(1.0, gt=0, description="gradient norm clip; null: none")
        ema: float | None = Field(0.999, gt=0, lt=1, description="decay of the weights' moving average that samples")
        balanced_batches: bool = Field(
            False, description="draw training batches with equal class frequencies; false: every training image "
            "equally often. Balanced, an 18-image class is shown 5x as often per image as a 96-image one and its "
            "samples began to copy training images at 3,000 steps (docs/generators.md)")
        flip: bool = Field(False, description="mirror training images left-right at random (not for chest X-rays: "
                           "the heart is on the left)")
        sample_batch: int | None = Field(
            None, ge=1, description="images denoised at once when sampling (the same images at any value); unset: 16 "
            "on a CPU, 64 on a GPU (on a CPU at 56 px, 16 samples 1.7x faster than 64: docs/benchmarks.md)")
        log_every: int = Field(10, ge=1, description="iterations between log rows")
        precision: accel.Precision = Field(
            "auto", description="bf16 autocast or fp32; auto: bf16 where the CPU or GPU supports it (docs/benchmarks.md)")
        channels_last: bool | None = Field(
            None, description="channels-last memory; unset: on a GPU under bf16 only (on a CPU, bf16 group norm on "
            "channels-last tensors is 25x slower than on contiguous ones: docs/benchmarks.md)")
        flash_attention: bool | None = Field(
            None, description="attention through torch's scaled_dot_product_attention (MONAI's use_flash_attention; "
            "same weights, results equal up to rounding); unset: on a GPU only (on a CPU 1.18x faster per training "
            "step at the GPU size, no gain at the CPU size: docs/benchmarks.md)")
        device: accel.Device = Field("auto", description="auto: the GPU if there is one")
        compile: bool = Field(False, description="torch.compile the UNet")

        @model_validator(mode="after")
        def _consistent(self):
            if len(self.attention) != len(self.widths):
                raise ValueError(f"attention has {len(self.attention)} entries and widths {len(self.widths)}: "
                                 "give one per level")
            bad = [w for w in self.widths if w % self.norm_groups]
            if bad:
                raise ValueError(f"widths {bad} are not multiples of norm_groups {self.norm_groups}")
            factor = 2 ** (len(self.widths) - 1)
            if self.image_size % factor:
                raise ValueError(f"image_size {self.image_size} is not divisible by {factor} (2 per level below the "
                                 f"first of widths {self.widths}): pick a size divisible by {factor} or fewer levels")
            # MONAI's middle block always has attention, at the last width
            for w, a in [*zip(self.widths, self.attention), (self.widths[-1], True)]:
                if a and w % self.head_channels:
                    raise ValueError(f"width {w} has attention (MONAI's UNet always has it at the last width) and is "
                                     f"not a multiple of head_channels {self.head_channels}")
            if self.sampling_steps > self.train_timesteps:
                raise ValueError(f"sampling_steps {self.sampling_steps} exceeds train_timesteps {self.train_timesteps}")
            low, high = self.guidance_interval
            if not 0 <= low < high <= 1:
                raise ValueError(f"guidance_interval {[low, high]} is not two noise levels 0 <= low < high <= 1, "
                                 "e.g. [0, 0.7]")
            if self.objective == "ddpm" and self.sampling_shift != 1:
                raise ValueError("sampling_shift applies to objective rflow only (DDIM steps are evenly spaced): "
                                 "set sampling_shift 1 or objective rflow")
            if self.objective == "ddpm" and self.sampler == "heun":
                raise ValueError("sampler heun applies to objective rflow only (ddpm samples with DDIM): with "
                                 "objective ddpm set sampler euler")
            if self.guidance != 1 and not self.label_dropout:
                raise ValueError("guidance needs the null class that label_dropout trains: with label_dropout 0, "
                                 "set guidance 1")
            return self

    def __init__(self, options: Options | None = None, **kwargs):
        super().__init__(options, **kwargs)
        self._classes: list[str] = []
        self.step = 0
        self.net: torch.nn.Module | None = None
        self.ema_net: torch.nn.Module | None = None

    @property
    def classes(self) -> list[str]:
        return list(self._classes)

    @property
    def steps_done(self) -> int:
        return self.step

    @property
    def total_steps(self) -> int:
        return self.options.iterations

    @property
    def device(self) -> torch.device:
        return accel.resolve_device(self.options.device)

    @property
    def precision(self) -> str:
        # bf16 on this project's CPU, contiguous memory, CPU size: training 1.71x, sampling 1.70x fp32's
        # (docs/benchmarks.md, 2026-12-03)
        return accel.resolve_precision(self.options.precision, self.device)

    @property
    def _memory(self) -> torch.memory_format:
        last = self.options.channels_last
        if last is None:
            last = self.precision == "bf16" and self.device.type == "cuda"
        return torch.channels_last if last else torch.contiguous_format

    def _layout(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=self._memory)

    # -- building -----------------------------------------------------------------------
    def _build(self, n_classes: int) -> None:
        from monai.networks.nets import DiffusionModelUNet

        o = self.options
        self.net = DiffusionModelUNet(
            spatial_dims=2, in_channels=o.channels, out_channels=o.channels, num_res_blocks=o.res_blocks,
            channels=tuple(o.widths), attention_levels=tuple(o.attention), norm_num_groups=o.norm_groups,
            num_head_channels=o.head_channels, num_class_embeds=n_classes + 1,  # the last: the null class
            use_flash_attention=self.device.type == "cuda" if o.flash_attention is None else o.flash_attention,
        )
        self.net.to(self.device, memory_format=self._memory)
        self.ema_net = copy.deepcopy(self.net).eval().requires_grad_(False) if o.ema else None
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=o.lr, weight_decay=0.0, fused=True)  # CPU or CUDA
        self.rng = torch.Generator().manual_seed(0)
        if o.objective == "ddpm":  # the noise schedule's cumulative alphas, once (DDPMScheduler's, linear betas)
            from monai.networks.schedulers import DDPMScheduler

            self._alphas = DDPMScheduler(num_train_timesteps=o.train_timesteps).alphas_cumprod.to(self.device)

    def _lr(self) -> float:
        o = self.options
        return o.lr * min(1.0, (self.step + 1) / o.warmup) if o.warmup else o.lr

    # -- training -----------------------------------------------------------------------
    def fit(self, train: augkit.LabeledImages, *, seed: int = 0) -> Iterator[dict[str, float]]:
        o = self.options
        expected = (o.channels, o.image_size, o.image_size)
        if tuple(train.images.shape[1:]) != expected:
            raise ValueError(f"diffusion expects images of shape {expected}, got {tuple(train.images.shape[1:])}: "
                             "set generator.options.image_size and channels to the recipe's")
        here = distributed.world()
        if here.size > 1:
            self.check_distributed(here.size)
        if self.net is None:
            torch.manual_seed(seed)  # the UNet's initial weights
            self._classes = list(train.classes)
            self._build(len(self._classes))
            self.rng.manual_seed(seed)
        net, dev, rng = self.net, self.device, self.rng
        if here.size > 1:
            net = distributed.ddp(net, dev, sync_buffers=False)  # group norm: no buffers to share
        if o.compile:
            net = torch.compile(net)
        n_classes = len(self._classes)
        images, labels = train.images.to(dev), train.labels
        counts = torch.bincount(labels, minlength=n_classes).clamp_min(1).float()
        weights = (1.0 / counts)[labels] if o.balanced_batches else torch.ones(len(labels))
        # every rank draws the whole global batch from the same stream and keeps its own slice
        mine = slice(here.rank * (o.batch_size // here.size), (here.rank + 1) * (o.batch_size // here.size))
        net.train()
        started, since = time.perf_counter(), self.step
        while self.step < o.iterations:
            idx = torch.multinomial(weights, o.batch_size, replacement=True, generator=rng)
            noise = torch.randn(o.batch_size, *expected, generator=rng)
            if o.objective == "ddpm":
                t = torch.randint(0, o.train_timesteps, (o.batch_size,), generator=rng).float()
            elif o.noise_levels == "uniform":  # rflow's noise levels in (0, T)
                t = torch.rand(o.batch_size, generator=rng) * o.train_timesteps
            else:
                t = torch.sigmoid(torch.randn(o.batch_size, generator=rng)) * o.train_timesteps
            drop = torch.rand(o.batch_size, generator=rng) < o.label_dropout
            flip = torch.rand(o.batch_size, generator=rng) < 0.5 if o.flip else None
            idx, noise, t, drop = idx[mine], noise[mine], t[mine], drop[mine]
            x0 = images[idx.to(dev)]
            if flip is not None:
                x0 = torch.where(flip[mine].to(dev).view(-1, 1, 1, 1), x0.flip(-1), x0)
            y = torch.where(drop, torch.full_like(labels[idx], n_classes), labels[idx]).to(dev)
            noise, t = noise.to(dev), t.to(dev)
            noisy, target = self._noised(x0, noise, t)
            with accel.autocast(dev, self.precision):
                out = net(self._layout(noisy), timesteps=self._timesteps(t), class_labels=y)
            loss = F.mse_loss(out.float(), target)
            for group in self.opt.param_groups:
                group["lr"] = self._lr()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if o.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), o.grad_clip)
            self.opt.step()
            if self.ema_net is not None:
                decay = min(o.ema, (1 + self.step) / (10 + self.step))
                with torch.no_grad():  # one fused call: on a GPU a kernel per tensor costs more than the sums
                    torch._foreach_lerp_(list(self.ema_net.parameters()), list(self.net.parameters()), 1.0 - decay)
            self.step += 1
            row: dict[str, float] = {"step": self.step}
            if self.step % o.log_every == 0 or self.step == o.iterations:
                row["loss"] = distributed.all_reduce_mean(loss.detach().float().reshape(1)).item()
                row["sec_per_iter"] = (time.perf_counter() - started) / (self.step - since)
                started, since = time.perf_counter(), self.step
            yield row

    def _noised(self, x0: Tensor, noise: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """(the noised images at levels ``t``, what the UNet must predict)."""
        o = self.options
        if o.objective == "rflow":
            s = (t / o.train_timesteps).view(-1, 1, 1, 1)
            return (1 - s) * x0 + s * noise, x0 - noise  # MONAI's RFlowScheduler.add_noise; its velocity
        alphas = self._alphas[t.long()].view(-1, 1, 1, 1)
        return alphas.sqrt() * x0 + (1 - alphas).sqrt() * noise, noise  # DDPMScheduler.add_noise

    def _timesteps(self, t: Tensor) -> Tensor:
        return t if self.options.objective == "rflow" else t.long()

    def check_distributed(self, world_size: int) -> None:
        o = self.options
        if o.batch_size % world_size:
            raise distributed.DistributedError(
                f"generator.options.batch_size {o.batch_size} is not divisible by the {world_size} processes: "
                f"batch_size is the global batch, split evenly over the processes (docs/distributed.md)")
        if o.compile:
            raise distributed.DistributedError("generator.options.compile: true is not supported in a distributed "
                                               "run; set it to false")

    # -- sampling -----------------------------------------------------------------------
    @torch.inference_mode()
    def sample(self, labels: Tensor, *, seed: int) -> Tensor:
        if self.net is None:
            raise RuntimeError("diffusion: fit() or load() a checkpoint before sampling")
        o = self.options
        net = self.ema_net if self.ema_net is not None else self.net
        was_training = net.training
        net.eval()
        rng = torch.Generator().manual_seed(seed)  # on the CPU: the same noise on every device
        noise = torch.randn(len(labels), o.channels, o.image_size, o.image_size, generator=rng)
        labels = labels.long()
        # on a CPU a pass over many images at once leaves the caches: 16 at a time is faster than 64
        batch = o.sample_batch or (64 if self.device.type == "cuda" else 16)
        try:
            out = [self._denoise(net, noise[i:i + batch].to(self.device), labels[i:i + batch].to(self.device))
                   for i in range(0, len(labels), batch)]
        finally:
            net.train(was_training)
        return torch.cat(out).float().clamp(-1, 1).cpu().contiguous() if out else noise.clamp(-1, 1)

    def _denoise(self, net: torch.nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """``sampling_steps`` deterministic steps from noise ``x`` to images of classes ``y``."""
        from monai.networks.schedulers import DDIMScheduler, RFlowScheduler

        o = self.options
        if o.objective == "rflow":
            # MONAI's transform shifts by (image / base size) ** (1 / 2) (set_timesteps leaves its transform_scale
            # out): a base of image / shift ** 2 shifts by the option
            numel = o.image_size ** 2
            scheduler = RFlowScheduler(num_train_timesteps=o.train_timesteps, use_discrete_timesteps=True,
                                       use_timestep_transform=o.sampling_shift != 1,
                                       base_img_size_numel=numel / o.sampling_shift ** 2, spatial_dim=2)
            scheduler.set_timesteps(o.sampling_steps, device=x.device, input_img_size_numel=numel)
        else:
            scheduler = DDIMScheduler(num_train_timesteps=o.train_timesteps, clip_sample=True)
            scheduler.set_timesteps(o.sampling_steps, device=x.device)
            # DDIMScheduler.step goes from t to t - T // steps; its own timesteps (a rounded linspace) do not
            # fall on those levels, so the UNet would be told the wrong noise level: T-1, T-1-T//steps, ...
            gap = o.train_timesteps // o.sampling_steps
            scheduler.timesteps = (o.train_timesteps - 1) - gap * torch.arange(o.sampling_steps, device=x.device)
        times = [float(t) for t in scheduler.timesteps]
        null = torch.full_like(y, len(self._classes))
        for i, t in enumerate(times):
            v = self._predict(net, x, t, y, null)
            if o.objective == "rflow":  # a step from t to the next level (0 after the last)
                after = times[i + 1] if i + 1 < len(times) else 0
                guess, _ = scheduler.step(v, t, x, after)
                if o.sampler != "euler" and after > 0:  # Heun: the step again with the mean of both velocities
                    guess, _ = scheduler.step((v + self._predict(net, guess, after, y, null)) / 2, t, x, after)
                x = guess
            else:
                x, _ = scheduler.step(v, int(t), x)
        return x

    def _predict(self, net: torch.nn.Module, x: Tensor, t: float, y: Tensor, null: Tensor) -> Tensor:
        o = self.options
        low, high = o.guidance_interval
        guided = o.guidance != 1.0 and low <= t / o.train_timesteps <= high
        xs, ys = (torch.cat([x, x]), torch.cat([y, null])) if guided else (x, y)
        ts = torch.full((len(xs),), t, device=x.device)
        with accel.autocast(x.device, self.precision):
            out = net(self._layout(xs), timesteps=self._timesteps(ts), class_labels=ys).float()
        if not guided:
            return out
        cond, uncond = out.chunk(2)
        return uncond + o.guidance * (cond - uncond)

    # -- checkpoints --------------------------------------------------------------------
    def save(self, path: Path) -> None:
        atomic_save(
            {
                "format": FORMAT,
                "options": self.options.model_dump(mode="json"),
                "classes": self._classes,
                "step": self.step,
                "net": self.net.state_dict(),
                "ema": None if self.ema_net is None else self.ema_net.state_dict(),
                "opt": self.opt.state_dict(),
                "rng": self.rng.get_state(),
            },
            path,
        )

    @classmethod
    def load(cls, path: Path, **overrides: Any) -> Diffusion:
        """Restore a checkpoint; ``overrides`` may change training or sampling options (``iterations``,
        ``sampling_steps``, ``guidance`` ...), not the network or its noise schedule."""
        blob = torch.load(path, weights_only=True, map_location="cpu")
        if blob.get("format") != FORMAT:
            raise ValueError(f"{path} is not an augkit diffusion checkpoint (format {FORMAT})")
        cls.refuse_fixed(path, blob["options"], overrides, FIXED)
        # saved before the sampler option (2026-12-07): the checkpoint was selected and sampled with Euler steps,
        # and keeps drawing the same images unless told otherwise
        saved = {"sampler": "euler", **blob["options"]}
        self = cls(cls.Options.model_validate({**saved, **overrides}))
        self._classes = blob["classes"]
        self._build(len(self._classes))
        self.net.load_state_dict(blob["net"])
        if self.ema_net is not None:
            self.ema_net.load_state_dict(blob["ema"])
        self.opt.load_state_dict(blob["opt"])
        self.rng.set_state(blob["rng"])
        self.step = blob["step"]
        return self
