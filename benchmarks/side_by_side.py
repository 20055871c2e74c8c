"""Two one-thread trainings side by side against one training on every core (evaluation.workers).

    python benchmarks/side_by_side.py [--size 56] [--batch 16] [--steps 60] [--variant tf_efficientnetv2_b0]

Baseline: one process training EfficientNetV2 (augkit's step: channels-last, fused AdamW) with
as many threads as there are cores, for --steps steps; then as many one-thread processes as
cores, each training the same steps at the same time. Prints training steps per second of
each and the ratio (the study's throughput gain from side-by-side trainings), then the same
for the plain torch step (unfused AdamW) against the fused one in one process.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--size", type=int, default=56)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--steps", type=int, default=60)
parser.add_argument("--variant", default="tf_efficientnetv2_b0")
args = parser.parse_args()


def train(threads: int, fused: bool = True) -> float:
    """Seconds per step of ``args.steps`` steps after 5 warm-up steps."""
    import timm
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = timm.create_model(args.variant, num_classes=3, in_chans=1).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), 1e-3, fused=fused)
    x = torch.randn(args.batch, 1, args.size, args.size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(3, (args.batch,))

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    return (time.perf_counter() - start) / args.steps


if __name__ == "__main__":
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:  # in a fresh process, as a run's own would be
        alone = pool.apply(train, (cores,))
    with context.Pool(cores) as pool:
        each = pool.map(train, [1] * cores)
    together = cores / max(each)  # steps per second of all of them, the slowest setting the pace
    print(f"{args.variant} at {args.size} px, batch {args.batch}, {cores} cores")
    print(f"  one process, {cores} threads:        {1 / alone:6.2f} steps/s")
    print(f"  {cores} processes of 1 thread each:   {together:6.2f} steps/s   ratio {together * alone:.2f}x")
    with context.Pool(1) as pool:
        plain = pool.apply(train, (cores, False))
    print(f"  AdamW unfused vs fused, one process: {1 / plain:6.2f} vs {1 / alone:6.2f} steps/s   "
          f"ratio {plain / alone:.2f}x")
