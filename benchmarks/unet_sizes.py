"""Diffusion UNet sizes on this machine: training step and sampling time against the CPU size, side by side.

    python benchmarks/unet_sizes.py [--size 56] [--batch 16] [--images 16] [--steps 20] [--repeats 3]

Baseline: the plugin's CPU size (``widths: [16, 32, 64, 64]``, attention at the last level, one
residual block a level), the quickstart's network. Each candidate is the same plugin with
other ``widths`` (and ``norm_groups`` where a width is below 16), trained with its own ``fit``
(AdamW, EMA, clipping: a real step) and sampled with its own ``sample`` (8 Heun steps,
guidance 2: the quickstart's). Networks alternate within each repeat; the best repeat of each
counts. Prints seconds a training step and a sampled image, and each ratio to the baseline.
docs/generators.md ("A smaller network for the 5-minute budget") weighs what the smaller
networks cost in images.
"""

from __future__ import annotations

import argparse
import time

import torch

import augkit
from augkit_plugins.diffusion import Diffusion

SIZES = {  # name: (widths, norm_groups)
    "cpu (baseline)": ([16, 32, 64, 64], 16),
    "16-16-32-64": ([16, 16, 32, 64], 16),
    "8-16-32-64": ([8, 16, 32, 64], 8),
}

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--size", type=int, default=56)
parser.add_argument("--batch", type=int, default=16, help="training batch (the quickstart's)")
parser.add_argument("--images", type=int, default=16, help="images sampled")
parser.add_argument("--steps", type=int, default=20, help="training steps timed (after 3 untimed)")
parser.add_argument("--repeats", type=int, default=3)
args = parser.parse_args()

g = torch.Generator().manual_seed(0)
n_classes = 3
data = augkit.LabeledImages(torch.rand(64, 1, args.size, args.size, generator=g) * 2 - 1,
                            torch.arange(64) % n_classes, [f"c{i}" for i in range(n_classes)])


def timed(widths: list[int], groups: int) -> tuple[float, float]:
    model = Diffusion(image_size=args.size, widths=widths, norm_groups=groups, batch_size=args.batch,
                      iterations=3 + args.steps, log_every=10_000, sampler="heun", sampling_steps=8, precision="fp32")
    start = 0.0
    for row in model.fit(data, seed=0):
        if row["step"] == 3:
            start = time.perf_counter()
    train = (time.perf_counter() - start) / args.steps
    labels = torch.arange(args.images) % n_classes
    model.sample(labels, seed=0)  # warm
    start = time.perf_counter()
    model.sample(labels, seed=1)
    return train, (time.perf_counter() - start) / args.images


print(f"{torch.get_num_threads()} threads, {args.size} px, batch {args.batch}, {args.images} images sampled "
      "(8 Heun steps, guidance 2), fp32", flush=True)
best: dict[str, tuple[float, float]] = {}
for _ in range(args.repeats):
    for name, (widths, groups) in SIZES.items():
        t = timed(widths, groups)
        best[name] = tuple(min(a, b) for a, b in zip(best.get(name, t), t))
base_train, base_sample = best["cpu (baseline)"]
for name, (train, sample) in best.items():
    print(f"{name:16s} {train:.3f} s/step ({train / base_train:.2f}x the baseline's time), "
          f"{sample:.3f} s/image sampled ({sample / base_sample:.2f}x)", flush=True)
