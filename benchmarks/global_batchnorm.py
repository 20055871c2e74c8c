"""What global batch norm costs in computation alone: EfficientNetV2 training steps, plain vs synchronised.

    python benchmarks/global_batchnorm.py [--size 112] [--batch 16] [--threads 1]

Baseline: the plain network (timm's BatchNormAct2d, torch's fused kernels). Against it, side by
side in this process: the same network after ``augkit.compute.sync_batchnorm.synchronise``, run as
one rank of two over a process group of one (its all-reduces then return their input), so the
difference is the synchronised layer's own computation, without communication. Also checks
that the two give the same loss and gradients in fp32.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

import augkit.compute.sync_batchnorm as SB
from augkit.compute import distributed

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--size", type=int, default=112)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--variant", default="tf_efficientnetv2_b0")
parser.add_argument("--steps", type=int, default=7, help="timed steps per network and precision (median)")


def main() -> None:
    args = parser.parse_args()
    from augkit_plugins.efficientnetv2 import EfficientNetV2

    torch.set_num_threads(args.threads)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(distributed.free_port()))
    dist.init_process_group("gloo", rank=0, world_size=1)
    SB.distributed = type("TwoRanks", (), {"world": staticmethod(lambda: distributed.World(0, 2))})

    net = EfficientNetV2(variant=args.variant, image_size=args.size, drop_rate=0.0)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, args.size, args.size, generator=g).contiguous(memory_format=torch.channels_last)
    y = torch.randint(3, (args.batch,), generator=g)
    torch.manual_seed(0)
    plain = net._create(3).train()
    synced = SB.synchronise(copy.deepcopy(plain), torch.device("cpu"))

    def step(model, precision):
        with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    losses, grads = [], []
    for model in (plain, synced):
        model = copy.deepcopy(model)
        losses.append(step(model, "fp32").item())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    print(f"fp32 check: loss plain {losses[0]:.6f}, synchronised {losses[1]:.6f}; largest gradient difference "
          f"{(grads[0] - grads[1]).abs().max().item():.1e} (largest gradient {grads[0].abs().max().item():.1e})")
    print(f"{args.variant}, {args.size} px, batch {args.batch}, {args.threads} thread(s): seconds per training step")
    print(f"{'':6} {'plain':>8} {'global':>8} {'ratio':>7}")
    for precision in ("fp32", "bf16"):
        times = {}
        for name, model in (("plain", plain), ("global", synced)):
            step(model, precision)  # warm-up
            spent = []
            for _ in range(args.steps):
                started = time.perf_counter()
                step(model, precision)
                spent.append(time.perf_counter() - started)
            times[name] = statistics.median(spent)
        print(f"{precision:6} {times['plain']:8.3f} {times['global']:8.3f} {times['global'] / times['plain']:6.2f}x")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
