"""EfficientNetV2 (timm) as the paper's evaluator: trained from scratch unless given local weights."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import Tensor
from torch.utils.data import DistributedSampler

import augkit
from augkit.compute import accel
from augkit.compute import distributed

from .small_convs import use_small_map_convs


class EfficientNetV2(augkit.Classifier):
    """timm's EfficientNetV2 with AdamW, a cosine schedule and early stopping on validation loss from ``min_epochs``."""

    supports_distributed = True  # fit() trains with DDP when the study asks for it (docs/distributed.md)

    class Options(augkit.Classifier.Options):
        variant: str = Field(
            "tf_efficientnetv2_b0",
            description="timm model name: tf_efficientnetv2_b0 (CPU), _s / _m (GPU); test_efficientnet for tests",
        )
        width: float = Field(
            1.0, gt=0, le=2, description="channel multiplier of every stage (timm's channel_multiplier): 1 is the "
            "variant itself; 0.5 trains 1.6-2.5x faster on a CPU but lost 9-13 accuracy points at 56 px (docs/benchmarks.md). "
            "Weights files only fit width 1")
        channels: Literal[1, 3] = Field(1, description="input channels")
        image_size: int = Field(112, ge=8, description="input side (informational; the networks are size-agnostic)")
        weights: Path | None = Field(None, description="optional local weights file; nothing is downloaded")
        epochs: int = Field(30, ge=1, description="maximum epochs")
        patience: int = Field(8, ge=1, description="epochs without validation-loss improvement before stopping")
        min_epochs: int = Field(
            10, ge=1, description="early stopping starts here: no stop before, and no earlier epoch's weights kept "
            "(from scratch, early validation losses are noise: a model answering the class shares can score best)"
        )
        batch_size: int = Field(32, ge=2)
        lr: float = Field(1e-3, gt=0, description="AdamW learning rate (cosine-decayed over epochs)")
        weight_decay: float = Field(0.01, ge=0)
        drop_rate: float = Field(0.2, ge=0, lt=1, description="dropout before the classifier head")
        augment: bool = Field(
            True, description="small random shifts, rotations (+-10 degrees) and intensity jitter during training"
        )
        class_weighting: bool = Field(
            False, description="weight the loss by inverse class frequency, so a scarce class counts as much"
        )
        hflip: bool = Field(
            False, description="random horizontal flips; off by default because left/right carries anatomy (heart side)"
        )
        sync_batchnorm: bool = Field(
            True, description="under torchrun with evaluation.distribute ddp: batch norm over the global batch (as "
            "one process computes it) rather than each process's share; off: faster, noisier with few images per process"
        )
        precision: accel.Precision = Field(
            "auto", description="bf16 autocast or fp32 (channels-last memory either way); auto: bf16 on a GPU with "
            "bf16, and on a bf16 CPU from 96 px up (at 56 px fp32 was faster)"
        )
        device: accel.Device = Field("auto", description="auto: the GPU if there is one")
        small_map_convs: bool = Field(
            True, description="on a CPU, 1x1 convolutions on maps up to 14x14 as matrix products and depthwise ones "
            "on 2x2 and smaller as sums, where oneDNN is slow: training 1.3-1.4x faster at 56 px, 1.05x at 112 "
            "(docs/benchmarks.md); the same function, other rounding")

        @field_validator("variant")
        @classmethod
        def _known(cls, v: str) -> str:
            import timm  # imported when needed: listing plugins stays fast

            known = timm.list_models("*efficientnet*")
            if v not in known:
                close = [m for m in known if "efficientnetv2" in m or m.startswith("test_")]
                raise ValueError(f"unknown timm model {v!r}; EfficientNet variants include: {', '.join(close)}")
            return v

        @model_validator(mode="before")
        @classmethod
        def _epochs(cls, data):
            if isinstance(data, dict) and "epochs" in data and "min_epochs" not in data:
                data = {**data, "min_epochs": min(10, data["epochs"])}  # a short run: the default gives way
            return data

        @model_validator(mode="after")
        def _check_epochs(self):
            if self.min_epochs > self.epochs:
                raise ValueError(f"min_epochs ({self.min_epochs}) is more than epochs ({self.epochs})")
            return self

        @model_validator(mode="after")
        def _check_width(self):
            if self.weights is not None and self.width != 1:
                raise ValueError(f"width {self.width:g} with a weights file: the weights fit the variant at width 1; "
                                 "set width: 1 or leave weights empty")
            return self

        @field_validator("weights")
        @classmethod
        def _exists(cls, v: Path | None) -> Path | None:
            if v is not None and not Path(v).is_file():
                raise ValueError(f"weights file {v} does not exist; give a local .pth/.safetensors file or leave it empty")
            return v

    def __init__(self, options: Options | None = None, **kwargs):
        super().__init__(options, **kwargs)
        self.model: torch.nn.Module | None = None

    @property
    def device(self) -> torch.device:
        return accel.resolve_device(self.options.device)

    @property
    def precision(self) -> str:
        # measured on this project's CPU, training images/s at batch 32 (channels-last):
        # 56 px fp32 343 vs bf16 276; 112 px fp32 145 vs bf16 177
        return accel.resolve_precision(self.options.precision, self.device,
                                       cpu_bf16_pays=self.options.image_size >= 96)

    def _input(self, x: Tensor) -> Tensor:
        return x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)

    def _create(self, n_classes: int) -> torch.nn.Module:
        import timm

        o = self.options
        model = timm.create_model(
            o.variant, pretrained=False, num_classes=n_classes, in_chans=o.channels, drop_rate=o.drop_rate,
            **({} if o.width == 1 else {"channel_multiplier": o.width}),
        )
        # timm's EfficientNet head init scales as 1/sqrt(classes): made for 1,000 classes, it
        # gives a 2- or 3-class head logits so large that the first epochs are wasted
        head = model.get_classifier()
        torch.nn.init.normal_(head.weight, std=0.01)
        torch.nn.init.zeros_(head.bias)
        if o.weights is not None:
            state = _read_weights(o.weights)
            own = model.state_dict()
            # the head differs in class count; take every tensor whose shape matches
            usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
            if not usable:
                raise ValueError(f"{o.weights}: no tensor matches {o.variant}; is it a weights file for this variant?")
            model.load_state_dict(usable, strict=False)
        if o.small_map_convs:
            use_small_map_convs(model)
        return model.to(self.device, memory_format=torch.channels_last)  # 1.3-1.5x faster on CPU, both precisions

    @property
    def total_epochs(self) -> int:  # fit may stop earlier
        return self.options.epochs

    def budget_steps(self, n_images: int) -> int:
        return self.options.epochs * max(n_images // self.options.batch_size, 1)

    def fit(self, train: augkit.LabeledImages, val: augkit.LabeledImages, *, seed: int = 0, steps: int | None = None
            ) -> Iterator[dict[str, float]]:
        """Train; under several processes (``distributed.world()``), one model with DDP over all of them.

        ``epochs`` rounds of validation (early stopping counts them, as epochs): a round is an epoch
        over ``train``, or with ``steps`` (an equal step budget, ``budget_steps``) ``steps / epochs``
        optimizer steps, the batches running on through successive shuffles of ``train``. The round
        with the lowest validation loss from ``min_epochs`` on is kept; ``patience`` rounds without a
        lower one after it stop training.

        Each epoch's order comes from torch's ``DistributedSampler`` (one replica in one process),
        and ``batch_size`` is the global batch: rank r takes ``batch_size / N`` images a step from
        its share of the epoch's permutation, which are rows r, r + N, ... of the batch one
        process takes at that step, and applies those rows of the augmentation drawn for the
        whole batch: together the ranks see the batches one process sees. Validation is shared
        out too, and its loss summed over ranks, so every rank takes the same early-stopping
        decisions.
        """
        o = self.options
        here = distributed.world()
        if here.size > 1:
            self.check_distributed(here.size)
        torch.manual_seed(seed)
        rng = torch.Generator().manual_seed(seed)
        model = self.model = self._create(len(train.classes))
        net = model if here.size == 1 else self._distribute(model, seed, here)
        # one fused kernel for every parameter: a tenth of a 56 px CPU training step saved (docs/benchmarks.md)
        opt = torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay, fused=True)
        steps_per_epoch = max(len(train) // o.batch_size, 1)
        per_round = steps_per_epoch if steps is None else max(steps // o.epochs, 1)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=o.epochs * per_round)
        best, best_state, waited = math.inf, copy.deepcopy(model.state_dict()), 0
        weight = None
        if o.class_weighting:
            counts = torch.bincount(train.labels, minlength=len(train.classes)).clamp_min(1).float()
            weight = (counts.sum() / (len(counts) * counts)).to(self.device)
        autocast = accel.autocast(self.device, self.precision)
        share = o.batch_size // here.size  # images per rank and step
        # seeds apart by more than any epoch count: seed s at epoch e never shuffles as seed s + 1 at e - 1
        sampler = DistributedSampler(range(len(train)), num_replicas=here.size, rank=here.rank, shuffle=True,
                                     seed=seed * 100_003)
        batches = _batches(sampler, share, steps_per_epoch)
        for epoch in range(1, o.epochs + 1):
            model.train()
            total = torch.zeros(2, dtype=torch.float64)  # loss sum, images
            for _ in range(per_round):
                idx = next(batches)
                x, y = train.images[idx], train.labels[idx]
                if o.augment:  # this rank's rows of the global batch (smaller than batch_size on tiny data)
                    n = len(idx) * here.size
                    x = _augment(x, rng, o.hflip, rows=slice(here.rank, n, here.size), n=n)
                y = y.to(self.device)
                with autocast:
                    logits = net(self._input(x))
                    if weight is not None and here.size > 1:
                        # the global batch's weighted mean: sum(w l) over every rank / sum(w) over every
                        # rank, times N because DDP averages the ranks' gradients
                        total_weight = distributed.all_reduce_sum(weight[y].sum())
                        loss = F.cross_entropy(logits, y, weight=weight, reduction="sum") * here.size / total_weight
                    else:
                        loss = F.cross_entropy(logits, y, weight=weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += torch.tensor([loss.item() * len(y), len(y)], dtype=torch.float64)
            total = distributed.all_reduce_sum(total)
            if here.size > 1 and not o.sync_batchnorm:
                # per-process batch norm: each rank's last forward pass updated its own running
                # statistics; every rank validates and keeps rank 0's
                for buffer in model.buffers():
                    torch.distributed.broadcast(buffer, 0)
            val_loss, val_acc = self._evaluate(val)
            # from scratch, early validation losses are noise: a model that still answers the class
            # shares scores lower than one that has begun to learn, and keeping it would measure the
            # shares (Keras' EarlyStopping(start_from_epoch=...)): rounds before min_epochs are not candidates
            if epoch < o.min_epochs:
                pass
            elif val_loss < best - 1e-4:
                best, best_state, waited = val_loss, copy.deepcopy(model.state_dict()), 0
            else:
                waited += 1
            yield {"step": epoch, "optimizer_steps": epoch * per_round,
                   "train_loss": float(total[0] / total[1].clamp_min(1)), "val_loss": val_loss, "val_acc": val_acc}
            if waited >= o.patience and epoch >= o.min_epochs:
                break
        model.load_state_dict(best_state)  # the paper's early stopping: keep the best epoch

    def check_distributed(self, world_size: int) -> None:
        if self.options.batch_size % world_size:
            raise distributed.DistributedError(
                f"classifier.options.batch_size {self.options.batch_size} is not divisible by the {world_size} "
                "processes: batch_size is the global batch, split evenly over the processes (docs/distributed.md); "
                "or set evaluation.distribute: jobs (each process trains whole classifiers)")
        backend = torch.distributed.get_backend() if distributed.world().size > 1 else None
        if backend is not None and (self.device.type == "cuda") != (backend == "nccl"):
            raise distributed.DistributedError(
                f"the classifier trains on {self.device.type} but the processes joined with {backend} (the generator "
                f"trains on {'cuda' if backend == 'nccl' else 'the CPU'}): put both on the same device "
                "(classifier.options.device, generator.options.device), or set evaluation.distribute: jobs")

    def _distribute(self, model: torch.nn.Module, seed: int, here: distributed.World) -> torch.nn.Module:
        """``model`` wrapped in DDP (gradients averaged over ranks), with global batch norm if asked for."""
        if self.options.sync_batchnorm:
            from timm.layers import BatchNormAct2d

            from augkit.compute.sync_batchnorm import synchronise

            # timm's fused norm: the batch norm, then its dropout and activation
            synchronise(model, self.device, after={BatchNormAct2d: ("drop", "act")})
        # synchronised batch norm leaves the same running statistics on every rank; without it,
        # DDP gives every rank rank 0's before each forward pass
        net = distributed.ddp(model, self.device, sync_buffers=not self.options.sync_batchnorm)
        torch.manual_seed(seed * 65_536 + here.rank)  # dropout: other masks on every rank, fixed by (seed, rank)
        return net

    @torch.inference_mode()
    def _evaluate(self, data: augkit.LabeledImages) -> tuple[float, float]:
        """Loss and accuracy on ``data``: each rank scores its share, the sums are added over ranks."""
        here = distributed.world()
        images, labels = data.images[here.rank :: here.size], data.labels[here.rank :: here.size]  # views, no copy
        sums = torch.zeros(3, dtype=torch.float64)  # loss, correct, images (a rank may have none)
        if len(labels):
            probs = self.predict_proba(images)
            sums = torch.stack([F.nll_loss(torch.log(probs.clamp_min(1e-12)), labels, reduction="sum").double(),
                                (probs.argmax(1) == labels).sum().double(), torch.tensor(len(labels), dtype=torch.float64)])
        loss, correct, n = distributed.all_reduce_sum(sums).tolist()
        return loss / max(n, 1), correct / max(n, 1)

    @torch.inference_mode()
    def predict_proba(self, images: Tensor) -> Tensor:
        if self.model is None:
            raise RuntimeError("efficientnetv2: fit() before predicting")
        self.model.eval()
        with accel.autocast(self.device, self.precision):
            out = [self.model(self._input(images[i : i + 256])).float().softmax(1).cpu() for i in range(0, len(images), 256)]
        return torch.cat(out)

    @torch.inference_mode()
    def features(self, images: Tensor) -> Tensor:
        """The pooled penultimate features (timm's ``forward_head(pre_logits=True)``)."""
        if self.model is None:
            raise RuntimeError("efficientnetv2: fit() before computing features")
        self.model.eval()
        m = self.model
        with accel.autocast(self.device, self.precision):
            out = [m.forward_head(m.forward_features(self._input(images[i : i + 256])), pre_logits=True).float().cpu()
                   for i in range(0, len(images), 256)]
        return torch.cat(out)


def _augment(x: Tensor, rng: torch.Generator, hflip: bool, rows: slice = slice(None), n: int | None = None) -> Tensor:
    """Rotations of +-10 degrees, shifts of up to 1/16 of the side, +-10% contrast and brightness,
    optional flips; seeded.

    ``x`` holds ``rows`` of a batch of ``n`` images (default: all of them): the parameters are
    drawn for the whole batch, so each rank of several applies what one process would.
    """
    n = len(x) if n is None else n
    angle = (2 * torch.rand(n, generator=rng) - 1)[rows] * math.pi / 18
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros(len(x))
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x + 1, grid, padding_mode="zeros", align_corners=False) - 1  # the background stays -1
    if hflip:
        flip = (torch.rand(n, generator=rng) < 0.5)[rows]
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    gain = 1 + 0.1 * (2 * torch.rand(n, 1, 1, 1, generator=rng) - 1)[rows]
    bias = 0.1 * (2 * torch.rand(n, 1, 1, 1, generator=rng) - 1)[rows]
    x = (x * gain + bias).clamp(-1, 1)
    pad = max(x.shape[-1] // 16, 1)
    dx, dy = (int(v) for v in torch.randint(-pad, pad + 1, (2,), generator=rng))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def _batches(sampler: DistributedSampler, share: int, per_shuffle: int) -> Iterator[Tensor]:
    """This rank's index batches, ``per_shuffle`` from each shuffle of the training set (epoch 1, 2, ...):
    full batches only, since batch norm needs more than one image."""
    shuffle = 0
    while True:
        shuffle += 1
        sampler.set_epoch(shuffle)
        order = torch.tensor(list(sampler), dtype=torch.long)
        for i in range(per_shuffle):
            yield order[i * share : (i + 1) * share]


def _read_weights(path: Path) -> dict[str, Tensor]:
    if Path(path).suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state
