"""Does the diffusion UNet's training step use both cores well? One thread against two, side by side.

    python benchmarks/unet_threads.py [--size 56] [--batch 16] [--steps 20] [--repeats 2]

Baseline: the plugin's CPU-size UNet (the quickstart's network) training on all of torch's threads (2 on this
project's machines). Candidate: the same on 1 thread, as it would run beside another job (e.g. the study's
real-only trainings, which need no generator, started beside the generator's training). Each repeat times both,
alternated, with the plugin's own ``fit`` (AdamW, EMA, clipping: a real step) after 3 untimed steps; the best repeat
of each counts. Prints seconds a step and the speed-up of 2 threads over 1: at 2x the cores are used fully and
running two one-thread jobs side by side gains nothing; below it, side by side would gain the difference.
"""

from __future__ import annotations

import argparse
import time

import torch

import augkit
from augkit_plugins.diffusion import Diffusion

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--size", type=int, default=56)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--steps", type=int, default=20, help="training steps timed (after 3 untimed)")
parser.add_argument("--repeats", type=int, default=2)
args = parser.parse_args()

all_threads = torch.get_num_threads()
g = torch.Generator().manual_seed(0)
data = augkit.LabeledImages(torch.rand(64, 1, args.size, args.size, generator=g) * 2 - 1, torch.arange(64) % 3,
                            ["a", "b", "c"])


def step_time(threads: int) -> float:
    torch.set_num_threads(threads)
    model = Diffusion(image_size=args.size, batch_size=args.batch, iterations=3 + args.steps, log_every=10_000,
                      precision="fp32")
    start = 0.0
    for row in model.fit(data, seed=0):
        if row["step"] == 3:
            start = time.perf_counter()
    return (time.perf_counter() - start) / args.steps


print(f"{args.size} px, batch {args.batch}, fp32, the CPU-size UNet; baseline {all_threads} threads", flush=True)
best = {all_threads: float("inf"), 1: float("inf")}
for _ in range(args.repeats):
    for threads in (all_threads, 1):
        best[threads] = min(best[threads], step_time(threads))
print(f"{all_threads} threads (baseline): {best[all_threads]:.3f} s/step")
print(f"1 thread: {best[1]:.3f} s/step; {all_threads} threads are {best[1] / best[all_threads]:.2f}x as fast "
      f"(at {all_threads:.0f}x the cores are used fully)")
