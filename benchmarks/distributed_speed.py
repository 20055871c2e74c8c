"""Training speed over several processes (torch.distributed, DDP) against one process, side by side.

    python benchmarks/distributed_speed.py [--processes 2] [--size 112] [--device cpu|cuda]

Baseline: one process training the same model on the same global batch, with every core (CPU)
or one GPU. Then N processes started here (``torch.multiprocessing``, as torchrun would:
``RANK``, ``WORLD_SIZE`` ... set, ``augkit.compute.distributed.init``), gloo on CPUs with
``cores // N`` threads each, nccl with one GPU each. Measured for both trainings a run does:

* the AC-GAN (seconds per iteration, median of the timed iterations; the global batch split
  over the processes, global batch norm);
* the EfficientNetV2 classifier as ``evaluation.distribute: ddp`` trains it (images per second
  over the timed epochs, validation included), with batch norm over the global batch
  (``sync_batchnorm``, the default) and per process (in one process the two are the same).

More processes pay only when they bring more hardware (GPUs, machines): on one CPU they share
the same cores and add communication, which this script shows as a ratio below 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from augkit.compute import distributed
from augkit.extension.roles import LabeledImages

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--processes", type=int, default=2)
parser.add_argument("--size", type=int, default=112)
parser.add_argument("--width", type=int, default=512, help="AC-GAN width (the paper's is 1024)")
parser.add_argument("--gan-batch", type=int, default=32)
parser.add_argument("--iterations", type=int, default=6, help="AC-GAN iterations; the first 2 are not timed")
parser.add_argument("--variant", default="tf_efficientnetv2_b0")
parser.add_argument("--images", type=int, default=256, help="classifier training images per epoch")
parser.add_argument("--batch", type=int, default=32, help="classifier global batch")
parser.add_argument("--epochs", type=int, default=3, help="classifier epochs; the first is not timed")
parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def data(args, n: int) -> LabeledImages:
    g = torch.Generator().manual_seed(0)
    return LabeledImages(torch.rand(n, 1, args.size, args.size, generator=g) * 2 - 1,
                         torch.randint(3, (n,), generator=g), ["a", "b", "c"])


def measure(args) -> dict:
    """Both trainings in this process, as it is (one process, or one rank of several)."""
    from augkit_plugins.acgan import ACGAN
    from augkit_plugins.efficientnetv2 import EfficientNetV2

    gan = ACGAN(image_size=args.size, width=args.width, batch_size=args.gan_batch, iterations=args.iterations,
                log_every=1, device=args.device)
    per_iter = [row["sec_per_iter"] for row in gan.fit(data(args, 4 * args.gan_batch), seed=0)][2:]
    out = {"gan_sec_per_iter": statistics.median(per_iter)}
    train, val = data(args, args.images), data(args, args.batch)
    for sync in (True, False):
        net = EfficientNetV2(variant=args.variant, image_size=args.size, epochs=args.epochs, min_epochs=args.epochs,
                             batch_size=args.batch, augment=False, device=args.device, sync_batchnorm=sync)
        stamps = []
        for _ in net.fit(train, val, seed=0):
            if args.device == "cuda":
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())
        images = (len(train) // args.batch) * args.batch * (len(stamps) - 1)
        out[f"classifier_images_per_s_sync_{sync}"] = images / (stamps[-1] - stamps[0])
    return out


def _rank(rank: int, port: int, args, out: str) -> None:
    n = args.processes
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(n),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(n))
    distributed.init(torch.device(args.device))
    result = measure(args)
    if rank == 0:
        Path(out).write_text(json.dumps({**result, "threads": torch.get_num_threads()}))
    distributed.close()
    distributed.exit_now(0)


def main() -> None:
    import torch.multiprocessing as mp

    args = parser.parse_args()
    one = measure(args)
    port = distributed.free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank0.json")
        mp.start_processes(_rank, args=(port, args, out), nprocs=args.processes, start_method="spawn")
        many = json.loads(Path(out).read_text())
    where = (f"{args.device}, {torch.get_num_threads()} threads" if args.device == "cpu"
             else torch.cuda.get_device_name())
    print(f"{args.size} px on {where}; {args.processes} processes"
          + (f" with {many['threads']} threads each" if args.device == "cpu" else ", one GPU each"))
    print(f"{'':38} {'1 process':>12} {f'{args.processes} processes':>14} {'ratio':>7}")
    print(f"{f'AC-GAN s/iteration (width {args.width}, batch {args.gan_batch})':38} "
          f"{one['gan_sec_per_iter']:12.3f} {many['gan_sec_per_iter']:14.3f} "
          f"{one['gan_sec_per_iter'] / many['gan_sec_per_iter']:6.2f}x")
    for sync, how in ((True, "global BN"), (False, "per-process BN")):
        key = f"classifier_images_per_s_sync_{sync}"
        print(f"{f'{args.variant} images/s, {how}':38} {one[key]:12.1f} {many[key]:14.1f} {many[key] / one[key]:6.2f}x")
    print("ratio: how many times faster the processes are than one process (below 1: slower)")


if __name__ == "__main__":
    main()
