"""Diffusion speed: augkit's `diffusion` plugin against a plain MONAI-tutorial loop of the same UNet.

    python benchmarks/diffusion_speed.py [--size 56] [--batch 32] [--images 16] [--steps 20] [--sampler euler]
                                         [--sampling-steps 25]
                                         [--widths 32 64 64] [--attention 0 0 1] [--device auto]

Baseline (MONAI's 2D DDPM tutorial, class-conditional): `DiffusionModelUNet`, `DDPMScheduler`
(1,000 steps), eager fp32, Adam; a training step is `add_noise`, one forward, MSE on the noise,
backward, step; sampling runs all 1,000 `scheduler.step`s, one network pass each.

augkit: the plugin's own `fit` and `sample` with its defaults (rectified flow, fused AdamW,
EMA, gradient clipping; by default 25 Euler steps with classifier-free guidance, two passes per
step: the sampling default until 2026-12-07, kept so that the figures in docs/benchmarks.md stay
comparable; the default since, ``--sampler heun --sampling-steps 16``, makes 31 steps' passes),
in fp32 and, where the device has it, in bf16 (what `auto` picks; channels-last memory on a GPU
only) and in bf16 with channels-last memory forced (the plugin's layout on a CPU before
2026-12-03: there bf16 group norm on channels-last tensors is the slow path); on a CPU, also in fp32
with torch's fused attention kernel forced (`flash_attention: true`, the default on a GPU only).

Same network, same batch, same process, one after the other; prints s/step, images/s and the
ratios. `--baseline-steps N` times N of the baseline's 1,000 sampling steps and scales up (every
step is the same network pass), for a slow device.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import augkit
from augkit.compute import accel
from augkit_plugins.diffusion import Diffusion

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--size", type=int, default=56)
parser.add_argument("--channels", type=int, default=1)
parser.add_argument("--batch", type=int, default=32, help="training batch")
parser.add_argument("--images", type=int, default=16, help="images sampled")
parser.add_argument("--steps", type=int, default=20, help="training steps timed (after 3 untimed)")
parser.add_argument("--sampler", default="euler", choices=["euler", "heun"], help="the plugin's sampler")
parser.add_argument("--sampling-steps", type=int, default=25, help="the plugin's sampling steps")
parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 64])
parser.add_argument("--attention", type=int, nargs="+", default=[0, 0, 0, 1])
parser.add_argument("--res-blocks", type=int, default=1)
parser.add_argument("--baseline-steps", type=int, default=1000, help="of the baseline's 1,000 sampling steps, time these")
parser.add_argument("--device", default="auto")
args = parser.parse_args()

device = accel.resolve_device(args.device)
n_classes = 3
g = torch.Generator().manual_seed(0)
images = torch.rand(256, args.channels, args.size, args.size, generator=g) * 2 - 1
labels = torch.arange(256) % n_classes
data = augkit.LabeledImages(images, labels, ["a", "b", "c"], [f"p{i}" for i in range(256)])
network = dict(widths=args.widths, attention=[bool(a) for a in args.attention], res_blocks=args.res_blocks,
               image_size=args.size, channels=args.channels, batch_size=args.batch, device=args.device)


def sync():
    if device.type == "cuda":
        torch.cuda.synchronize()


def baseline() -> tuple[float, float]:
    """The tutorial loop: (s per training step, images per s sampling 1,000 DDPM steps)."""
    from monai.networks.schedulers import DDPMScheduler

    torch.manual_seed(0)
    # the same UNet the plugin builds, then used bare; MONAI's own attention, as the tutorial has it
    model = Diffusion(**network, precision="fp32", flash_attention=False)
    model._build(n_classes)
    net = model.net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=2.5e-5)
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    x, y = images[: args.batch].to(device), labels[: args.batch].to(device)
    for i in range(3 + args.steps):
        if i == 3:
            sync()
            start = time.perf_counter()
        noise = torch.randn_like(x)
        t = torch.randint(0, 1000, (len(x),), device=device).long()
        pred = net(x=scheduler.add_noise(x, noise, t), timesteps=t, class_labels=y)
        loss = F.mse_loss(pred.float(), noise.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync()
    train = (time.perf_counter() - start) / args.steps
    net.eval()
    scheduler.set_timesteps(1000)
    s = torch.randn(args.images, args.channels, args.size, args.size, device=device)
    ys = (torch.arange(args.images) % n_classes).to(device)
    with torch.no_grad():
        sync()
        start = time.perf_counter()
        for t in scheduler.timesteps[: args.baseline_steps]:
            out = net(x=s, timesteps=torch.full((len(s),), int(t), device=device), class_labels=ys)
            s, _ = scheduler.step(out, int(t), s)
        sync()
    sampled = (time.perf_counter() - start) * 1000 / args.baseline_steps
    return train, args.images / sampled


def plugin(precision: str, channels_last: bool | None = None, flash: bool | None = None) -> tuple[float, float]:
    model = Diffusion(**network, precision=precision, iterations=3 + args.steps, log_every=10_000,
                      channels_last=channels_last, flash_attention=flash, sampler=args.sampler,
                      sampling_steps=args.sampling_steps)
    for row in model.fit(data, seed=0):  # rows without measurements: no .item() sync a step the baseline lacks
        if row["step"] == 3:
            sync()
            start = time.perf_counter()
    sync()
    train = (time.perf_counter() - start) / args.steps
    labels_ = torch.arange(args.images) % n_classes
    model.sample(labels_, seed=0)  # warm, at the timed batch size
    sync()
    start = time.perf_counter()
    model.sample(labels_, seed=1)
    sync()
    return train, args.images / (time.perf_counter() - start)


print(f"{device.type}, {torch.get_num_threads()} threads; UNet widths {args.widths}, attention {args.attention}, "
      f"{args.size} px, batch {args.batch}, {args.images} images sampled", flush=True)
base_train, base_sample = baseline()
print(f"baseline (MONAI tutorial loop, fp32, 1,000 DDPM steps): {base_train:.3f} s/step, {base_sample:.4f} images/s",
      flush=True)
# (precision, channels_last, flash_attention); None: the plugin's default for the device
settings = [("fp32", None, None)] + ([("bf16", None, None), ("bf16", True, None)] if accel.bf16_supported(device) else [])
if device.type == "cpu":  # on a GPU the fused attention kernel is the default already
    settings.append(("fp32", None, True))
for precision, channels_last, flash in settings:
    train, sample = plugin(precision, channels_last, flash)
    layout = ("" if channels_last is None else ", channels-last forced") + ("" if flash is None else ", fused attention")
    print(f"augkit diffusion ({precision}{layout}, {args.sampling_steps} RFlow {args.sampler} steps, guidance 2): {train:.3f} s/step "
          f"({base_train / train:.2f}x), {sample:.3f} images/s ({sample / base_sample:.1f}x)", flush=True)
